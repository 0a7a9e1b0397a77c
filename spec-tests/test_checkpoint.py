"""checkpoint / restore with CRIU (runc's commands, flags and behaviour), real busybox containers.

criu is found by conformance/criutool.py ($OCIRUNTIME_CRIU, `criu` on PATH, ../shared/tools/criu/criu: the first
whose `criu check` passes) and passed as the global --criu. Without one every test here skips saying why
(Debian 12's criu 3.17 fails `criu check` on kernels >= 6.13).

Containers run with stdio on /dev/null: criu cannot dump a file of the host that lies outside the container's
mounts (runc's containers have the same rule).
"""
import json
import os
import subprocess
import time

import pytest

from conformance.criutool import forget_kdat_tmp, working_criu
from conftest import EXE, console_listener, reap

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"
TMPFS = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}


@pytest.fixture(scope="module")
def criu():
    path, why = working_criu()
    if path is None:
        pytest.skip(why)
    return path


class CR:
    """ociruntime with --criu, containers started with stdio on /dev/null."""

    def __init__(self, runtime, criu, tmp_path):
        self.rt, self.criu, self.tmp = runtime, criu, tmp_path

    def __call__(self, *args, **kw):
        return self.rt("--criu", self.criu, *args, **kw)

    def run_detached(self, bundle_path, cid, *flags):
        log = os.path.join(self.tmp, f"{cid}.log")
        p = subprocess.run([EXE, "--root", self.rt.root, "--log", log, "run", "-d", "--bundle", bundle_path, *flags,
                            cid], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=30)
        assert p.returncode == 0, open(log).read()

    def restore(self, image, bundle_path, cid, *flags, check=True):
        return self("restore", "-d", "--image-path", image, "--work-path", image + "-work", "--bundle", bundle_path,
                    *flags, cid, check=check, timeout=60)

    def checkpoint(self, image, cid, *flags, check=True):
        return self("checkpoint", "--image-path", image, "--work-path", image + "-work", *flags, cid, check=check,
                    timeout=60)

    def count(self, cid):
        """The counter, retried while the file reads empty (the loop truncates it before each write)."""
        for _ in range(10):
            out = self.rt("exec", cid, "cat", "/tmp/count").stdout
            if out.strip():
                return int(out)
        raise AssertionError(f"{cid}: /tmp/count stays empty")

    def wait_count(self, cid, at_least):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                n = self.count(cid)
            except AssertionError:
                n = 0
            if n >= at_least:
                return n
            time.sleep(0.1)
        raise AssertionError(f"{cid}: counter never reached {at_least}")


@pytest.fixture
def cr(runtime, criu, tmp_path):
    yield CR(runtime, criu, tmp_path)
    forget_kdat_tmp()


def counter_bundle(bundle, *extra_mounts):
    bundle.config["mounts"] += [TMPFS, *extra_mounts]
    bundle.config["root"]["readonly"] = True
    return bundle.set_args("sh", "-c", COUNTER).write()


def _cgroup_of(pid, ctrl):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                return path
    raise LookupError(ctrl)


