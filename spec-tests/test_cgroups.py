"""config-linux.md "Control groups" and the commands built on them (update, pause, resume, events, ps, kill --all,
delete --force), with real busybox containers.

Every limit is read back twice: from inside the container (its own cgroup namespace, with the `cgroup` mount of the
base bundle at /sys/fs/cgroup) and from the host-side cgroup directory found through /proc/<pid>/cgroup. The file is
version-agnostic: on cgroup v1 (this host) and on cgroup v2 (`make test-cgroup2`) each resource is read from the file
that version has; what exists on one version only is skipped on the other, with the reason.
"""
import json
import marshal
import os
import time

import pytest

from conftest import reap

V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
MiB = 1 << 20
pytestmark = pytest.mark.skipif(os.environ.get("OCIRUNTIME_CONFINED") != "1",
                                reason="creates cgroups: run under spec-tests/confine.sh")


# -- where a container's cgroups are -------------------------------------------------------------------------------

def cgroup_mounts() -> dict:
    """{controller: (mount point, mount root)} of this process's view; "" is the cgroup2 hierarchy."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            fstype, _, sopts = post.split(" ", 2)
            if fstype == "cgroup2":
                out.setdefault("", (fields[4], fields[3]))
            elif fstype == "cgroup":
                for opt in sopts.split()[0].split(","):
                    out.setdefault(opt, (fields[4], fields[3]))
    return out


def host_dirs(pid: int) -> dict:
    """{controller: host directory} of the cgroups pid is in, from /proc/<pid>/cgroup (v2: the key "")."""
    mounts, out = cgroup_mounts(), {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                if c in mounts:
                    mnt, root = mounts[c]
                    rel = path[len(root):] if root != "/" and path.startswith(root) else path
                    out[c] = mnt.rstrip("/") + rel
    return out


def host_read(dirs: dict, ctrl: str, name: str) -> str:
    with open(os.path.join(dirs["" if V2 else ctrl], name)) as f:
        return f.read().strip()


def host_first_line(dirs: dict, ctrl: str, name: str) -> str:
    try:
        return host_read(dirs, ctrl, name).split("\n")[0]
    except FileNotFoundError:
        return "MISSING"


def dirs_named(name: str) -> list:
    """Every directory called `name` in any cgroup hierarchy we see (ours are small: confine.sh made them so)."""
    found = []
    for mnt, _ in set(cgroup_mounts().values()):
        for d, subdirs, _ in os.walk(mnt):
            found.extend(os.path.join(d, s) for s in subdirs if s == name)
    return found


def cgroup_name(bundle) -> str:
    return os.path.basename(bundle.config["linux"]["cgroupsPath"])


def procs(dirs: dict) -> set:
    """The pids of the container's cgroup (v1: the freezer's, which every process joins)."""
    reap()
    return {int(p) for p in host_read(dirs, "freezer", "cgroup.procs").split()}


# -- a container that reads its limits -------------------------------------------------------------------------------

def inside(ctrl: str, name: str) -> str:
    """The container's view of its cgroup file."""
    return f"/sys/fs/cgroup/{name}" if V2 else f"/sys/fs/cgroup/{ctrl}/{name}"


