"""clone3(CLONE_INTO_CGROUP) for create's and exec's child (issue 12): when it is tried (launch._fork_for), what
happens when the kernel refuses (launch._Fork falls back to os.fork, and the caller to cgroup.procs writes), and
that the child of syscalls.fork_into_cgroup is a sound Python process, as after os.fork (spec-tests/
test_cgroup_birth.py checks the placement itself, in cgroups of its own)."""
import ctypes
import errno
import os
import signal
import threading

import pytest

from ociruntime import launch
from ociruntime.errors import SyscallError
from ociruntime.linux import syscalls as sc
from ociruntime.linux.cgroups.systemd import SystemdManager
from ociruntime.linux.cgroups.v1 import V1Manager
from ociruntime.linux.cgroups.v2 import V2Manager


class _Proc:
    def __init__(self, affinity=None):
        self.exec_cpu_affinity = affinity


# -- when it is tried ------------------------------------------------------------------------------------------------

V2 = V2Manager("/sys/fs/cgroup/c1").to_state()
HYBRID = V1Manager([{"ctrls": ["cpu", "cpuacct"], "dir": "/sys/fs/cgroup/cpu,cpuacct/c1"},
                    {"ctrls": ["cpu"], "dir": "/sys/fs/cgroup/cpu,cpuacct/c1"},      # a second controller's name
                    {"ctrls": ["memory"], "dir": "/sys/fs/cgroup/memory/c1"},
                    {"ctrls": [""], "dir": "/sys/fs/cgroup/unified/c1"}]).to_state()


def _plan(f):
    return f.path, f.tasks


def test_a_v2_cgroup_is_where_the_child_is_born():
    assert _plan(launch._fork_for(V2)) == ("/sys/fs/cgroup/c1", ())
    assert _plan(launch._fork_for(V2, _Proc({"final": "1"}))) == ("/sys/fs/cgroup/c1", ())


def test_on_v1_the_child_places_itself_in_each_hierarchy_once_and_is_born_in_the_hybrids_cgroup2_one():
    assert _plan(launch._fork_for(HYBRID)) == ("/sys/fs/cgroup/unified/c1",
                                               ("/sys/fs/cgroup/cpu,cpuacct/c1", "/sys/fs/cgroup/memory/c1"))
    assert _plan(launch._fork_for(V1Manager([{"ctrls": ["pids"], "dir": "/p/c"}]).to_state())) == (None, ("/p/c",))


def test_no_cgroup_and_the_systemd_driver_are_not_born_in_a_cgroup():
    assert _plan(launch._fork_for(None)) == (None, ())
    assert _plan(launch._fork_for(SystemdManager("/sys/fs/cgroup/system.slice/x.scope", "/sys/fs/cgroup",
                                                 "x.scope", "system.slice").to_state())) == (None, ())


def test_an_exec_with_an_initial_cpu_affinity_is_placed_by_a_write_after_it():
    assert _plan(launch._fork_for(V2, _Proc({"initial": "0"}))) == (None, ())
    assert _plan(launch._fork_for(HYBRID, _Proc({"initial": "0"}))) == (None, ())


# -- the fallback ----------------------------------------------------------------------------------------------------

@pytest.fixture
def forks(monkeypatch):
    """os.fork as launch sees it, faked: returns 4242 and counts."""
    calls = []
    monkeypatch.setattr(launch.os, "fork", lambda: calls.append(1) or 4242)
    return calls


def test_without_a_birth_cgroup_it_is_os_fork(forks):
    f = launch._Fork()
    assert f() == 4242 and forks == [1] and not f.placed
    assert f.describe(4242) == "forked the child (pid 4242)"


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.E2BIG, errno.EINVAL, errno.EOPNOTSUPP, errno.EBUSY,
                                 errno.EBADF, errno.EACCES, errno.EPERM, errno.EAGAIN])