def test_counter_keeps_counting_across_checkpoint_and_restore(cr, runtime, bundle, cid, tmp_path):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 50}}
    path = counter_bundle(bundle)
    cr.run_detached(path, cid)
    before = cr.wait_count(cid, 5)
    img = str(tmp_path / "img")
    cr.checkpoint(img, cid)
    # without --leave-running the container is gone, like runc's
    p = runtime("state", cid, check=False)
    assert p.returncode != 0 and "does not exist" in p.stderr
    assert os.path.exists(os.path.join(img, "descriptors.json")) and os.path.exists(img + "-work/dump.log")
    pid_file = str(tmp_path / "restored.pid")
    cr.restore(img, path, cid, "--pid-file", pid_file)
    st = runtime.state(cid)
    assert st["status"] == "running" and st["bundle"] == path
    with open(pid_file) as f:
        assert int(f.read()) == st["pid"]
    after = cr.count(cid)
    assert after >= before, f"restored counter {after} is below the checkpointed {before}: not restored"
    assert cr.wait_count(cid, after + 3) > after, "the restored counter does not count"
    # the restored init is the same shell loop, PID 1 of its namespace, in the container's cgroups with limits
    assert runtime("exec", cid, "cat", "/proc/1/cmdline").stdout.startswith("sh\0-c\0i=0")
    cg = bundle.config["linux"]["cgroupsPath"]
    for ctrl in ("memory", "pids", "freezer"):
        assert _cgroup_of(st["pid"], ctrl).endswith("/" + cg), ctrl
    mem = f"/sys/fs/cgroup/memory{_cgroup_of(st['pid'], 'memory')}/memory.limit_in_bytes"
    with open(mem) as f:
        assert int(f.read()) == 64 * 1024 * 1024
    # an ordinary container: pause, resume, kill, delete
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    runtime("resume", cid)
    runtime("kill", cid, "KILL")
    runtime.wait_status(cid, "stopped")
    runtime("delete", cid)
    reap()
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_leave_running_and_two_restores_of_one_image_are_independent(cr, runtime, bundle, make_id, tmp_path):
    c1, c2, c3 = make_id(), make_id(), make_id()
    path = counter_bundle(bundle)
    cr.run_detached(path, c1)
    cr.wait_count(c1, 5)
    img = str(tmp_path / "img")
    cr.checkpoint(img, c1, "--leave-running")
    assert runtime.state(c1)["status"] == "running"
    checkpointed = cr.count(c1)
    for c in (c2, c3):                  # each its own cgroup: the config names it
        bundle.config["linux"]["cgroupsPath"] += "x"
        bundle.write()
        cr.restore(img, path, c)
    pids = {c: runtime.state(c)["pid"] for c in (c1, c2, c3)}
    assert len(set(pids.values())) == 3
    assert cr.count(c2) < checkpointed + 40 and cr.count(c3) >= 1
    runtime("kill", c2, "KILL")
    runtime.wait_status(c2, "stopped")
    n1, n3 = cr.count(c1), cr.count(c3)
    assert cr.wait_count(c1, n1 + 2) and cr.wait_count(c3, n3 + 2), "the others stopped with c2"
    runtime("delete", c2)
    for c in (c1, c3):
        runtime("delete", "--force", c)


def test_tmpfs_contents_and_bind_mount_survive(cr, runtime, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    bind = {"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind", "rw"]}
    bundle.config["mounts"] += [TMPFS, bind]
    path = bundle.set_args("sh", "-c", "echo kept-in-tmpfs > /tmp/note; i=0; while true; do i=$((i+1)); "
                                       "echo $i > /tmp/count; echo $i > /data/out; sleep 0.1; done").write()
    cr.run_detached(path, cid)
    cr.wait_count(cid, 3)
    img = str(tmp_path / "img")
    cr.checkpoint(img, cid)
    last = int((shared / "out").read_text() or 0)     # the file may be open at dump: criu checks its size
    cr.restore(img, path, cid)
    assert runtime("exec", cid, "cat", "/tmp/note").stdout == "kept-in-tmpfs\n"
    deadline = time.monotonic() + 10
    while int((shared / "out").read_text() or 0) < last + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert int((shared / "out").read_text()) >= last + 3, "the restored process does not write through the bind"
    runtime("delete", "--force", cid)


def _talk(master, command, want, timeout=10):
    os.write(master, command.encode())
    data, deadline = b"", time.monotonic() + timeout
    import select
    while want.encode() not in data and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            data += os.read(master, 4096)
    return data.decode(errors="replace")


def test_container_with_a_terminal_gets_a_new_pty_master(cr, runtime, bundle, cid, tmp_path):
    bundle.config["process"]["terminal"] = True
    bundle.config["mounts"].append(TMPFS)
    path = bundle.set_args("sh").write()
    srv, t, got = console_listener(str(tmp_path / "c1.sock"))
    cr("run", "-d", "--bundle", path, "--console-socket", str(tmp_path / "c1.sock"), cid)
    t.join(10)
    srv.close()
    assert "fd" in got
    out = _talk(got["fd"], "X=before-$((20+1))\necho $X\n", "before-21")
    assert "before-21" in out
    img = str(tmp_path / "img")
    cr.checkpoint(img, cid)
    os.close(got["fd"])
    srv, t, got2 = console_listener(str(tmp_path / "c2.sock"))
    cr.restore(img, path, cid, "--console-socket", str(tmp_path / "c2.sock"))
    t.join(10)
    srv.close()
    assert "fd" in got2, "restore sent no pty master to --console-socket"
    out = _talk(got2["fd"], "echo kept-$X-$((1+1)); tty\n", "kept-before-21-2")
    os.close(got2["fd"])
    assert "kept-before-21-2" in out, out       # the shell's variable survived, and it answers on the new pty
    runtime("delete", "--force", cid)