def read_limits(runtime, bundle, cid, resources: dict, files: list, skip_if_missing: str = ""):
    """Create a container with `resources` whose process prints the first line of each (ctrl, file); return
    (inside values, host-side values) as two lists in the order of `files`. skip_if_missing: skip (rather than fail)
    when create fails because the kernel lacks that cgroup file."""
    bundle.config["linux"]["resources"].update(resources)
    paths = " ".join(inside(c, n) for c, n in files)
    bundle.set_args("sh", "-c", f"for f in {paths}; do head -n 1 $f 2>/dev/null || echo MISSING; done > /tmp/limits")
    p = runtime("create", "--bundle", bundle.write(), cid, check=False)
    lacks = ("No such file", "is not enabled", "is not available", "CFQ or BFQ needed")
    if p.returncode and skip_if_missing and skip_if_missing in p.stderr and any(w in p.stderr for w in lacks):
        pytest.skip(f"this kernel has no {skip_if_missing} cgroup file: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    dirs = host_dirs(runtime.state(cid)["pid"])
    outside = [host_first_line(dirs, c, n) for c, n in files]
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    with open(os.path.join(bundle.rootfs, "tmp", "limits")) as f:
        return f.read().split("\n")[:-1], outside


def assert_limits(runtime, bundle, cid, resources, table, skip_if_missing=""):
    """table: [(ctrl, file, expected first line)] for this cgroup version."""
    got_in, got_out = read_limits(runtime, bundle, cid, resources, [(c, n) for c, n, _ in table], skip_if_missing)
    want = [w for _, _, w in table]
    assert got_in == want, f"inside the container: {list(zip([n for _, n, _ in table], got_in))}"
    assert got_out == want, f"host side: {list(zip([n for _, n, _ in table], got_out))}"


def need_controller(ctrl: str):
    if V2:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            if ctrl not in f.read().split():
                pytest.skip(f"cgroup v2 controller {ctrl} is not available")
    elif ctrl not in cgroup_mounts():
        pytest.skip(f"cgroup v1 hierarchy {ctrl} is not mounted on this host")


def cpu_weight(shares: int) -> int:
    """runc's cpu.shares -> cpu.weight conversion (cgroup v2)."""
    return 1 + ((shares - 2) * 9999) // 262142


# -- linux.resources, read back from both sides ------------------------------------------------------------------------

def test_memory_limit_reservation_and_swap_are_applied(runtime, bundle, cid):
    res = {"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB}}
    if V2:
        table = [("", "memory.max", str(64 * MiB)), ("", "memory.low", str(32 * MiB)),
                 ("", "memory.swap.max", str(32 * MiB))]          # v2 swap alone: memory+swap minus the limit
    else:
        table = [("memory", "memory.limit_in_bytes", str(64 * MiB)),
                 ("memory", "memory.soft_limit_in_bytes", str(32 * MiB)),
                 ("memory", "memory.memsw.limit_in_bytes", str(96 * MiB))]
    assert_limits(runtime, bundle, cid, res, table, skip_if_missing="swap")


@pytest.mark.skipif(V2, reason="swappiness and disableOOMKiller do not exist in cgroup v2")
def test_memory_swappiness_and_disabled_oom_killer_are_applied(runtime, bundle, cid):
    res = {"memory": {"limit": 64 * MiB, "swappiness": 7, "disableOOMKiller": True}}
    table = [("memory", "memory.swappiness", "7"), ("memory", "memory.oom_control", "oom_kill_disable 1")]
    assert_limits(runtime, bundle, cid, res, table)


def test_cpu_shares_quota_and_period_are_applied(runtime, bundle, cid):
    res = {"cpu": {"shares": 512, "quota": 20000, "period": 50000}}
    if V2:
        table = [("", "cpu.weight", str(cpu_weight(512))), ("", "cpu.max", "20000 50000")]
    else:
        table = [("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_quota_us", "20000"),
                 ("cpu", "cpu.cfs_period_us", "50000")]
    assert_limits(runtime, bundle, cid, res, table)


def test_cpuset_cpus_and_mems_are_applied(runtime, bundle, cid):
    need_controller("cpuset")
    table = [("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0")]
    assert_limits(runtime, bundle, cid, {"cpu": {"cpus": "0", "mems": "0"}}, table)


def test_pids_limit_is_applied(runtime, bundle, cid):
    assert_limits(runtime, bundle, cid, {"pids": {"limit": 42}}, [("pids", "pids.max", "42")])


def test_pids_limit_refuses_the_fork_beyond_it(runtime, bundle, cid):
    bundle.config["linux"]["resources"]["pids"] = {"limit": 3}
    # sh is one pid, two sleeps fit; the third fork fails and the shell gives up
    bundle.set_args("sh", "-c", "sleep 5 & sleep 5 & echo two; sleep 5 & echo three")
    p = runtime("run", "--bundle", bundle.write(), cid, check=False)
    assert p.stdout == "two\n", p.stdout + p.stderr
    assert "can't fork" in p.stderr, p.stderr


def test_exec_into_a_container_at_its_pids_limit_runs(runtime, bundle, cid):
    """A pids limit holds forks made inside the cgroup, not processes moved into it: runc places exec's process
    after it exists, so an exec into a container at its limit runs (a probe of a full container still answers).
    ociruntime's exec process is moved there as well (launch._Fork, init._fork_final_process) on cgroup v1; on
    cgroup v2 it is born in the cgroup's child, which the limit stops."""
    if V2:
        pytest.skip("cgroup v2: exec's intermediate is born in the container's cgroup (clone3), under its limit")
    need_controller("pids")
    if os.environ.get("SPEC_RUNTIME"):
        pytest.skip("runc 1.1.5 races here: its exec works when `runc init` (Go) made its threads before it was "
                    "placed, else pthread_create fails and it aborts (seen both ways on this host)")
    bundle.config["linux"]["resources"]["pids"] = {"limit": 1}
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "100").write(), cid)
    try:
        p = runtime("exec", cid, "echo", "ran", check=False)
        assert (p.returncode, p.stdout) == (0, "ran\n"), p.stderr
    finally:
        runtime("delete", "--force", cid)
        reap()


