"""launch._fork_in_pidns: exec's child is born in the container's pid namespace (setns in the parent). Processes
of the container can see it from its first instruction: it must be non-dumpable from birth (no /proc/<pid>/exe,
mem, fd, root for them: the CVE-2019-5736 class), not only from its own prctl a few ms later."""
import ctypes
import os

import pytest

from ociruntime import launch

PR_GET_DUMPABLE = 3
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _dumpable():
    return _prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="setns(CLONE_NEWPID) needs CAP_SYS_ADMIN")
def test_a_child_forked_into_a_containers_pid_namespace_is_non_dumpable_from_birth_and_the_parent_is_again():
    assert _dumpable() == 1
    r, w = os.pipe()
    pid, direct = launch._fork_in_pidns(f"/proc/{os.getpid()}/ns/pid")   # any pid namespace given by path
    if pid == 0:
        try:
            os.write(w, str(_dumpable()).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        born = os.read(r, 16)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert direct
    assert born == b"0"
    assert _dumpable() == 1
