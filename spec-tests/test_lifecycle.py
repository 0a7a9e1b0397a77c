"""runtime.md: the lifecycle and the operations create/start/state/kill/delete, with real busybox containers."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import EXE, REPO, cgroup_dir

STATE_SCHEMA = os.path.join(REPO, "..", "shared", "runtime-spec-v1.3.0", "schema", "state-schema.json")


def test_create_leaves_container_created_with_its_pid(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    st = runtime.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == bundle.path
    assert st["pid"] > 0 and os.path.exists(f"/proc/{st['pid']}")


def test_state_output_validates_against_the_state_schema(runtime, bundle, cid):
    jsonschema = pytest.importorskip("jsonschema")
    if not os.path.exists(STATE_SCHEMA):
        pytest.skip("official schema not present")
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4
    schema_dir = os.path.dirname(os.path.abspath(STATE_SCHEMA))
    docs = {}
    for name in os.listdir(schema_dir):
        with open(os.path.join(schema_dir, name)) as f:
            docs[name] = json.load(f)
    reg = Registry().with_resources((n, Resource(d, DRAFT4)) for n, d in docs.items())
    schema = docs["state-schema.json"]
    jsonschema.Draft4Validator(schema, registry=reg).validate(runtime.state(cid))


def test_state_has_runcs_fields_in_runcs_order_and_the_implemented_spec_version(runtime, bundle, cid):
    # runc 1.1.5 side by side: ociVersion is the runtime's own (not the config's 1.0.0), annotations before owner
    bundle.config["ociVersion"] = "1.0.0"
    bundle.config["annotations"] = {"a": "b"}
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    st = runtime.state(cid)
    assert list(st) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"]
    assert st["ociVersion"] == "1.3.0" and st["rootfs"] == bundle.rootfs and st["owner"] == ""


def test_start_runs_the_process_and_it_ends_stopped(runtime, bundle, cid, tmp_path):
    bundle.set_args("sh", "-c", "echo started > /tmp/marker; sleep 0.1").write()
    runtime("create", "--bundle", bundle.path, cid)
    assert not os.path.exists(os.path.join(bundle.rootfs, "tmp/marker")), "process ran before start"
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    with open(os.path.join(bundle.rootfs, "tmp/marker")) as f:
        assert f.read() == "started\n"
    assert runtime.state(cid)["pid"] == 0


def test_start_on_running_container_fails(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    runtime("start", cid)
    p = runtime("start", cid, check=False)
    assert p.returncode != 0
    assert "running" in p.stderr
    assert runtime.state(cid)["status"] == "running"


def test_start_on_stopped_container_fails(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    p = runtime("start", cid, check=False)
    assert p.returncode != 0 and "stopped" in p.stderr


def test_create_with_an_id_in_use_fails_and_keeps_the_first(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    pid = runtime.state(cid)["pid"]
    p = runtime("create", "--bundle", bundle.path, cid, check=False)
    assert p.returncode != 0 and "exists" in p.stderr
    assert runtime.state(cid)["pid"] == pid


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".", "-x", "a b"])
def test_unsafe_container_id_is_refused(runtime, bundle, bad):
    p = runtime("create", "--bundle", bundle.set_args("true").write(), "--", bad, check=False)
    assert p.returncode != 0
    assert not os.path.exists(runtime.root) or os.listdir(runtime.root) == []


def test_state_of_unknown_container_says_it_does_not_exist(runtime):
    p = runtime("state", "nosuchcontainer", check=False)
    assert p.returncode == 1
    assert "does not exist" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_kill_created_container_stops_it(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    runtime("kill", cid, "KILL")
    runtime.wait_status(cid, "stopped")


def test_kill_created_container_with_default_sigterm_stops_it(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    runtime("kill", cid)
    runtime.wait_status(cid, "stopped")


@pytest.mark.parametrize("sig", ["9", "KILL", "SIGKILL", "sigkill"])
def test_kill_accepts_signal_numbers_and_names(runtime, bundle, cid, sig):
    runtime("create", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    runtime("start", cid)
    runtime("kill", cid, sig)
    runtime.wait_status(cid, "stopped")


def test_kill_delivers_the_named_signal_to_the_process(runtime, bundle, cid):
    # a shell trap proves which signal arrived
    bundle.set_args("sh", "-c", "trap 'echo got-usr1 > /tmp/sig; exit 0' USR1; while true; do sleep 0.05; done")
    runtime("create", "--bundle", bundle.write(), cid)
    runtime("start", cid)
    time.sleep(0.3)
    runtime("kill", cid, "USR1")
    runtime.wait_status(cid, "stopped")
    with open(os.path.join(bundle.rootfs, "tmp/sig")) as f:
        assert f.read() == "got-usr1\n"


def test_kill_of_stopped_container_fails_with_not_running(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    p = runtime("kill", cid, "KILL", check=False)
    assert p.returncode != 0 and "not running" in p.stderr
    assert runtime("kill", "--all", cid, "KILL", check=False).returncode == 0


def test_kill_with_signal_0_succeeds_while_the_process_exists_as_runc(runtime, bundle, cid):
    # kill(2)'s signal 0: nothing is sent, the exit code says whether the process exists (runc, also with --all)
    runtime("create", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    for status in ("created", "running"):
        assert runtime.state(cid)["status"] == status
        runtime("kill", cid, "0")
        runtime("kill", "--all", cid, "0")
        assert runtime.state(cid)["status"] == status         # signal 0 delivered nothing
        if status == "created":
            runtime("start", cid)
    runtime("kill", cid, "KILL")
    runtime.wait_status(cid, "stopped")
    p = runtime("kill", cid, "0", check=False)
    assert p.returncode == 1 and "not running" in p.stderr
    assert runtime("kill", "--all", cid, "0", check=False).returncode == 0


def test_unknown_signal_is_refused(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    p = runtime("kill", cid, "NOPE", check=False)
    assert p.returncode != 0 and "NOPE" in p.stderr
    assert runtime.state(cid)["status"] == "created"


def test_delete_of_running_container_without_force_fails(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    runtime("start", cid)
    p = runtime("delete", cid, check=False)
    assert p.returncode != 0 and "not stopped" in p.stderr
    assert runtime.state(cid)["status"] == "running"


def test_delete_force_kills_a_running_container_and_removes_its_state(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    runtime("start", cid)
    pid = runtime.state(cid)["pid"]
    runtime("delete", "--force", cid)
    assert not os.path.exists(os.path.join(runtime.root, cid))
    from conftest import reap
    reap()
    assert not os.path.exists(f"/proc/{pid}/stat") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_delete_of_created_but_never_started_container_succeeds(runtime, bundle, cid):
    # runc's behaviour, which containerd's shim relies on, over runtime.md's MUST (container.delete says why)
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    runtime("delete", cid)
    assert runtime("state", cid, check=False).returncode != 0


def test_delete_of_stopped_container_removes_it(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    runtime("delete", cid)
    assert "does not exist" in runtime("state", cid, check=False).stderr


def test_delete_force_of_unknown_id_exits_zero(runtime):
    assert runtime("delete", "--force", "never-created").returncode == 0
    assert runtime("delete", "never-created", check=False).returncode != 0


def test_pid_file_holds_the_pid_without_newline(runtime, bundle, cid, tmp_path):
    pf = tmp_path / "init.pid"
    runtime("create", "--bundle", bundle.set_args("true").write(), "--pid-file", str(pf), cid)
    assert pf.read_text() == str(runtime.state(cid)["pid"])


def test_list_shows_containers_in_table_and_json(runtime, bundle, make_id):
    a, b = make_id(), make_id()
    bundle.set_args("true").write()
    runtime("create", "--bundle", bundle.path, a)
    runtime("create", "--bundle", bundle.path, b)
    rows = json.loads(runtime("list", "--format", "json").stdout)
    assert {r["id"] for r in rows} == {a, b} and {r["status"] for r in rows} == {"created"}
    table = runtime("list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"] and len(table) == 3
    assert sorted(runtime("list", "-q").stdout.split()) == sorted([a, b])


def test_concurrent_starts_on_one_container_run_the_process_once(runtime, bundle, cid):
    bundle.set_args("sh", "-c", "echo x >> /tmp/count; sleep 1")
    runtime("create", "--bundle", bundle.write(), cid)
    procs = [subprocess.Popen([EXE, "--root", runtime.root, "start", cid], stderr=subprocess.PIPE)
             for _ in range(4)]
    codes = [p.wait(20) for p in procs]
    for p in procs:
        p.stderr.close()
    assert sorted(codes).count(0) == 1, codes
    time.sleep(0.2)
    with open(os.path.join(bundle.rootfs, "tmp/count")) as f:
        assert f.read() == "x\n"


def test_run_exits_with_the_process_exit_status(runtime, bundle, cid):
    p = runtime("run", "--bundle", bundle.set_args("sh", "-c", "exit 7").write(), cid, check=False)
    assert p.returncode == 7
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_run_exits_128_plus_signal_when_the_process_is_killed(runtime, bundle, cid):
    # no pid namespace: as PID 1 of its own namespace the shell could not SIGKILL itself
    bundle.set_args("sh", "-c", "kill -9 $$").ns("network", "ipc", "uts", "mount")
    p = runtime("run", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode == 128 + signal.SIGKILL


def test_run_passes_stdio_through(runtime, bundle, cid):
    p = runtime("run", "--bundle", bundle.set_args("sh", "-c", "read x; echo got:$x; echo err >&2").write(), cid,
                input="hello\n")
    assert p.stdout == "got:hello\n"
    assert p.stderr == "err\n"


def test_run_detach_returns_while_the_process_runs(runtime, bundle, cid):
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    assert runtime.state(cid)["status"] == "running"


def test_delete_force_cleans_up_after_a_create_that_was_killed(runtime, bundle, cid):
    # create dies hard (SIGKILL) while init waits for a createContainer hook: `state` says creating, and
    # `delete --force` must still remove the init, its cgroups and the state (the facts are saved early)
    bundle.config["hooks"] = {"createContainer": [{"path": "/bin/sleep", "args": ["sleep", "30"]}]}
    bundle.write()
    p = subprocess.Popen([EXE, "--root", runtime.root, "create", "--bundle", bundle.path, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(runtime.root, cid, "state")):
            assert time.monotonic() < deadline, "create never saved its facts"
            time.sleep(0.01)
        time.sleep(0.3)                       # init is in its cgroups now, running the hook
    finally:
        p.kill()
        p.wait()
    st = runtime.state(cid)
    assert st["status"] == "creating" and st["bundle"] == bundle.path
    cgroup = bundle.config["linux"]["cgroupsPath"]
    pids_dir = cgroup_dir("pids", cgroup)
    assert os.path.isdir(pids_dir)
    runtime("delete", "--force", cid)
    assert not os.path.exists(pids_dir) and not os.path.exists(os.path.join(runtime.root, cid))


def test_exec_exits_with_the_process_status_or_255_when_the_runtime_fails(runtime, bundle, cid):
    # runc: the process's status (7, 128+signal) when it ran; 255 and "exec failed: ..." when the runtime could
    # not run it (no such container, a bad --user, a program that cannot be exec'd); flag errors stay usage errors
    runtime("run", "--detach", "--bundle", bundle.set_args("sleep", "30").write(), cid)
    assert runtime("exec", cid, "sh", "-c", "exit 7", check=False).returncode == 7
    assert runtime("exec", cid, "sh", "-c", "kill -9 $$", check=False).returncode == 137
    for args in (("nosuch", "true"), (cid, "/no/such/binary"), ("--user", "abc", cid, "true"), (cid,)):
        p = runtime("exec", *args, check=False)
        assert p.returncode == 255 and p.stderr.startswith("ociruntime: exec failed: "), (args, p.stderr)
    assert runtime("exec", "--preserve-fds", "x", cid, "true", check=False).returncode == 1


# -- what the lifecycle commands import ---------------------------------------------------------------------------

HEAVY = {"os", "subprocess", "json", "re", "signal", "enum", "threading", "selectors", "socket", "ctypes",
         "dataclasses", "jsonschema", "pyroute2"}


@pytest.mark.skipif(bool(os.environ.get("SPEC_RUNTIME")), reason="ociruntime's own imports")
def test_create_start_state_kill_and_delete_import_none_of_the_heavy_modules(runtime, bundle, cid, tmp_path):
    """Every CLI call pays its imports (issue 12): the README's hot path imports no os, json, re, signal, socket,
    ctypes or dataclasses, nor what they pull in. `start` once imported the hooks module, and so subprocess, for an
    except clause: ~10 ms of CPU per lifecycle (CPU ratio to runc 1.05-1.20x before, 1.35-1.43x after)."""
    bundle.set_args("sleep", "100")
    path = bundle.write()
    err = tmp_path / "importtime"
    for args in (("create", "--bundle", path, cid), ("state", cid), ("start", cid), ("kill", cid, "KILL"),
                 ("delete", "--force", cid)):
        with open(err, "w") as e:      # a file: the created container inherits stderr
            p = subprocess.run([sys.executable, "-IS", "-X", "importtime", EXE, "--root", runtime.root, *args],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e, timeout=30)
        lines = err.read_text().splitlines()
        assert p.returncode == 0, lines[-3:]
        names = {ln.split("|")[2].strip() for ln in lines if ln.startswith("import time:") and ln.count("|") == 2}
        assert names, lines[-3:]
        assert not names & HEAVY, (args[0], sorted(names & HEAVY))
        if args[0] == "kill":
            runtime.wait_status(cid, "stopped")