def test_a_refused_clone3_falls_back_to_os_fork_and_writes(forks, monkeypatch, tmp_path, err):
    """ENOSYS (no clone3), E2BIG/EINVAL (a kernel before 5.7 knows no cgroup field), EOPNOTSUPP/EBUSY (a cgroup that
    cannot take processes), EBADF (not a cgroup2 directory), EACCES/EPERM, EAGAIN (a pids limit): os.fork, and the
    caller places by cgroup.procs writes (not placed), whose own error is then the one reported."""
    seen = []

    def refuse(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        raise SyscallError("clone3", "CLONE_INTO_CGROUP", err)
    monkeypatch.setattr(sc, "fork_into_cgroup", refuse)
    f = launch._Fork(str(tmp_path))
    assert f() == 4242 and forks == [1] and not f.placed
    assert seen == [str(tmp_path)]
    assert f.describe(4242).startswith("forked the child (pid 4242); birth into the cgroups refused (clone3 ")


def test_a_cgroup_that_cannot_be_opened_falls_back_to_os_fork(forks, tmp_path):
    f = launch._Fork(str(tmp_path / "gone"))
    assert f() == 4242 and forks == [1] and not f.placed
    assert "No such file" in f.describe(4242)


def test_an_accepted_clone3_is_not_followed_by_os_fork(forks, monkeypatch, tmp_path):
    fds = []
    monkeypatch.setattr(sc, "fork_into_cgroup", lambda fd: fds.append(fd) or 777)
    f = launch._Fork(str(tmp_path))
    assert f() == 777 and forks == [] and f.placed
    assert "(clone3 CLONE_INTO_CGROUP)" in f.describe(777)
    with pytest.raises(OSError):
        os.fstat(fds[0])                # the cgroup fd is closed again


# -- v1: the child writes "0" into each hierarchy's tasks ------------------------------------------------------------

def _tasks_dirs(tmp_path, n):
    dirs = []
    for i in range(n):
        d = tmp_path / f"h{i}"
        d.mkdir()
        (d / "tasks").write_text("")
        dirs.append(str(d))
    return tuple(dirs)


def test_the_child_writes_0_into_every_tasks_file_and_says_it_placed_itself(monkeypatch, tmp_path):
    monkeypatch.setattr(launch.os, "fork", lambda: 0)          # this process plays the child
    dirs = _tasks_dirs(tmp_path, 3)
    before = set(os.listdir("/proc/self/fd"))
    f = launch._Fork(None, dirs)
    assert f() == 0 and f.child_placed
    assert [open(d + "/tasks").read() for d in dirs] == ["0"] * 3
    assert set(os.listdir("/proc/self/fd")) == before          # no fd of the host's cgroupfs travels on


def test_the_parent_of_a_self_placing_child_writes_nothing_and_waits_for_its_word(forks, tmp_path):
    dirs = _tasks_dirs(tmp_path, 2)
    f = launch._Fork(None, dirs)
    assert f() == 4242 and f.self_placing and not f.placed and not f.child_placed
    assert [open(d + "/tasks").read() for d in dirs] == ["", ""]
    assert "it places itself in the v1 hierarchies (tasks)" in f.describe(4242)


def test_a_tasks_file_that_cannot_be_opened_leaves_the_placing_to_the_parent(forks, tmp_path):
    dirs = _tasks_dirs(tmp_path, 1) + (str(tmp_path / "gone"),)
    before = set(os.listdir("/proc/self/fd"))
    f = launch._Fork(None, dirs)
    assert f() == 4242 and not f.self_placing and not f.placed
    assert set(os.listdir("/proc/self/fd")) == before
    assert "gone/tasks: No such file" in f.describe(4242) and f.describe(4242).endswith("placed by writes")


@pytest.mark.parametrize("defer", [False, True])
def test_on_a_hybrid_host_a_tasks_file_that_cannot_be_opened_is_not_placed_by_the_unified_birth(forks, monkeypatch,
                                                                                               tmp_path, defer):
    """clone3 places the child in the hybrid's cgroup2 hierarchy only: when a v1 `tasks` cannot be opened, `placed`
    must stay False so the parent writes every hierarchy's cgroup.procs (before: clone3 went ahead, `placed` said
    "in all its cgroups", and nobody wrote the v1 ones: init and exec's process ran outside the container's v1
    cgroups, devices included, without an error)."""
    born = []
    monkeypatch.setattr(sc, "fork_into_cgroup", lambda fd: born.append(fd) or 777)
    dirs = _tasks_dirs(tmp_path, 1) + (str(tmp_path / "gone"),)
    f = launch._Fork(str(tmp_path), dirs, defer)
    pid = f()
    assert not f.placed and not f.self_placing, f.describe(pid)
    assert "gone/tasks: No such file" in f.describe(pid) and f.describe(pid).endswith("placed by writes")


def test_a_refused_tasks_write_is_reported_as_not_placed(monkeypatch, tmp_path):
    """A pids limit reached (EAGAIN) or no permission: the child says so and the parent writes cgroup.procs, whose
    own error is the one the user gets."""
    monkeypatch.setattr(launch.os, "fork", lambda: 0)
    dirs = _tasks_dirs(tmp_path, 2)
    real_write = launch.os.write

    def refuse(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("h1/tasks"):
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_write(fd, data)
    monkeypatch.setattr(launch.os, "write", refuse)
    f = launch._Fork(None, dirs)
    assert f() == 0 and not f.child_placed


def test_a_hybrid_child_is_placed_only_if_clone3_took_it_too(monkeypatch, tmp_path):
    dirs = _tasks_dirs(tmp_path, 1)
    monkeypatch.setattr(launch.os, "fork", lambda: 0)
    monkeypatch.setattr(sc, "fork_into_cgroup", lambda fd: 0)
    f = launch._Fork(str(tmp_path), dirs)
    assert f() == 0 and f.child_placed
    monkeypatch.setattr(sc, "fork_into_cgroup", lambda fd: (_ for _ in ()).throw(SyscallError("clone3", "x", 1)))
    f = launch._Fork(str(tmp_path), dirs)
    assert f() == 0 and not f.child_placed      # os.fork's child: the parent writes every hierarchy


def test_exec_intermediate_keeps_the_fds_for_the_process_it_forks(monkeypatch, tmp_path):
    """defer (exec with an intermediate): the child writes nothing; the process it forks will (init.py
    _fork_final_process), so the pids limit applies to neither fork."""
    monkeypatch.setattr(launch.os, "fork", lambda: 0)
    dirs = _tasks_dirs(tmp_path, 2)
    f = launch._Fork(None, dirs, defer=True)
    assert f() == 0 and f.child_placed and len(f.tasks_fds) == 2
    assert [open(d + "/tasks").read() for d in dirs] == ["", ""]
    assert [os.readlink(f"/proc/self/fd/{fd}") for fd in f.tasks_fds] == [d + "/tasks" for d in dirs]
    for fd in f.tasks_fds:
        os.close(fd)


def test_the_parent_of_a_deferring_child_closes_its_fds(forks, tmp_path):
    before = set(os.listdir("/proc/self/fd"))
    f = launch._Fork(None, _tasks_dirs(tmp_path, 2), defer=True)
    assert f() == 4242 and f.self_placing and f.tasks_fds == []
    assert set(os.listdir("/proc/self/fd")) == before


def test_the_childs_report_reads_back_as_sent():
    from ociruntime import init
    from ociruntime.initargs import ExecArgs, InitArgs
    assert launch._pid_report(init.pid_report(InitArgs(self_placed=True), 321), 1) == (321, True)
    assert launch._pid_report(init.pid_report(InitArgs(self_placed=False), 321), 1) == (321, False)
    assert launch._pid_report(init.pid_report(ExecArgs(self_placed=True), None), 7) == (7, True)
    assert launch._pid_report(init.pid_report(ExecArgs(), None), 7) == (7, False)


@pytest.mark.parametrize("payload,pid,placed", [("123", 123, False), ("123 placed", 123, True), ("", 9, False),
                                                 ("placed", 9, True)])
def test_the_pid_report_carries_the_pid_and_whether_the_child_placed_itself(payload, pid, placed):
    assert launch._pid_report(payload, 9) == (pid, placed)


def test_the_pidns_fork_uses_the_fork_it_is_given():
    assert launch._fork_in_pidns(None, lambda: 55) == (55, False)
    assert launch._fork_in_pidns("same", lambda: 56) == (56, True)


# -- the child of fork_into_cgroup -----------------------------------------------------------------------------------

def _own_v2_cgroup_fd():
    """An fd of the cgroup2 directory we are in (the hybrid's unified hierarchy, or v2's): being born in one's own
    cgroup is allowed and changes nothing."""
    with open("/proc/self/cgroup") as f:
        path = [ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")]
    for mnt in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if path and os.path.exists(f"{mnt}/cgroup.controllers"):
            d = mnt + path[0].rstrip("/")
            if os.path.isdir(d):
                return os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    pytest.skip("no cgroup2 hierarchy we can see our own cgroup in")


def test_the_child_of_fork_into_cgroup_is_a_sound_python_process():
    """As after os.fork: its thread descriptor has its own tid (glibc's pthread functions aimed at itself go by it),
    os.register_at_fork hooks ran in both processes, it can start a thread, import, and run a subprocess, and its
    signal mask is the parent's (signals are blocked around the call only)."""
    hits = []
    os.register_at_fork(before=lambda: hits.append("before"), after_in_parent=lambda: hits.append("parent"),
                        after_in_child=lambda: hits.append("child"))
    fd = _own_v2_cgroup_fd()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    r, w = os.pipe()
    try:
        pid = sc.fork_into_cgroup(fd)
    except SyscallError as e:
        if e.err in (errno.ENOSYS, errno.EINVAL, errno.E2BIG):
            pytest.skip(f"this kernel has no clone3 CLONE_INTO_CGROUP: {e}")
        raise
    if pid == 0:
        try:
            libc = ctypes.CDLL(None)
            libc.pthread_self.restype = ctypes.c_void_p
            tid = ctypes.c_int.from_address(libc.pthread_self() + sc._clone[1]).value
            got = []
            t = threading.Thread(target=lambda: got.append(threading.get_native_id()))
            t.start()
            t.join()
            import subprocess
            import json                 # noqa: F401 — the import lock was re-made for this process
            ok = [tid == os.getpid() == threading.get_native_id(), hits[-1] == "child", bool(got),
                  subprocess.run(["true"]).returncode == 0, signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask]
            os.write(w, b"1" if all(ok) else repr(ok).encode())
        finally:
            os._exit(0)
    os.close(fd)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    assert os.waitpid(pid, 0) == (pid, 0)
    assert out == b"1"
    assert hits[-2:] == ["before", "parent"]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask    # blocked around the call only


def test_fork_into_a_directory_that_is_no_cgroup2_makes_no_process(tmp_path):
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with pytest.raises(SyscallError) as e:
            sc.fork_into_cgroup(fd)
    finally:
        os.close(fd)
    assert e.value.call == "clone3" and e.value.err in (errno.EBADF, errno.ENOSYS, errno.EINVAL, errno.E2BIG)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_fork_into_cgroup_refuses_while_other_threads_run():
    """glibc's fork resets the malloc, stdio and loader locks another thread could hold; clone3 cannot."""
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        with pytest.raises(SyscallError) as e:
            sc.fork_into_cgroup(-1)
    finally:
        stop.set()
        t.join()
    assert "other threads" in str(e.value)
