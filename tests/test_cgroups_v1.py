"""cgroup v1 driver against the real hierarchies of this host. Creates cgroups: run only under
`sh spec-tests/confine.sh` (the tests skip themselves otherwise), each test below its own relative path."""
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
from ociruntime.linux.cgroups import CgroupError, SystemdCgroupUnavailable
from ociruntime.linux.cgroups.v1 import V1Manager

pytestmark = [
    pytest.mark.skipif(os.environ.get("OCIRUNTIME_CONFINED") != "1",
                       reason="creates cgroups: run under spec-tests/confine.sh"),
    pytest.mark.skipif(os.geteuid() != 0 or cgroups.detect() != "v1", reason="needs root on a cgroup v1 host"),
]


@pytest.fixture
def logs():
    return []


@pytest.fixture
def mgr(logs):
    """A manager for a unique relative path; destroyed (and checked gone) after the test."""
    m = cgroups.manager_for(f"test-{uuid.uuid4().hex[:8]}", "unused", log=logs.append)
    m.create()
    yield m
    for pid in m.pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if m.is_frozen():
        m.thaw()
    m.destroy()
    assert not [p for p in m.paths.values() if os.path.exists(p)]


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


def read(m, ctrl, name):
    with open(os.path.join(m.paths[ctrl], name)) as f:
        return f.read().strip()


