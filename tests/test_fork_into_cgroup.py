"""clone3(CLONE_INTO_CGROUP) for create's and exec's child (issue 12): when it is tried (launch._birth_cgroup), what
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


def test_a_v2_cgroup_is_where_the_child_is_born():
    assert launch._birth_cgroup(V2) == "/sys/fs/cgroup/c1"
    assert launch._birth_cgroup(V2, _Proc({"final": "1"})) == "/sys/fs/cgroup/c1"


def test_v1_and_hybrid_hosts_keep_placing_by_writes():
    assert launch._birth_cgroup(V1Manager([]).to_state()) is None


def test_no_cgroup_and_the_systemd_driver_are_not_born_in_a_cgroup():
    assert launch._birth_cgroup(None) is None
    assert launch._birth_cgroup(SystemdManager("/sys/fs/cgroup/system.slice/x.scope", "/sys/fs/cgroup",
                                               "x.scope", "system.slice").to_state()) is None


def test_an_exec_with_an_initial_cpu_affinity_is_placed_by_a_write_after_it():
    assert launch._birth_cgroup(V2, _Proc({"initial": "0"})) is None


# -- the fallback ----------------------------------------------------------------------------------------------------

@pytest.fixture
def forks(monkeypatch):
    """os.fork as launch sees it, faked: returns 4242 and counts."""
    calls = []
    monkeypatch.setattr(launch.os, "fork", lambda: calls.append(1) or 4242)
    return calls


def test_without_a_birth_cgroup_it_is_os_fork(forks):
    f = launch._Fork(None)
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
    assert f.describe(4242).startswith("forked the child (pid 4242); clone3 into the cgroup refused (clone3 ")


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
