"""The runtime writes no cgroup.procs, whose first write of a burst waits for an RCU grace period (issue 12). cgroup
v2: init and exec's process are born in the container's cgroup (clone3 with CLONE_INTO_CGROUP), so they run no
instruction elsewhere. cgroup v1: the child, one thread right after its fork, writes "0" into each hierarchy's `tasks`
(moving one's own thread takes no global lock), and on hybrid hosts is born in the unified hierarchy's cgroup.

Who opened which cgroup.procs for writing is seen by a Python audit hook ("open" events) installed in the runtime
process itself, independent of the runtime's own --debug trace (which is checked too)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import CGROUP_PARENT, EXE, V2, own_cgroup_dirs, reap

HOOKED = r"""
import sys
log, exe = sys.argv[1], sys.argv[2]
sys.argv = ["ociruntime"] + sys.argv[3:]
pid = __import__("posix").getpid()


def hook(event, args):
    if event == "open" and str(args[0]).endswith("cgroup.procs") and args[2] is not None and args[2] & 3 and \
            __import__("posix").getpid() == pid:     # the runtime's own writes, not its children's
        with open(log, "a") as f:
            f.write(str(args[0]) + "\n")


sys.addaudithook(hook)
exec(compile(open(exe).read(), exe, "exec"))        # the launcher: its shebang line is a comment here
"""
pytestmark = pytest.mark.skipif(bool(os.environ.get("SPEC_RUNTIME")), reason="ociruntime's own fork and its trace")


def _hooked(runtime, tmp_path, *args):
    """Run `ociruntime --root R ARGS` with the audit hook; (completed process, the cgroup.procs files it wrote)."""
    log = tmp_path / "procs-writes"
    log.write_text("")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as o, open(err, "w") as e:    # files, not pipes: a created container inherits them
        p = subprocess.run([sys.executable, "-IS", "-c", HOOKED, str(log), EXE, "--root", runtime.root, *args],
                           stdout=o, stderr=e, timeout=60, stdin=subprocess.DEVNULL)
    p.stdout, p.stderr = out.read_text(), err.read_text()
    assert p.returncode == 0, p.stderr
    return p, log.read_text().split()


def _cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return [ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")][0]


def _steps(log):
    return [json.loads(ln)["msg"] for ln in log.read_text().splitlines() if '"step"' in ln]


def _unified():
    d = own_cgroup_dirs().get("" if V2 else "unified")
    return d if d and os.path.isdir(d) else None


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a cgroup")
def test_a_child_forked_into_a_cgroup_is_in_it_at_its_first_instruction():
    """ociruntime.linux.syscalls.fork_into_cgroup: the child's first act, reading /proc/self/cgroup, already shows
    the target; os.fork's child (the control) is still in ours. Works wherever a cgroup2 hierarchy is mounted
    (hybrid hosts have one without controllers)."""
    base = _unified()
    if base is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    from ociruntime.linux import syscalls as sc
    target = os.path.join(base, f"{CGROUP_PARENT}-birth")
    os.mkdir(target)
    try:
        seen = {}
        for how in ("clone3", "fork"):
            fd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            r, w = os.pipe()
            pid = sc.fork_into_cgroup(fd) if how == "clone3" else os.fork()
            if pid == 0:
                try:
                    with open("/proc/self/cgroup", "rb") as f:
                        os.write(w, f.read())
                finally:
                    os._exit(0)
            os.close(fd)
            os.close(w)
            with os.fdopen(r, "rb") as f:
                seen[how] = [ln.split(b":", 2)[2].strip().decode() for ln in f.read().splitlines()
                             if ln.startswith(b"0::")][0]
            assert os.waitpid(pid, 0)[1] == 0
        mine = _cgroup_of(os.getpid())
        assert seen["clone3"] == os.path.join(mine, os.path.basename(target))
        assert seen["fork"] == mine
    finally:
        os.rmdir(target)


def test_create_and_exec_place_their_processes_without_writing_cgroup_procs(runtime, bundle, cid,
                                                                                         tmp_path):
    """No cgroup.procs write by create or exec, and init and the exec'd process are in the container's cgroups."""
    bundle.set_args("sleep", "100")
    log = tmp_path / "log.json"
    flags = ("--debug", "--log", str(log), "--log-format", "json")
    _, create_writes = _hooked(runtime, tmp_path, *flags, "create", "--bundle", bundle.write(), cid)
    init = runtime.state(cid)["pid"]
    want = bundle.config["linux"]["cgroupsPath"]
    create_steps = _steps(log)
    log.write_text("")
    p, exec_writes = _hooked(runtime, tmp_path, *flags, "exec", cid, "cat", "/proc/self/cgroup")
    exec_steps = _steps(log)
    try:
        refused = [s for s in create_steps + exec_steps if "refused (clone3" in s]
        if refused:       # no clone3, or a libc whose thread descriptor launch cannot fill: the parent writes
            pytest.skip(f"clone3 CLONE_INTO_CGROUP is refused here: {refused[0]}")
        if V2:
            assert create_writes == [] and exec_writes == []
            assert _cgroup_of(init).endswith("/" + want)
            born = [s for s in create_steps + exec_steps if "(clone3 CLONE_INTO_CGROUP)" in s]
            assert len(born) == 2, create_steps + exec_steps
            parents = [s for s in create_steps + exec_steps if s.startswith(("create: ", "exec: "))]
            assert not [s for s in parents if "placed in the cgroups" in s], parents
            assert p.stdout.strip() == "0::/"          # the container's cgroup namespace is rooted at its cgroup
        else:
            assert create_writes == [] and exec_writes == []
            with open(f"/proc/{init}/cgroup") as f:
                lines = f.read().split()
            assert lines and all(ln.endswith("/" + want) for ln in lines), lines     # every hierarchy, unified too
            forked = [s for s in create_steps if s.startswith("create: forked the child")]
            assert len(forked) == 1 and "it places itself in the v1 hierarchies (tasks)" in forked[0], create_steps
            if _unified():
                assert "(clone3 CLONE_INTO_CGROUP)" in forked[0]
            told = [s for s in create_steps + exec_steps if "is in its cgroups (it moved itself there)" in s]
            assert len(told) == 2, create_steps + exec_steps
            parents = [s for s in create_steps + exec_steps if s.startswith(("create: ", "exec: "))]
            assert not [s for s in parents if "placed in the cgroups" in s], parents
            assert p.stdout.split() == [ln.rsplit(":", 1)[0] + ":/" for ln in lines]   # rooted at its cgroup
    finally:
        runtime("delete", "--force", cid)
        reap()


@pytest.mark.skipif(not V2, reason="cgroup v2 only: v1 and hybrid hosts always place by cgroup.procs writes")
def test_exec_with_an_initial_cpu_affinity_is_placed_by_a_write_after_it(runtime, bundle, cid, tmp_path):
    """process.execCPUAffinity.initial applies before the move into the container's cgroup (config.md): such an
    exec's child is forked where we are, gets the affinity, and is then written into the cgroup."""
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "100").write(), cid)
    proc = dict(bundle.config["process"], args=["cat", "/proc/self/cgroup"], execCPUAffinity={"initial": "0"})
    spec = tmp_path / "process.json"
    spec.write_text(json.dumps(proc))
    try:
        p, writes = _hooked(runtime, tmp_path, "exec", "--process", str(spec), cid)
        assert writes, "the exec's process was born in the cgroup, before its initial affinity"
        assert p.stdout.strip() == "0::/"
    finally:
        runtime("delete", "--force", cid)
        reap()


