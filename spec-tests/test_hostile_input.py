"""Hostile input and bugs (issue 10): malformed config.json and unexpected exceptions end in ONE line on stderr,
exit 1 (255 for exec), never a traceback, and leave nothing behind. The in-process fuzzing of the config reader is
tests/test_config_fuzz.py; a sample of the same kinds of input goes through the real CLI here."""
import json
import os
import random

import pytest

from conftest import cgroup_dir

MALFORMED = [b"{", b'{"a"', b'{"a": 1', b'"abc', b"[1,]", b'{"a": 1,}', b"[" * 100000, b'{"a": NaN}',
             b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e999}', b'{"ociVersion": "\xff"}', b"\x00"]


def _write(bundle, data: bytes):
    with open(os.path.join(bundle.path, "config.json"), "wb") as f:
        f.write(data)


def _one_line(p):
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ociruntime: "), p.stderr
    return lines[0]


@pytest.mark.parametrize("data", MALFORMED, ids=lambda d: repr(d[:10]))
@pytest.mark.parametrize("command", ["create", "validate"])
def test_malformed_config_gives_one_line_with_line_and_column(runtime, bundle, cid, command, data):
    bundle.write()
    _write(bundle, data)
    args = ["create", "--bundle", bundle.path, cid] if command == "create" else ["validate", "--bundle", bundle.path]
    p = runtime(*args, check=False)
    assert p.returncode == 1
    line = _one_line(p)
    assert "config.json" in line and "line " in line and " column " in line, line
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_deep_nesting_is_refused_with_max_depth(runtime, bundle):
    bundle.write()
    _write(bundle, b"[" * 100000)
    assert "exceeded max depth" in _one_line(runtime("validate", "--bundle", bundle.path, check=False))


def test_a_fuzzed_sample_through_the_cli_gives_one_line_and_leaves_nothing(runtime, bundle, cid):
    """40 mutations of a valid config (seeded): bytes flipped, truncated, values swapped for other types."""
    bundle.write()
    valid = json.dumps(bundle.config).encode()
    rng = random.Random(10)
    for i in range(40):
        data = bytearray(valid)
        kind = i % 4
        if kind == 0:
            data = data[:rng.randrange(len(data))]
        elif kind == 1:
            for _ in range(3):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 2:
            doc = json.loads(valid)
            doc[rng.choice(list(doc))] = rng.choice([None, 1, -1, "x" * 100000, [], {}, [[[]]], 2**80, True])
            data = json.dumps(doc).encode()
        else:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        _write(bundle, bytes(data))
        for args in (["create", "--bundle", bundle.path, cid], ["validate", "--bundle", bundle.path]):
            p = runtime(*args, check=False)
            if p.returncode == 0:        # a mutation that kept the config valid
                if args[0] == "create":
                    runtime("delete", "--force", cid)
                continue
            assert p.returncode == 1, (args[0], bytes(data[:80]), p.stderr)
            _one_line(p)
        assert not os.path.exists(os.path.join(runtime.root, cid))


# -- defect 8: an unexpected exception is "internal error", one line -----------------------------------------------

def _fault_env(point):
    env = dict(os.environ)
    env["OCIRUNTIME_TEST_FAULT"] = f"{point}:raise"
    return env


@pytest.mark.parametrize("point", ["create:placed", "create:init-ready", "init:before-pivot"])
def test_an_unexpected_exception_in_create_is_one_line_internal_error(runtime, bundle, cid, tmp_path, point):
    bundle.set_args("sleep", "10").write()
    log = tmp_path / "log"
    p = runtime("--log", str(log), "create", "--bundle", bundle.path, cid, check=False, env=_fault_env(point))
    assert p.returncode == 1
    line = _one_line(p)
    assert line == f"ociruntime: create: internal error: InjectedFault: injected fault at {point}", line
    assert "internal error: InjectedFault" in log.read_text() and "Traceback" not in log.read_text()
    assert not os.path.exists(os.path.join(runtime.root, cid))     # rolled back
    assert not os.path.exists(cgroup_dir("pids", bundle.config["linux"]["cgroupsPath"]))


def test_debug_shows_the_traceback_of_an_internal_error(runtime, bundle, cid):
    bundle.set_args("sleep", "10").write()
    p = runtime("--debug", "create", "--bundle", bundle.path, cid, check=False, env=_fault_env("create:placed"))
    assert p.returncode == 1
    assert "Traceback" in p.stderr and "ociruntime: create: internal error: InjectedFault" in p.stderr


