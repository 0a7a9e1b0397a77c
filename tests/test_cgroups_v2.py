"""cgroup v2 driver. The core (create, join, freeze, kill, pids, destroy) runs on any cgroup2 mount, including the
controller-less one of a hybrid host; the resource tests need /sys/fs/cgroup to be cgroup2 (e.g. in
/work/shared/tools/cgroup2-vm.sh) and are skipped elsewhere. Creates cgroups: run under spec-tests/confine.sh or in
the throw-away VM."""
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ociruntime.linux import cgroups
from ociruntime.linux import syscalls as sc
from ociruntime.linux.cgroups import CgroupError, common
from ociruntime.linux.cgroups.v2 import V2Manager, cpu_weight, io_weight

UNIFIED = cgroups.detect() == "v2"
ALLOWED = os.geteuid() == 0 and "1" in (os.environ.get("OCIRUNTIME_CONFINED"), os.environ.get("CGROUP2_VM"))
pytestmark = pytest.mark.skipif(not ALLOWED, reason="creates cgroups: run as root under spec-tests/confine.sh "
                                                    "(or in the cgroup2 VM with CGROUP2_VM=1)")
needs_unified = pytest.mark.skipif(not UNIFIED, reason="/sys/fs/cgroup is not cgroup2")


def _cgroup2_root():
    for fstype, mnt, _, _ in common.cgroup_mounts():
        if fstype == "cgroup2":
            return mnt
    return None


# -- pure conversions ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("swap_file,memory,want", [
    (True, {"limit": 64 << 20, "swap": 64 << 20}, "0"),           # memory+swap == limit: no swap (runc writes 0)
    (True, {"limit": 64 << 20, "swap": 96 << 20}, str(32 << 20)),
    (True, {"limit": -1}, "max"),
    (False, {"limit": 64 << 20, "swap": 64 << 20}, None),         # no swap in this kernel: none is what it has
])
def test_memory_swap_conversion_on_a_plain_directory(tmp_path, swap_file, memory, want):
    from ociruntime.linux.cgroups.v2 import V2Dir, _set_memory
    for name in ("memory.max", "memory.swap.max") if swap_file else ("memory.max",):
        (tmp_path / name).write_text("")        # cgroup files are written without O_TRUNC
    _set_memory(V2Dir(str(tmp_path), "memory"), memory)
    assert (tmp_path / "memory.max").read_text() == _max_str(memory["limit"])
    assert ((tmp_path / "memory.swap.max").read_text() if swap_file else None) == want


def _max_str(v):
    return "max" if v == -1 else str(v)


def test_cpu_shares_to_weight_matches_runc():
    assert cpu_weight(2) == 1 and cpu_weight(262144) == 10000 and cpu_weight(1024) == 39


def test_blkio_weight_to_io_weight_matches_runc():
    assert io_weight(10) == 1 and io_weight(1000) == 10000 and io_weight(500) == 4950


# -- core, on any cgroup2 hierarchy ---------------------------------------------------------------------------------

@pytest.fixture
def core():
    root = _cgroup2_root()
    if root is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    m = V2Manager(os.path.join(root, f"test-core-{uuid.uuid4().hex[:8]}"), root, controllers=())
    m.create()
    yield m
    if m.is_frozen():
        m.thaw()
    m.kill_all(signal.SIGKILL)
    deadline = time.time() + 5
    while m.pids() and time.time() < deadline:
        time.sleep(0.01)
    m.destroy()
    assert not os.path.exists(m.path)


@pytest.fixture
def sleeper():
    procs = []

    def start(*argv):
        p = subprocess.Popen(list(argv) or ["sleep", "60"])
        procs.append(p)
        return p
    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_apply_and_pids(core, sleeper):
    a, b = sleeper(), sleeper()
    core.apply(a.pid)
    os.mkdir(core.path + "/sub")
    with open(core.path + "/sub/cgroup.procs", "w") as f:
        f.write(str(b.pid))
    assert sorted(core.pids()) == sorted([a.pid, b.pid])
    with open(f"/proc/{a.pid}/cgroup") as f:
        assert f.read().strip().endswith("0::" + core.path[len(_cgroup2_root()):])


def test_freeze_thaw_via_cgroup_freeze(core, sleeper):
    p = sleeper()
    core.apply(p.pid)
    core.freeze()
    assert core.is_frozen()
    with open(core.path + "/cgroup.events") as f:
        assert "frozen 1" in f.read()
    core.thaw()
    assert not core.is_frozen()


def test_kill_all_uses_cgroup_kill(core, sleeper):
    a, b = sleeper(), sleeper()
    core.apply(a.pid)
    core.apply(b.pid)
    core.kill_all(signal.SIGKILL)
    assert a.wait(5) == -signal.SIGKILL and b.wait(5) == -signal.SIGKILL