def test_block_io_weight_is_applied(runtime, bundle, cid):
    need_controller("io" if V2 else "blkio")
    # BFQ's file takes the weight as is, so does CFQ's (v1); v2's io.weight takes it converted to [1, 10000] (runc).
    # The driver writes one of them, whichever the kernel has; some kernels print "default N", some just N.
    converted = 1 + (500 - 10) * 9999 // 990
    table = ([("", "io.bfq.weight", "500"), ("", "io.weight", str(converted))] if V2 else
             [("blkio", "blkio.weight", "500"), ("blkio", "blkio.bfq.weight", "500")])
    got_in, got_out = read_limits(runtime, bundle, cid, {"blockIO": {"weight": 500}}, [t[:2] for t in table],
                                  skip_if_missing="weight")
    assert got_in == got_out
    assert [w for (_, _, w), got in zip(table, got_in) if got in (w, f"default {w}")], list(zip(table, got_in))


def test_hugepage_limits_are_applied(runtime, bundle, cid):
    need_controller("hugetlb")
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2MB hugepages in this kernel")
    name = "hugetlb.2MB.max" if V2 else "hugetlb.2MB.limit_in_bytes"
    assert_limits(runtime, bundle, cid, {"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MiB}]},
                  [("hugetlb", name, str(8 * MiB))])


def test_network_class_id_and_priorities_are_applied(runtime, bundle, cid):
    if V2:
        # v2 has no net_cls/net_prio: the section is ignored (as runc does), the container still runs
        bundle.config["linux"]["resources"]["network"] = {"classID": 0x100001}
        bundle.set_args("true")
        runtime("run", "--bundle", bundle.write(), cid)
        return
    need_controller("net_cls")
    need_controller("net_prio")
    res = {"network": {"classID": 0x100001, "priorities": [{"name": "lo", "priority": 5}]}}
    got_in, got_out = read_limits(runtime, bundle, cid, res, [("net_cls", "net_cls.classid"),
                                                             ("net_prio", "net_prio.ifpriomap")])
    assert got_in == got_out == [str(0x100001), "lo 5"]     # lo is interface 1: the map's first line


def test_device_not_allowed_cannot_be_opened_even_after_mknod(runtime, bundle, cid):
    # /dev/fuse (10:229) is harmless to open; it is not in runc's always-allowed list
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                          "fileMode": 0o666}]
    caps = bundle.config["process"]["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps[k].append("CAP_MKNOD")
    # runc's defaults allow mknod (`c *:* m`) of any node: the policy bites on open
    bundle.set_args("sh", "-c", "true 3<>/dev/fuse && echo opened; mknod /dev/f2 c 10 229 && echo made; "
                                "true 3<>/dev/f2 && echo opened2; true 3<>/dev/null && echo null-ok")
    p = runtime("run", "--bundle", bundle.write(), cid, check=False)
    assert p.stdout.split() == ["made", "null-ok"], p.stdout + p.stderr
    assert p.stderr.count("Operation not permitted") == 2, p.stderr


def test_device_allowed_by_a_rule_can_be_opened(runtime, bundle, cid):
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                          "fileMode": 0o666}]
    bundle.config["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 10,
                                                           "minor": 229, "access": "rw"})
    bundle.set_args("sh", "-c", "true 3<>/dev/fuse && echo opened > /tmp/out")
    runtime("create", "--bundle", bundle.write(), cid)
    if not V2:  # v1 keeps the policy readable on the host side (v2's is an eBPF program)
        rules = host_read(host_dirs(runtime.state(cid)["pid"]), "devices", "devices.list").split("\n")
        assert "c 10:229 rw" in rules and "a *:* rwm" not in rules
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    runtime("delete", cid)
    with open(os.path.join(bundle.rootfs, "tmp", "out")) as f:
        assert f.read() == "opened\n"