def test_restore_after_the_original_was_deleted_and_hooks_run_as_runc(cr, runtime, bundle, cid, tmp_path):
    log = tmp_path / "hooks.log"
    hook = lambda name: {"path": "/bin/sh", "args": ["sh", "-c", f"echo {name} $(cat) >> {log}"]}  # noqa: E731
    bundle.config["hooks"] = {k: [hook(k)] for k in ("prestart", "createRuntime", "poststop")}
    path = counter_bundle(bundle)
    cr.run_detached(path, cid)
    cr.wait_count(cid, 3)
    img = str(tmp_path / "img")
    cr.checkpoint(img, cid, "--leave-running")
    runtime("delete", "--force", cid)
    reap()
    log.write_text("")
    cr.restore(img, path, cid)
    pid = runtime.state(cid)["pid"]
    lines = log.read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["prestart", "createRuntime"], lines
    assert all(json.loads(ln.split(" ", 1)[1])["pid"] == pid for ln in lines), (lines, pid)
    assert cr.count(cid) >= 3
    runtime("delete", "--force", cid)
    assert log.read_text().splitlines()[-1].startswith("poststop")


@pytest.mark.parametrize("flags", [(), ("--console-socket", "/nonexistent.sock")], ids=["plain", "console-socket"])
def test_restore_in_the_foreground_waits_and_returns_the_exit_status(cr, runtime, bundle, cid, tmp_path, flags):
    """Without -d restore waits, --console-socket or not (runc's runner: detach is -d alone; our run does so too)."""
    bundle.config["mounts"].append(TMPFS)
    path = bundle.set_args("sh", "-c", "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo $i > /tmp/count; "
                                       "sleep 0.1; done; exit 7").write()
    cr.run_detached(path, cid)
    cr.wait_count(cid, 3)
    img = str(tmp_path / "img")
    cr.checkpoint(img, cid)
    p = cr("restore", *flags, "--image-path", img, "--bundle", path, cid, check=False, timeout=60)
    assert p.returncode == 7, p.stderr
    assert runtime("state", cid, check=False).returncode != 0, "a foreground restore deletes its container"


# -- what cannot be done fails cleanly ---------------------------------------------------------------------------

def test_checkpoint_of_a_created_stopped_or_unknown_container_fails(cr, runtime, bundle, make_id, tmp_path):
    c1, c2 = make_id(), make_id()
    img = str(tmp_path / "img")
    runtime("create", "--bundle", bundle.set_args("true").write(), c1)
    p = cr.checkpoint(img, c1, check=False)
    assert p.returncode == 1 and "cannot be checkpointed in created state" in p.stderr, p.stderr
    runtime("start", c1)
    runtime.wait_status(c1, "stopped")
    p = cr.checkpoint(img, c1, check=False)
    assert p.returncode == 1 and "cannot be checkpointed in stopped state" in p.stderr, p.stderr
    p = cr.checkpoint(img, c2, check=False)
    assert p.returncode == 1 and "does not exist" in p.stderr
    assert runtime.state(c1)["status"] == "stopped"


def test_paused_container_checkpoints_and_stays_paused_as_with_runc(cr, runtime, bundle, cid, tmp_path):
    """runc 1.1.5 checkpoints a paused container (criu finds the freezer cgroup frozen and leaves it so)."""
    cr.run_detached(counter_bundle(bundle), cid)
    cr.wait_count(cid, 2)
    runtime("pause", cid)
    cr.checkpoint(str(tmp_path / "img"), cid, "--leave-running")
    assert runtime.state(cid)["status"] == "paused"
    runtime("delete", "--force", cid)


def test_unservable_flags_fail_before_anything_is_frozen(cr, runtime, bundle, cid, tmp_path, criu):
    cr.run_detached(counter_bundle(bundle), cid)
    cr.wait_count(cid, 2)
    img = str(tmp_path / "img")
    p = cr.checkpoint(img, cid, "--manage-cgroups-mode", "bogus", check=False)
    assert p.returncode == 1 and "--manage-cgroups-mode" in p.stderr
    p = cr.checkpoint(img, cid, "--empty-ns", "bogus", check=False)
    assert p.returncode == 1 and 'namespace "bogus" is not supported' in p.stderr
    soft_dirty = subprocess.run([criu, "check", "--feature", "mem_dirty_track"], capture_output=True).returncode == 0
    if not soft_dirty:
        p = cr.checkpoint(img, cid, "--pre-dump", check=False)
        assert p.returncode == 1 and "soft-dirty" in p.stderr and "CONFIG_MEM_SOFT_DIRTY" in p.stderr, p.stderr
    assert runtime.state(cid)["status"] == "running"
    runtime("delete", "--force", cid)