def test_kill_all_other_signal(core, sleeper):
    a = sleeper()
    core.apply(a.pid)
    core.kill_all(signal.SIGTERM)
    assert a.wait(5) == -signal.SIGTERM and not core.is_frozen()


def test_state_round_trip(core):
    m2 = cgroups.manager_from_state(json.loads(json.dumps(core.to_state())))
    assert m2.paths == core.paths and m2.version == "v2"


# -- resources: a pure cgroup v2 host -----------------------------------------------------------------------------

@pytest.fixture
def logs():
    return []


@pytest.fixture
def mgr(logs):
    m = cgroups.manager_for(f"test-{uuid.uuid4().hex[:8]}", "unused", log=logs.append)
    m.create()
    yield m
    m.kill_all(signal.SIGKILL)
    deadline = time.time() + 5
    while m.pids() and time.time() < deadline:
        time.sleep(0.01)
    m.destroy()
    assert not os.path.exists(m.path)


def read(m, name):
    with open(os.path.join(m.path, name)) as f:
        return f.read().strip()


def have(m, ctrl):
    return ctrl in read(m, "cgroup.controllers").split()


@needs_unified
def test_relative_path_is_below_own_cgroup_and_controllers_enabled(mgr):
    own = common.own_cgroups()[""]
    assert mgr.path == os.path.normpath(f"/sys/fs/cgroup/{own}/{os.path.basename(mgr.path)}")
    assert {"memory", "pids"} <= set(read(mgr, "cgroup.controllers").split())


@needs_unified
def test_memory(mgr, logs):
    mgr.set({"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20, "swappiness": 10,
                        "kernel": 1 << 20, "disableOOMKiller": True}})
    assert read(mgr, "memory.max") == str(64 << 20)
    assert read(mgr, "memory.low") == str(16 << 20)
    if os.path.exists(mgr.path + "/memory.swap.max"):
        assert read(mgr, "memory.swap.max") == str(32 << 20)  # memory+swap minus memory
    assert any("swappiness" in x for x in logs) and any("disableOOMKiller" in x for x in logs)
    mgr.set({"memory": {"limit": -1}})
    assert read(mgr, "memory.max") == "max"


@needs_unified
def test_memory_swap_below_limit_is_an_error(mgr):
    with pytest.raises(CgroupError, match="should be >= memory limit"):
        mgr.set({"memory": {"limit": 64 << 20, "swap": 32 << 20}})


@needs_unified
def test_memory_check_before_update(mgr, sleeper):
    # memory is charged to the cgroup it is allocated in (v2 moves no charges): allocate after the move, and wait
    # for it (a slow machine, the arm64 VM, may have finished starting the interpreter before apply)
    p = sleeper(sys.executable, "-c", "import time\nwhile True: b = bytearray(1 << 20); time.sleep(0.01)")
    mgr.apply(p.pid)
    deadline = time.monotonic() + 10
    while int(read(mgr, "memory.current")) <= 4096:
        assert time.monotonic() < deadline, "the process never allocated in its cgroup"
        time.sleep(0.05)
    with pytest.raises(CgroupError, match="below current usage"):
        mgr.set({"memory": {"limit": 4096, "checkBeforeUpdate": True}})


@needs_unified
def test_cpu(mgr):
    mgr.set({"cpu": {"shares": 1024, "quota": 20000, "period": 50000, "burst": 1000, "idle": 0,
                     "cpus": "0", "mems": "0"}})
    assert read(mgr, "cpu.weight") == "39"
    assert read(mgr, "cpu.max") == "20000 50000"
    assert read(mgr, "cpu.max.burst") == "1000"
    assert read(mgr, "cpu.idle") == "0"
    if have(mgr, "cpuset"):
        assert read(mgr, "cpuset.cpus") == "0" and read(mgr, "cpuset.mems") == "0"
    mgr.set({"cpu": {"quota": -1, "period": 100000}})
    assert read(mgr, "cpu.max") == "max 100000"


@needs_unified
def test_cpu_realtime_is_an_error(mgr):
    with pytest.raises(CgroupError, match="realtime"):
        mgr.set({"cpu": {"realtimeRuntime": 1000}})


@needs_unified
def test_pids(mgr):
    mgr.set({"pids": {"limit": 9}})
    assert read(mgr, "pids.max") == "9"
    mgr.set({"pids": {"limit": -1}})
    assert read(mgr, "pids.max") == "max"


