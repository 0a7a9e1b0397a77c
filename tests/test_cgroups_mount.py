"""The OCI `cgroup` mount (cgroups.mount_cgroup) on this cgroup v1 host: in a forked child with its own mount
namespace (and cgroup namespace), the mounted tree must show the container's cgroup, not the host's."""
import errno
import os
import uuid

import pytest

from ociruntime.linux import cgroups
from ociruntime.linux import syscalls as sc

pytestmark = [
    pytest.mark.skipif(os.environ.get("OCIRUNTIME_CONFINED") != "1",
                       reason="creates cgroups: run under spec-tests/confine.sh"),
    pytest.mark.skipif(os.geteuid() != 0 or cgroups.detect() != "v1", reason="needs root on a cgroup v1 host"),
]

LIMIT = 48 << 20


@pytest.fixture
def mgr():
    m = cgroups.manager_for(f"test-mnt-{uuid.uuid4().hex[:8]}", "unused")
    m.create()
    m.set({"memory": {"limit": LIMIT}})
    yield m
    m.destroy()


def run_in_container_ns(mgr, dest, *, cgroupns, read_only):
    """Fork a child placed in mgr's cgroup that unshares mount (+cgroup) namespaces, mounts the cgroup tree at
    dest through /proc/self/fd/N and reports what it sees as exit-code bits."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.read(r, 1)  # placed in the cgroup by now
            sc.unshare(sc.CLONE_NEWNS | (sc.CLONE_NEWCGROUP if cgroupns else 0))
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            fd = os.open(dest, os.O_PATH | os.O_DIRECTORY)
            cgroups.mount_cgroup(f"/proc/self/fd/{fd}", read_only=read_only, cgroupns=cgroupns,
                                 manager_state=mgr.to_state())
            names = set(os.listdir(dest))
            if {"memory", "cpu", "cpuacct", "devices", "freezer", "pids", "systemd"} <= names:
                code |= 1
            with open(dest + "/memory/memory.limit_in_bytes") as f:
                if int(f.read()) == LIMIT:
                    code |= 2  # the container's own cgroup is the tree's root
            with open(dest + "/pids/cgroup.procs") as f:
                if str(os.getpid()) in f.read().split():
                    code |= 4
            try:
                with open(dest + "/pids/pids.max", "w") as f:
                    f.write("100")
            except OSError as e:
                if e.errno == errno.EROFS:
                    code |= 8
            try:
                os.mkdir(dest + "/extra")
            except OSError as e:
                if e.errno == errno.EROFS:
                    code |= 16
            if "unified" not in names:
                code |= 32
        except BaseException as e:
            os.write(2, f"child: {e!r}\n".encode())
            code = 100
        os._exit(code)
    mgr.apply(pid)
    os.write(w, b"x")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "bind"])
def test_cgroup_mount_shows_the_containers_cgroup(mgr, tmp_path, cgroupns):
    assert run_in_container_ns(mgr, str(tmp_path), cgroupns=cgroupns, read_only=False) == 1 | 2 | 4 | 32


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "bind"])
def test_read_only_cgroup_mount_refuses_writes(mgr, tmp_path, cgroupns):
    assert run_in_container_ns(mgr, str(tmp_path), cgroupns=cgroupns, read_only=True) == 1 | 2 | 4 | 8 | 16 | 32


def test_nothing_leaks_into_the_callers_mount_namespace(mgr, tmp_path):
    run_in_container_ns(mgr, str(tmp_path), cgroupns=True, read_only=False)
    assert os.listdir(tmp_path) == []