def test_default_rules_allow_tun_tap_as_runcs_do(runtime, bundle, cid):
    # runc 1.1.5's built-in allowlist (side by side, v1 devices.list): c *:* m, b *:* m, c 1:3/5/7/8/9, 5:0, 5:2,
    # 136:* and c 10:200 (tun/tap) rwm, whatever the config's rules say
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
    except OSError as e:
        pytest.skip(f"the host cannot open /dev/net/tun: {e.strerror}")
    bundle.config["linux"]["devices"] = [{"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200,
                                          "fileMode": 0o666}]
    bundle.config["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
    bundle.set_args("sh", "-c", "true 3<>/dev/net/tun && echo opened")
    p = runtime("run", "--bundle", bundle.write(), cid, check=False)
    assert p.stdout == "opened\n", p.stderr


# -- update ------------------------------------------------------------------------------------------------------

def start_sleeper(runtime, bundle, cid, resources=None, script="sleep 30"):
    bundle.config["linux"]["resources"].update(resources or {})
    runtime("create", "--bundle", bundle.set_args("sh", "-c", script).write(), cid)
    runtime("start", cid)
    return runtime.state(cid)["pid"]


def exec_read(runtime, cid, files):
    """The first line of each cgroup file, read by a process exec'd into the container."""
    script = "; ".join(f"head -n 1 {inside(c, n)}" for c, n in files)
    return runtime("exec", cid, "sh", "-c", script).stdout.split("\n")[:-1]


def test_update_is_visible_inside_the_running_container(runtime, bundle, cid):
    pid = start_sleeper(runtime, bundle, cid, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 42},
                                               "cpu": {"shares": 512}})
    runtime("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "50", "--cpu-share", "256", cid)
    if V2:
        table = [("", "memory.max", str(128 * MiB)), ("", "memory.swap.max", str(128 * MiB)),
                 ("", "pids.max", "50"), ("", "cpu.weight", str(cpu_weight(256)))]
    else:
        table = [("memory", "memory.limit_in_bytes", str(128 * MiB)),
                 ("memory", "memory.memsw.limit_in_bytes", str(256 * MiB)),
                 ("pids", "pids.max", "50"), ("cpu", "cpu.shares", "256")]
    want = [w for _, _, w in table]
    assert exec_read(runtime, cid, [(c, n) for c, n, _ in table]) == want
    dirs = host_dirs(pid)
    assert [host_read(dirs, c, n) for c, n, _ in table] == want


def test_update_stores_the_merged_resources_in_the_state(runtime, bundle, cid):
    start_sleeper(runtime, bundle, cid, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 42},
                                         "cpu": {"shares": 512}})
    runtime("update", "--memory", "128m", cid)
    runtime("update", "--pids-limit", "50", cid)
    with open(os.path.join(runtime.root, cid, "state"), "rb") as f:
        stored = marshal.load(f)["resources"]    # the runtime's own state file
    assert stored["memory"] == {"limit": 128 * MiB}
    assert stored["pids"] == {"limit": 50}
    assert stored["cpu"] == {"shares": 512}                       # from config.json, untouched
    assert stored["devices"] == bundle.config["linux"]["resources"]["devices"]