@pytest.mark.skipif(V2 or os.geteuid() != 0, reason="cgroup v1/hybrid, as root: a v1 `tasks` that cannot be opened")
def test_a_v1_tasks_file_that_cannot_be_opened_still_gets_init_and_exec_into_that_hierarchy(runtime, bundle, cid,
                                                                                           tmp_path):
    """The child places itself through each v1 hierarchy's `tasks`, opened by the parent before the fork. When one
    cannot be opened (here: a read-only file bound over it; a delegation that chowned cgroup.procs only, EMFILE...),
    the parent must place by cgroup.procs writes as before. On a hybrid host clone3 put the child in the unified
    hierarchy's cgroup only; that birth must not count as "placed everywhere" (it did: init and exec's process ran in
    the runtime's pids cgroup, outside the container's, and create and exec succeeded)."""
    pids = own_cgroup_dirs().get("pids")
    if not pids or not os.path.isdir(pids):
        pytest.skip("no v1 pids hierarchy")
    want = bundle.config["linux"]["cgroupsPath"]
    d = os.path.join(pids, want)
    os.mkdir(d)                     # an existing cgroup: create makes the others and uses this one
    ro = tmp_path / "ro"
    ro.write_text("")
    subprocess.run(["mount", "--bind", str(ro), d + "/tasks"], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", d + "/tasks"], check=True)
        with pytest.raises(OSError):
            os.open(d + "/tasks", os.O_WRONLY)
        runtime("run", "-d", "--bundle", bundle.set_args("sleep", "100").write(), cid)
        init = runtime.state(cid)["pid"]
        with open(f"/proc/{init}/cgroup") as f:
            lines = f.read().split()
        assert [ln for ln in lines if ":pids:" in ln][0].endswith("/" + want), lines
        p = runtime("exec", cid, "cat", "/proc/self/cgroup")
        assert [ln for ln in p.stdout.split() if ":pids:" in ln][0].endswith(":pids:/"), p.stdout
    finally:
        subprocess.run(["umount", d + "/tasks"], check=True)
        runtime("delete", "--force", cid, check=False)
        reap()
        if os.path.isdir(d):
            os.rmdir(d)