@needs_unified
def test_io(mgr, logs):
    if not have(mgr, "io"):
        pytest.skip("io controller not available")
    blocks = sorted(os.listdir("/sys/block"))
    if not blocks:
        pytest.skip("no block device (load brd)")
    major, minor = open(f"/sys/block/{blocks[0]}/dev").read().strip().split(":")
    mgr.set({"blockIO": {"weight": 500, "leafWeight": 300,
                         "throttleReadBpsDevice": [{"major": int(major), "minor": int(minor), "rate": 2097152}],
                         "throttleWriteIOPSDevice": [{"major": int(major), "minor": int(minor), "rate": 120}]}})
    io_max = read(mgr, "io.max")
    assert f"{major}:{minor}" in io_max and "rbps=2097152" in io_max and "wiops=120" in io_max
    if os.path.exists(mgr.path + "/io.bfq.weight"):
        assert "500" in read(mgr, "io.bfq.weight")
    elif os.path.exists(mgr.path + "/io.weight"):
        assert "4950" in read(mgr, "io.weight")
    assert any("leafWeight" in x for x in logs)


@needs_unified
def test_hugetlb(mgr):
    if not have(mgr, "hugetlb"):
        pytest.skip("hugetlb controller not available")
    size = common.hugepage_sizes()[0]
    mgr.set({"hugepageLimits": [{"pageSize": size, "limit": 4 * common.parse_size(size)}]})
    assert read(mgr, f"hugetlb.{size}.max") == str(4 * common.parse_size(size))
    if os.path.exists(f"{mgr.path}/hugetlb.{size}.rsvd.max"):
        assert read(mgr, f"hugetlb.{size}.rsvd.max") == str(4 * common.parse_size(size))
    with pytest.raises(CgroupError, match="hugepage size 3MB is not supported"):
        mgr.set({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})


@needs_unified
def test_unified_keys_written_and_unknown_controller_rejected(mgr):
    mgr.set({"unified": {"pids.max": "7", "memory.high": "67108864"}})
    assert read(mgr, "pids.max") == "7" and read(mgr, "memory.high") == "67108864"
    with pytest.raises(CgroupError, match="controller nosuch is not available"):
        mgr.set({"unified": {"nosuch.max": "1"}})


@needs_unified
def test_network_is_skipped_on_v2(mgr, logs):
    mgr.set({"network": {"classID": 1}})
    assert any("net_cls" in x for x in logs)


@needs_unified
def test_devices_enforced(mgr, tmp_path):
    mem = str(tmp_path / "mem")
    os.mknod(mem, 0o600 | 0o020000, os.makedev(1, 1))
    mgr.set({"devices": [{"allow": False, "access": "rwm"}]}, initial=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)
        out = 0
        for bit, (path, flags) in enumerate((("/dev/null", os.O_RDWR), (mem, os.O_RDONLY))):
            try:
                os.close(os.open(path, flags))
            except PermissionError:
                out |= 1 << bit
            except OSError:
                pass
        os._exit(out)
    mgr.apply(pid)
    os.write(w, b"x")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0b10


@needs_unified
def test_stats_shape(mgr, sleeper):
    mgr.set({"pids": {"limit": 20}, "memory": {"limit": 64 << 20}})
    p = sleeper()
    mgr.apply(p.pid)
    s = mgr.stats()
    assert set(s) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert s["pids"] == {"current": 1, "limit": 20}
    assert s["memory"]["usage"]["limit"] == 64 << 20
    json.dumps(s)


@needs_unified
def test_oom_notification(mgr):
    mgr.set({"memory": {"limit": 8 << 20, "swap": 8 << 20}})
    n = mgr.oom_notifier()
    try:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.read(r, 1)
            b = bytearray(64 << 20)
            os._exit(len(b) and 0)
        mgr.apply(pid)
        os.write(w, b"x")
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
        ready, _, _ = select.select([n], [], [], 5)
        assert ready and n.read() >= 1
    finally:
        n.close()


@needs_unified
@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "bind"])
def test_cgroup_mount_shows_own_cgroup(mgr, tmp_path, cgroupns):
    mgr.set({"pids": {"limit": 33}})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.read(r, 1)
            sc.unshare(sc.CLONE_NEWNS | (sc.CLONE_NEWCGROUP if cgroupns else 0))
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            fd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
            cgroups.mount_cgroup(f"/proc/self/fd/{fd}", read_only=True, cgroupns=cgroupns,
                                 manager_state=mgr.to_state())
            if open(f"{tmp_path}/pids.max").read().strip() == "33":
                code |= 1
            try:
                open(f"{tmp_path}/pids.max", "w").write("5")
            except OSError as e:
                code |= 2 if e.errno == errno.EROFS else 0
        except BaseException as e:
            os.write(2, f"child: {e!r}\n".encode())
            code = 100
        os._exit(code)
    mgr.apply(pid)
    os.write(w, b"x")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 3