def in_child(m, fn):
    """Fork; the child joins m's cgroup (placed by the parent), runs fn() and exits with its return code."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
            os._exit(fn())
        except BaseException:
            os._exit(99)
    os.close(r)
    m.apply(pid)
    os.write(w, b"x")
    os.close(w)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# -- paths ------------------------------------------------------------------------------------------------------

def test_relative_path_is_below_own_cgroup_in_every_hierarchy(mgr, sleeper):
    p = sleeper()
    mgr.apply(p.pid)
    inner = os.path.basename(mgr.paths["memory"])
    own = cgroups.common.own_cgroups()
    with open(f"/proc/{p.pid}/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        key = ctrls.split(",")[0]
        assert path == os.path.join(own[key], inner), line
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "blkio"):
        assert mgr.paths[ctrl].endswith("/" + inner)


def test_absolute_path_starts_at_hierarchy_root():
    m = cgroups.manager_for("/abs-test/x", "c1")
    assert m.paths["memory"] == "/sys/fs/cgroup/memory/abs-test/x"
    assert m.paths["pids"] == "/sys/fs/cgroup/pids/abs-test/x"


def test_no_path_defaults_to_container_id_relative():
    m = cgroups.manager_for(None, "ctr-7")
    own = cgroups.common.own_cgroups()["memory"]
    assert m.paths["memory"] == os.path.normpath(f"/sys/fs/cgroup/memory/{own}/ctr-7")


def test_relative_path_cannot_climb_above_own_cgroup():
    m = cgroups.manager_for("../../escape", "c1")
    own = cgroups.common.own_cgroups()["pids"]
    assert m.paths["pids"] == os.path.normpath(f"/sys/fs/cgroup/pids/{own}/escape")


def test_systemd_driver_is_a_clear_error():
    if not os.path.isdir("/run/systemd/system"):
        with pytest.raises(SystemdCgroupUnavailable, match="systemd is not running on this host"):
            cgroups.manager_for("system.slice:runc:x", "x", systemd=True)
    with pytest.raises(SystemdCgroupUnavailable, match="slice:prefix:name"):
        cgroups.manager_for("/not/systemd", "x", systemd=True)


def test_state_round_trip_rebuilds_the_same_manager(mgr):
    blob = json.loads(json.dumps(mgr.to_state()))
    m2 = cgroups.manager_from_state(blob)
    assert m2.paths == mgr.paths and m2.version == "v1"


# -- resources --------------------------------------------------------------------------------------------------

def test_memory_settings_are_written(mgr):
    mgr.set({"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20, "swappiness": 7,
                        "kernelTCP": 16 << 20, "disableOOMKiller": True, "useHierarchy": True}})
    assert int(read(mgr, "memory", "memory.limit_in_bytes")) == 64 << 20
    assert int(read(mgr, "memory", "memory.memsw.limit_in_bytes")) == 96 << 20
    assert int(read(mgr, "memory", "memory.soft_limit_in_bytes")) == 32 << 20
    assert read(mgr, "memory", "memory.swappiness") == "7"
    assert int(read(mgr, "memory", "memory.kmem.tcp.limit_in_bytes")) == 16 << 20
    assert "oom_kill_disable 1" in read(mgr, "memory", "memory.oom_control")
    assert read(mgr, "memory", "memory.use_hierarchy") == "1"


def test_memory_update_raising_limit_above_old_swap_orders_writes(mgr):
    mgr.set({"memory": {"limit": 32 << 20, "swap": 48 << 20}})
    mgr.set({"memory": {"limit": 128 << 20, "swap": 256 << 20}})  # memsw first, or the kernel refuses
    assert int(read(mgr, "memory", "memory.limit_in_bytes")) == 128 << 20
    mgr.set({"memory": {"limit": 16 << 20, "swap": 20 << 20}})    # now memory first
    assert int(read(mgr, "memory", "memory.memsw.limit_in_bytes")) == 20 << 20


def test_memory_unlimited_also_unlimits_swap(mgr):
    mgr.set({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    mgr.set({"memory": {"limit": -1}})
    assert int(read(mgr, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60


def test_swappiness_out_of_range_is_an_error(mgr):
    with pytest.raises(CgroupError, match="swappiness.*0-100"):
        mgr.set({"memory": {"swappiness": 101}})


def test_memory_limit_below_usage_names_the_usage(mgr):
    mgr.set({"memory": {"swappiness": 0}})  # reclaim must not make room by swapping the child out
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)
        b = bytearray(24 << 20)  # noqa: F841 charged to the cgroup
        time.sleep(30)
        os._exit(0)
    try:
        mgr.apply(pid)
        os.write(w, b"x")
        deadline = time.time() + 10
        while int(read(mgr, "memory", "memory.usage_in_bytes")) < 20 << 20 and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(CgroupError, match=r"unable to set memory limit to 1048576 \(current usage"):
            mgr.set({"memory": {"limit": 1 << 20, "swap": 1 << 20}})
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_cpu_settings_are_written(mgr):
    mgr.set({"cpu": {"shares": 512, "quota": 20000, "period": 50000, "burst": 1000, "realtimePeriod": 1000000,
                     "realtimeRuntime": 1000, "idle": 0, "cpus": "0", "mems": "0"}})
    assert read(mgr, "cpu", "cpu.shares") == "512"
    assert read(mgr, "cpu", "cpu.cfs_quota_us") == "20000"
    assert read(mgr, "cpu", "cpu.cfs_period_us") == "50000"
    assert read(mgr, "cpu", "cpu.cfs_burst_us") == "1000"
    assert read(mgr, "cpu", "cpu.rt_period_us") == "1000000"
    assert read(mgr, "cpu", "cpu.rt_runtime_us") == "1000"
    assert read(mgr, "cpu", "cpu.idle") == "0"
    assert read(mgr, "cpuset", "cpuset.cpus") == "0"
    assert read(mgr, "cpuset", "cpuset.mems") == "0"


def test_cpu_period_shrink_with_quota_is_retried_after_quota(mgr):
    mgr.set({"cpu": {"quota": 500000, "period": 1000000}})
    mgr.set({"cpu": {"quota": 1000, "period": 10000}})
    assert read(mgr, "cpu", "cpu.cfs_period_us") == "10000"
    assert read(mgr, "cpu", "cpu.cfs_quota_us") == "1000"


def test_cpu_shares_clamped_by_kernel_is_an_error(mgr):
    with pytest.raises(CgroupError, match="maximum allowed cpu-shares is 262144"):
        mgr.set({"cpu": {"shares": 10 ** 7}})


def test_new_cpuset_cgroup_inherits_cpus_and_mems(mgr):
    parent = os.path.dirname(mgr.paths["cpuset"])
    with open(parent + "/cpuset.cpus") as f:
        assert read(mgr, "cpuset", "cpuset.cpus") == f.read().strip()


def test_pids_limit_values(mgr):
    mgr.set({"pids": {"limit": 42}})
    assert read(mgr, "pids", "pids.max") == "42"
    mgr.set({"pids": {"limit": -1}})
    assert read(mgr, "pids", "pids.max") == "max"
    mgr.set({"pids": {"limit": 0}})  # a real limit, not "unset"
    assert read(mgr, "pids", "pids.max") == "0"


def test_pids_limit_is_enforced(mgr):
    mgr.set({"pids": {"limit": 1}})

    def try_fork():
        try:
            pid = os.fork()
        except OSError as e:
            return 7 if e.errno == errno.EAGAIN else 8
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return 0
    assert in_child(mgr, try_fork) == 7


def _first_block_device():
    with open("/sys/block/" + sorted(os.listdir("/sys/block"))[0] + "/dev") as f:
        return tuple(int(x) for x in f.read().split(":"))


def _weight_file(mgr):
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if os.path.exists(mgr.paths["blkio"] + "/" + name):
            return name
    return None


def test_blkio_throttle_limits_are_written(mgr):
    major, minor = _first_block_device()
    mgr.set({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                         "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 77}]}})
    assert f"{major}:{minor} 1048576" in read(mgr, "blkio", "blkio.throttle.read_bps_device")
    assert f"{major}:{minor} 77" in read(mgr, "blkio", "blkio.throttle.write_iops_device")


def test_blkio_weight_goes_to_cfq_or_bfq_file_and_missing_leaf_weight_is_skipped(mgr, logs):
    weight_file = _weight_file(mgr)
    if weight_file is None:
        pytest.skip("no blkio.weight nor blkio.bfq.weight: this kernel's I/O schedulers have no weights (no CFQ/BFQ)")
    mgr.set({"blockIO": {"weight": 300, "leafWeight": 200}})
    assert read(mgr, "blkio", weight_file).split()[-1] == "300"
    if not os.path.exists(mgr.paths["blkio"] + "/blkio.leaf_weight"):
        assert any("leafWeight" in line and "skipped" in line for line in logs)


def test_blkio_weight_without_weight_files_is_a_clear_error(mgr):
    if _weight_file(mgr) is not None:
        pytest.skip(f"this kernel has {_weight_file(mgr)}: the missing-file error cannot happen here")
    with pytest.raises(CgroupError) as e:
        mgr.set({"blockIO": {"weight": 300}})
    msg = str(e.value)
    assert msg.startswith("linux.resources.blockIO.weight: ") and "blkio.bfq.weight" in msg and "BFQ" in msg
    major, minor = _first_block_device()
    with pytest.raises(CgroupError, match=r"blockIO\.weightDevice\[0\]\.weight: .*neither blkio.weight"):
        mgr.set({"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 10}]}})


def test_devices_default_deny_plus_allowed_list(mgr, tmp_path):
    mem = str(tmp_path / "mem")
    os.mknod(mem, 0o600 | 0o020000, os.makedev(1, 1))
    mgr.set({"devices": [{"allow": False, "access": "rwm"},
                         {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]}, initial=True)
    lines = read(mgr, "devices", "devices.list").splitlines()
    assert "a *:* rwm" not in lines
    for want in ("c 1:11 r", "c 1:3 rwm", "c 136:* rwm", "c *:* m", "b *:* m", "c 5:2 rwm"):
        assert want in lines

    def probe():
        out = 0
        for bit, (path, flags) in enumerate((("/dev/null", os.O_RDWR), ("/dev/kmsg", os.O_RDONLY),
                                             ("/dev/kmsg", os.O_WRONLY), (mem, os.O_RDONLY))):
            try:
                os.close(os.open(path, flags))
            except PermissionError:
                out |= 1 << bit
            except OSError:
                pass  # allowed by the cgroup, refused by the driver (e.g. ENXIO: no /dev/mem in this kernel)
        return out
    # null allowed, kmsg read allowed, kmsg write denied, mem denied
    assert in_child(mgr, probe) == 0b1100


def test_device_rules_apply_in_order(mgr):
    mgr.set({"devices": [{"allow": True, "access": "rwm"},
                         {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]})
    lines = read(mgr, "devices", "devices.list").splitlines()
    assert lines == ["a *:* rwm"] or "c 1:11 rwm" not in lines  # allow-all with an exception


def test_devices_on_update_only_when_given(mgr):
    mgr.set({"devices": [{"allow": False, "access": "rwm"}]}, initial=True)
    before = read(mgr, "devices", "devices.list")
    mgr.set({"pids": {"limit": 5}})
    assert read(mgr, "devices", "devices.list") == before


def test_unified_on_v1_is_an_error(mgr):
    with pytest.raises(CgroupError, match="cgroup v1 does not support unified"):
        mgr.set({"unified": {"memory.max": "1000000"}})


@pytest.mark.parametrize("res,ctrl", [
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]}, "hugetlb"),
    ({"network": {"classID": 1048577}}, "net_cls"),
    ({"network": {"priorities": [{"name": "lo", "priority": 5}]}}, "net_prio"),
    ({"rdma": {"mlx5_1": {"hcaHandles": 3}}}, "rdma"),
])
def test_resource_of_unmounted_controller_is_a_clear_error(mgr, res, ctrl):
    if ctrl in mgr.paths:
        pytest.skip(f"{ctrl} is mounted here")
    with pytest.raises(CgroupError, match=f"cgroup controller {ctrl} is not available"):
        mgr.set(res)


# -- controllers this host lacks, against a fake directory tree -------------------------------------------------

@pytest.fixture
def fake(tmp_path):
    files = {"hugetlb": ["hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.rsvd.limit_in_bytes", "hugetlb.1GB.limit_in_bytes"],
             "net_cls": ["net_cls.classid"], "net_prio": ["net_prio.ifpriomap"], "rdma": ["rdma.max"]}
    hs = []
    for ctrl, names in files.items():
        d = tmp_path / ctrl
        d.mkdir()
        for n in names:
            (d / n).write_text("")
        hs.append({"ctrls": [ctrl], "opts": ctrl, "mnt": str(tmp_path), "dir": str(d)})
    return V1Manager(hs)


def test_hugetlb_limit_and_reservation_written(fake):
    fake.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}, {"pageSize": "1GB", "limit": 1 << 30}]})
    d = fake.paths["hugetlb"]
    assert open(d + "/hugetlb.2MB.limit_in_bytes").read() == str(4 << 21)
    assert open(d + "/hugetlb.2MB.rsvd.limit_in_bytes").read() == str(4 << 21)
    assert open(d + "/hugetlb.1GB.limit_in_bytes").read() == str(1 << 30)


def test_hugetlb_unknown_page_size_is_an_error(fake):
    with pytest.raises(CgroupError, match="hugepage size 3MB is not supported"):
        fake.set({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})


def test_network_and_rdma_written(fake):
    fake.set({"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
              "rdma": {"mlx4_0": {"hcaObjects": 1000}}})
    assert open(fake.paths["net_cls"] + "/net_cls.classid").read() == "1048577"
    assert open(fake.paths["net_prio"] + "/net_prio.ifpriomap").read() == "eth0 500"
    assert open(fake.paths["rdma"] + "/rdma.max").read() == "mlx4_0 hca_handle=max hca_object=1000"


# -- freezer, pids, stats, OOM, kill, destroy ---------------------------------------------------------------------

def test_freeze_and_thaw(mgr, sleeper):
    p = sleeper()
    mgr.apply(p.pid)
    assert not mgr.is_frozen()
    mgr.freeze()
    assert mgr.is_frozen() and read(mgr, "freezer", "freezer.state") == "FROZEN"
    with open(f"/proc/{p.pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in ("D", "S")  # frozen tasks sleep in the freezer
    mgr.thaw()
    assert not mgr.is_frozen() and read(mgr, "freezer", "freezer.state") == "THAWED"


def test_pids_lists_processes_in_sub_cgroups(mgr, sleeper):
    a, b = sleeper(), sleeper()
    mgr.apply(a.pid)
    for ctrl in ("freezer", "pids", "devices", "memory"):
        os.mkdir(mgr.paths[ctrl] + "/sub")
    with open(mgr.paths["freezer"] + "/sub/cgroup.procs", "w") as f:
        f.write(str(b.pid))
    assert sorted(mgr.pids()) == sorted([a.pid, b.pid])


def test_destroy_removes_sub_cgroups_and_is_idempotent(logs):
    m = cgroups.manager_for(f"test-{uuid.uuid4().hex[:8]}/nested", "x")
    m.create()
    os.mkdir(m.paths["memory"] + "/child")
    m.destroy()
    m.destroy()
    assert not [p for p in m.paths.values() if os.path.exists(p)]
    for d in {os.path.dirname(p) for p in m.paths.values()}:
        os.rmdir(d)


def test_destroy_waits_for_exiting_tasks(mgr):
    p = subprocess.Popen(["sleep", "60"])
    mgr.apply(p.pid)
    p.kill()  # not reaped yet: a zombie still holds the cgroup until waited
    import threading
    t = threading.Timer(0.1, p.wait)
    t.start()
    mgr.destroy()
    t.join()
    assert not os.path.exists(mgr.paths["memory"])


def test_stats_have_runc_shape(mgr, sleeper):
    mgr.set({"pids": {"limit": 50}, "memory": {"limit": 64 << 20}})
    p = sleeper(sys.executable, "-c", "import time; [0]*10**6; time.sleep(60)")
    mgr.apply(p.pid)
    s = mgr.stats()
    assert set(s) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert s["pids"] == {"current": 1, "limit": 50}
    assert s["memory"]["usage"]["limit"] == 64 << 20 and "failcnt" in s["memory"]["usage"]
    assert "kernel" in s["cpu"]["usage"] and "user" in s["cpu"]["usage"]
    assert "raw" in s["memory"] and "total_rss" in s["memory"]["raw"]
    json.dumps(s)


def test_oom_notification_fires(mgr):
    mgr.set({"memory": {"limit": 8 << 20, "swap": 8 << 20}})
    n = mgr.oom_notifier()
    try:
        code = in_child(mgr, lambda: len(bytearray(64 << 20)) and 0)
        assert code == -signal.SIGKILL
        ready, _, _ = select.select([n], [], [], 5)
        assert ready and n.read() >= 1
    finally:
        n.close()


def test_kill_all_signals_every_process(mgr, sleeper):
    a, b = sleeper(), sleeper()
    mgr.apply(a.pid)
    mgr.apply(b.pid)
    mgr.kill_all(signal.SIGTERM)
    assert a.wait(5) == -signal.SIGTERM and b.wait(5) == -signal.SIGTERM
    assert not mgr.is_frozen()


def test_failed_create_path_is_reported_with_the_file():
    m = V1Manager([{"ctrls": ["memory"], "opts": "memory", "mnt": "/proc", "dir": "/proc/1/nope/x"}])
    with pytest.raises(CgroupError, match="create cgroup /proc/1/nope/x"):
        m.create()


def test_create_refuses_a_frozen_cgroup(mgr):
    mgr.freeze()
    try:
        with pytest.raises(CgroupError, match="unexpectedly frozen"):
            cgroups.manager_from_state(mgr.to_state()).create()
    finally:
        mgr.thaw()


def test_kill_all_sigkill_of_a_paused_container(mgr, sleeper):
    a = sleeper()
    mgr.apply(a.pid)
    mgr.freeze()
    mgr.kill_all(signal.SIGKILL)
    assert a.wait(5) == -signal.SIGKILL and not mgr.is_frozen()