def test_restore_errors_leave_nothing(cr, runtime, bundle, make_id, tmp_path):
    c1, c2 = make_id(), make_id()
    path = counter_bundle(bundle)
    p = cr.restore(str(tmp_path / "nothing-here"), path, c1, check=False)
    assert p.returncode == 1 and "descriptors.json" in p.stderr
    assert runtime("state", c1, check=False).returncode != 0
    cr.run_detached(path, c2)
    cr.wait_count(c2, 2)
    img = str(tmp_path / "img")
    cr.checkpoint(img, c2, "--leave-running")
    p = cr.restore(img, path, c2, check=False)            # the id is taken
    assert p.returncode == 1 and "exists" in p.stderr
    bundle.config["process"]["terminal"] = True
    bundle.write()
    p = cr.restore(img, path, c1, check=False)
    assert p.returncode == 1 and "console-socket" in p.stderr
    assert runtime("state", c1, check=False).returncode != 0
    runtime("delete", "--force", c2)
    assert sorted(os.listdir(runtime.root)) == []


def test_help_and_features_tell_the_truth(runtime):
    out = runtime("--help").stdout
    assert "checkpoint" in out and "restore" in out
    assert "criu" in runtime("checkpoint", "--help").stdout.lower()
    assert "unsupported" not in out
    feats = json.loads(runtime("features").stdout)
    assert feats["annotations"]["org.opencontainers.runc.checkpoint.enabled"] == "true"


def test_user_namespace_container_checkpoints_and_a_restore_failure_leaves_nothing(cr, runtime, bundle, cid,
                                                                                    tmp_path):
    """In a user namespace the devices are binds of the host's nodes: named to criu as external, the dump works.
    criu 4.2 then reads its images from inside the restored user namespace and is refused (runc 1.1.5 fails the
    same way, 'criu failed: type NOTIFY'): the restore fails with criu's reason and rolls back completely."""
    from test_isolation import open_path_to
    open_path_to(bundle.rootfs)
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    path = counter_bundle(bundle)
    cr.run_detached(path, cid)
    before = cr.wait_count(cid, 3)
    img = str(tmp_path / "img")
    cr.checkpoint(img, cid)
    p = cr.restore(img, path, cid, check=False)
    if p.returncode == 0:                # a criu that restores user namespaces: then it must really continue
        assert cr.count(cid) >= before
        runtime("delete", "--force", cid)
    else:
        assert "criu failed: type RESTORE" in p.stderr and "restore.log" in p.stderr, p.stderr
        assert runtime("state", cid, check=False).returncode != 0
        assert os.listdir(runtime.root) == []


def test_restore_killed_after_making_its_cgroups_leaves_nothing_after_delete_force(cr, runtime, bundle, cid,
                                                                                     tmp_path):
    """restore records its cgroups in the state before making them, as create does (issue 10): a restore killed
    right after making them (before criu runs) leaves nothing once `delete --force` has run."""
    from test_crash_injection import _cgroup_dirs_of
    image = tmp_path / "img"
    image.mkdir()
    (image / "descriptors.json").write_text('["/dev/null", "/dev/null", "/dev/null"]')
    bundle.write()
    env = dict(os.environ, OCIRUNTIME_TEST_FAULT="restore:cgroups-made")
    p = cr("restore", "-d", "--image-path", str(image), "--bundle", bundle.path, cid, check=False, env=env,
           timeout=60)
    assert p.returncode == -9, p.stderr           # killed at the point: the point exists and was reached
    assert os.path.isdir(os.path.join(runtime.root, cid))
    assert _cgroup_dirs_of(bundle.config["linux"]["cgroupsPath"])
    runtime("delete", "--force", cid)
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert not _cgroup_dirs_of(bundle.config["linux"]["cgroupsPath"])


def test_restore_failing_while_binding_the_rootfs_for_criu_unmounts_it(cr, runtime, bundle, cid, tmp_path):
    """The rootfs bind on <state>/criu-root is undone by the rollback even when restore fails between that mount
    and the next one (it was registered for undoing only after both)."""
    from conftest import _mounts
    image = tmp_path / "img"
    image.mkdir()
    (image / "descriptors.json").write_text('["/dev/null", "/dev/null", "/dev/null"]')
    bundle.write()
    before = _mounts()
    env = dict(os.environ, OCIRUNTIME_TEST_FAULT="restore:root-bound:raise")
    p = cr("restore", "-d", "--image-path", str(image), "--bundle", bundle.path, cid, check=False, env=env,
           timeout=60)
    assert p.returncode == 1 and "injected fault at restore:root-bound" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert _mounts() == before