def test_update_of_swap_alone_uses_the_limit_of_an_earlier_update(runtime, bundle, cid):
    pid = start_sleeper(runtime, bundle, cid, {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}})
    runtime("update", "--memory", "128m", cid)
    # v2 writes swap alone (memory+swap minus the limit): it needs the 128m the update before stored
    runtime("update", "--memory-swap", "512m", cid)
    dirs = host_dirs(pid)
    if V2:
        assert host_read(dirs, "", "memory.swap.max") == str(384 * MiB)
        assert host_read(dirs, "", "memory.max") == str(128 * MiB)
    else:
        assert host_read(dirs, "memory", "memory.memsw.limit_in_bytes") == str(512 * MiB)
        assert host_read(dirs, "memory", "memory.limit_in_bytes") == str(128 * MiB)


def test_update_memory_unlimited_lifts_an_earlier_swap_limit_too(runtime, bundle, cid):
    # runc 1.1.5 side by side: `update --memory -1` (or {"memory": {"limit": -1}}) without a swap value means
    # unlimited swap as well; keeping the old memory+swap limit would make the kernel refuse the memory write
    pid = start_sleeper(runtime, bundle, cid, {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}})
    dirs = host_dirs(pid)
    files = [("", "memory.max"), ("", "memory.swap.max")] if V2 else \
        [("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes")]
    if host_first_line(dirs, *files[1]) == "MISSING":
        pytest.skip("no swap accounting in this kernel")
    runtime("update", "--memory", "-1", cid)
    got = [host_read(dirs, c, n) for c, n in files]
    assert (got == ["max", "max"]) if V2 else (len(set(got)) == 1 and int(got[0]) > 1 << 60), got
    # and back, then unlimited again through --resources: the writes come in the order the kernel accepts
    runtime("update", "--memory", "64m", "--memory-swap", "128m", cid)
    assert [host_read(dirs, c, n) for c, n in files] == ([str(64 * MiB), str(64 * MiB)] if V2
                                                         else [str(64 * MiB), str(128 * MiB)])
    runtime("update", "--resources", "-", cid, input=json.dumps({"memory": {"limit": -1}}))
    assert [host_read(dirs, c, n) for c, n in files] == got


# -- pause / resume --------------------------------------------------------------------------------------------

# the counter is the file's size: appends only grow it, so a read never sees a half-written value
COUNTER = "while :; do echo -n . >> /tmp/n; usleep 10000; done"