def test_an_unexpected_exception_in_exec_exits_255(runtime, bundle, cid):
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    p = runtime("exec", cid, "true", check=False, env=_fault_env("exec:pid"))
    assert p.returncode == 255
    assert _one_line(p) == "ociruntime: exec: internal error: InjectedFault: injected fault at exec:pid"


# -- defects 4 and 5: a rootfs that points procfs, sysfs or the whole root at the wrong place -----------------------

@pytest.mark.parametrize("name, fstype", [("proc", "proc"), ("sys", "sysfs")])
@pytest.mark.parametrize("target", ["elsewhere", "/elsewhere"])
def test_proc_or_sys_that_is_a_symlink_in_the_rootfs_is_refused(runtime, bundle, cid, name, fstype, target):
    # CVE-2023-28642: procfs mounted through a symlink lands where the masked paths are not applied
    import shutil
    bundle.write()
    link = os.path.join(bundle.rootfs, name)
    shutil.rmtree(link)
    os.mkdir(os.path.join(bundle.rootfs, "elsewhere"))
    os.symlink(target, link)
    p = runtime("create", "--bundle", bundle.path, cid, check=False)
    assert p.returncode == 1
    line = _one_line(p)
    assert f'/{name}: filesystem "{fstype}" must be mounted on ordinary directory' in line, line
    assert "mounts[" in line and "symlink" in line, line
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_a_rootfs_that_resolves_to_the_hosts_root_is_refused_up_front(runtime, bundle, cid, tmp_path):
    os.symlink("/", tmp_path / "hostroot")
    bundle.config["root"]["path"] = str(tmp_path / "hostroot")
    bundle.write()
    p = runtime("create", "--bundle", bundle.path, cid, check=False)
    assert p.returncode == 1
    assert _one_line(p) == f"ociruntime: config.json: root.path: {tmp_path / 'hostroot'} is the host's / " \
                           "(a container needs its own root filesystem)"
    assert not os.path.exists(os.path.join(runtime.root, cid))


# -- defect 6: --no-pivot must not leave the host's procfs/sysfs in reach ------------------------------------------

def test_no_pivot_leaves_no_host_proc_that_lets_a_user_namespace_mount_proc(runtime, bundle, cid):
    # the kernel lets a user namespace mount proc only where a full proc is visible already: with --no-pivot the
    # host's /proc stayed under the chroot (runc unmounts it: "permission denied" there too)
    os.makedirs(os.path.join(bundle.rootfs, "tmp", "p"), exist_ok=True)
    os.chmod(os.path.join(bundle.rootfs, "tmp", "p"), 0o777)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.set_args("sh", "-c", "unshare -mrpf sh -c 'mount -t proc proc /tmp/p && echo MOUNTED || echo REFUSED' 2>&1")
    p = runtime("run", "--no-pivot", "--bundle", bundle.write(), cid, check=False)
    if "MOUNTED" not in p.stdout and "REFUSED" not in p.stdout:
        pytest.skip(f"no user namespace for an unprivileged process here: {p.stdout.strip() or p.stderr.strip()}")
    assert "REFUSED" in p.stdout, p.stdout


@pytest.mark.parametrize("where", ["cgroupsPath", "cwd", "mount", "maskedPaths", "readonlyPaths", "device"])
def test_a_nul_byte_in_a_path_is_a_config_error_naming_the_field(runtime, bundle, cid, where):
    # crun's test_cgroup_setup.py cgroup-error-invalid-path ('/test\x00invalid'): runc fails on such paths (EINVAL
    # or its validation); it was an "internal error: ValueError", and a masked path with a NUL was silently skipped
    field = {"cgroupsPath": "linux.cgroupsPath", "cwd": "process.cwd", "mount": "mounts[0].destination",
             "maskedPaths": "linux.maskedPaths[0]", "readonlyPaths": "linux.readonlyPaths[0]",
             "device": "linux.devices[0].path"}[where]
    if where == "cgroupsPath":
        bundle.config["linux"]["cgroupsPath"] = "test\x00invalid"
    elif where == "cwd":
        bundle.config["process"]["cwd"] = "/t\x00mp"
    elif where == "mount":
        bundle.config["mounts"].insert(0, {"destination": "/a\x00b", "type": "tmpfs", "source": "tmpfs"})
    elif where == "device":
        bundle.config["linux"]["devices"] = [{"path": "/dev/a\x00b", "type": "c", "major": 1, "minor": 3}]
    else:
        bundle.config["linux"][where] = ["/a\x00b"]
    p = runtime("run", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode == 1
    line = _one_line(p)
    assert f"config.json: {field}: " in line and "NUL" in line, line