def read_counter(bundle, after=0, timeout=3.0):
    """The container's counter once it is above `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            n = os.stat(os.path.join(bundle.rootfs, "tmp", "n")).st_size
            if n > after:
                return n
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"the counter never went above {after}")


def frozen_on_host(dirs) -> bool:
    if V2:
        return "frozen 1" in host_read(dirs, "", "cgroup.events").split("\n")
    return host_read(dirs, "freezer", "freezer.state") == "FROZEN"


def test_pause_freezes_every_process_and_resume_thaws_them(runtime, bundle, cid):
    pid = start_sleeper(runtime, bundle, cid, script=COUNTER)
    dirs = host_dirs(pid)
    read_counter(bundle)
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    assert frozen_on_host(dirs)
    n = read_counter(bundle)
    time.sleep(0.15)                                              # 15 ticks of the counter, were it running
    assert read_counter(bundle) == n
    runtime("resume", cid)
    assert runtime.state(cid)["status"] == "running"
    assert not frozen_on_host(dirs)
    read_counter(bundle, after=n)


def test_resume_of_a_running_container_fails(runtime, bundle, cid):
    start_sleeper(runtime, bundle, cid)
    p = runtime("resume", cid, check=False)
    assert p.returncode != 0 and "not paused" in p.stderr


# -- events, ps, kill --all --------------------------------------------------------------------------------------

def test_events_stats_prints_memory_and_pids_numbers(runtime, bundle, cid):
    pid = start_sleeper(runtime, bundle, cid, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 42}})
    ev = json.loads(runtime("events", "--stats", cid).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": len(procs(host_dirs(pid))), "limit": 42}


def wait_procs(dirs, n, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = procs(dirs)
        if len(got) == n:
            return got
        time.sleep(0.01)
    raise AssertionError(f"expected {n} processes in the cgroup, found {procs(dirs)}")


def test_ps_lists_the_pids_of_the_container(runtime, bundle, cid):
    pid = start_sleeper(runtime, bundle, cid, script="sleep 30 & sleep 30 & wait")
    want = wait_procs(host_dirs(pid), 3)
    got = json.loads(runtime("ps", "--format", "json", cid).stdout)
    assert set(got) == want and pid in got
    table = runtime("ps", cid).stdout.strip().split("\n")
    assert "PID" in table[0].split() and len(table) == 4, table


@pytest.mark.parametrize("sig", ["KILL", "TERM"])
def test_kill_all_signals_every_process_in_the_cgroup(runtime, bundle, cid, sig):
    # no pid namespace: killing init alone would leave its children running
    bundle.ns("mount", "ipc", "uts", "network", "cgroup")
    pid = start_sleeper(runtime, bundle, cid, script="sleep 30 & sleep 30 & wait")
    dirs = host_dirs(pid)
    wait_procs(dirs, 3)
    runtime("kill", "--all", cid, sig)
    wait_procs(dirs, 0)
    runtime.wait_status(cid, "stopped")


# -- delete and failed create leave no cgroup ---------------------------------------------------------------------

def test_delete_removes_the_cgroup_directories(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    dirs = host_dirs(runtime.state(cid)["pid"])
    assert dirs and all(os.path.isdir(d) for d in dirs.values())
    assert dirs_named(cgroup_name(bundle))
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    runtime("delete", cid)
    assert not [d for d in dirs.values() if os.path.isdir(d)]
    assert dirs_named(cgroup_name(bundle)) == []


def test_delete_force_of_a_paused_container_kills_it_and_removes_everything(runtime, bundle, cid):
    pid = start_sleeper(runtime, bundle, cid, script="sleep 30 & sleep 30")
    dirs = host_dirs(pid)
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    runtime("delete", "--force", cid)
    reap()
    assert not os.path.exists(f"/proc/{pid}")
    assert runtime("state", cid, check=False).returncode != 0
    assert not [d for d in dirs.values() if os.path.isdir(d)]


def test_failed_create_from_a_value_the_kernel_rejects_leaves_no_cgroup(runtime, bundle, cid):
    # the kernel's CFS quota minimum is 1 ms: 500 us is EINVAL on v1 (cfs_quota_us) and v2 (cpu.max) alike
    bundle.config["linux"]["resources"]["cpu"] = {"quota": 500, "period": 100000}
    p = runtime("create", "--bundle", bundle.set_args("true").write(), cid, check=False)
    assert p.returncode != 0
    assert "linux.resources.cpu.quota" in p.stderr and "Invalid argument" in p.stderr, p.stderr
    assert dirs_named(cgroup_name(bundle)) == []
    assert not os.path.exists(os.path.join(runtime.root, cid))
