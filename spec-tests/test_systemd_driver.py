"""--systemd-cgroup (runc's systemd cgroup driver) against a real systemd, ociruntime and runc side by side: every
test runs once per runtime, runc 1.1.5 being the control. linux.cgroupsPath is "slice:prefix:name"; the container
lives in the transient unit prefix-name.scope; its limits are read back from systemd (systemctl show) and from the
scope's cgroup files.

Needs systemd as PID 1 on cgroup v2 and the system bus: `make test-systemd` runs this file in the VM of
../shared/tools/cgroup2-vm.sh --systemd (OCIRUNTIME_SYSTEMD_TESTS=1). It creates real units in system.slice, so it
never runs by accident: anywhere else it skips.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import EXE, Bundle, reap

RUNC = shutil.which("runc") or "/usr/sbin/runc"
pytestmark = pytest.mark.skipif(
    os.environ.get("OCIRUNTIME_SYSTEMD_TESTS") != "1" or not os.path.isdir("/run/systemd/system")
    or not os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
    reason="needs systemd on cgroup v2 and OCIRUNTIME_SYSTEMD_TESTS=1 (make test-systemd runs it in a VM)")
PREFIX = f"ocitest{uuid.uuid4().hex[:4]}"
MiB = 1 << 20


def systemctl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)


def unit_prop(unit: str, prop: str) -> str:
    return systemctl("show", "-P", prop, unit).stdout.strip()


def unit_exists(unit: str) -> bool:
    return systemctl("status", "--no-pager", unit).returncode != 4     # 4: no such unit


def wait_unit_gone(unit: str, timeout: float = 20.0) -> None:
    """systemd removes a stopped scope asynchronously: poll until it is gone (the assert after says if it is not)."""
    deadline = time.monotonic() + timeout
    while unit_exists(unit) and time.monotonic() < deadline:
        time.sleep(0.2)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


class SdRuntime:
    """One runtime with --systemd-cgroup and a private --root; deletes what it created."""

    def __init__(self, exe: str, root: str):
        self.exe, self.root, self.ids, self.name = exe, root, [], os.path.basename(exe)

    def __call__(self, *args, check=True, timeout=180):
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([self.exe, "--systemd-cgroup", "--root", self.root, *args], stdout=out, stderr=err,
                               stdin=subprocess.DEVNULL, text=True, timeout=timeout)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} -> {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def new_id(self) -> str:
        c = f"c{uuid.uuid4().hex[:8]}"
        self.ids.append(c)
        return c

    def state(self, cid) -> dict:
        return json.loads(self("state", cid).stdout)

    def wait_status(self, cid, want, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reap()                   # we are the subreaper: a killed init stays a zombie (running) until reaped
            if self.state(cid)["status"] == want:
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: {cid} never became {want}")

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid, check=False)
        reap()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(params=[EXE, RUNC], ids=["ociruntime", "runc"])
def rt(request, tmp_path):
    r = SdRuntime(request.param, str(tmp_path / "root"))
    yield r
    r.cleanup()
    left = [u for u in systemctl("list-units", "--all", "--plain", "--no-legend", f"{PREFIX}*").stdout.split()
            if u.startswith(PREFIX)]
    for u in left:
        systemctl("stop", u)
        systemctl("reset-failed", u)
    assert not left, f"{r.name} left units behind: {left}"


def sleeper(tmp_path, cid, slice_="system.slice", resources=None, name=None) -> Bundle:
    b = Bundle(tmp_path / f"bundle-{cid}")
    b.set_args("sleep", "600")
    b.config["process"]["terminal"] = False
    b.config["linux"]["cgroupsPath"] = f"{slice_}:{PREFIX}:{name or cid}"
    b.config["linux"]["resources"] = resources or {}
    b.write()
    return b


def run_d(rt, tmp_path, resources=None, slice_="system.slice", name=None) -> tuple[str, str, str]:
    """A running sleeper; (id, unit, the scope's cgroup directory)."""
    cid = rt.new_id()
    b = sleeper(tmp_path, cid, slice_, resources, name)
    rt("run", "-d", "--bundle", b.path, cid)
    unit = f"{PREFIX}-{name or cid}.scope"
    return cid, unit, "/sys/fs/cgroup" + unit_prop(unit, "ControlGroup")


def test_run_makes_a_delegated_scope_holding_the_container(rt, tmp_path):
    cid, unit, cg = run_d(rt, tmp_path)
    assert unit_prop(unit, "ActiveState") == "active"
    assert unit_prop(unit, "ControlGroup") == f"/system.slice/{unit}"
    assert unit_prop(unit, "Delegate") == "yes"
    pid = rt.state(cid)["pid"]
    assert read(f"/proc/{pid}/cgroup") == f"0::/system.slice/{unit}"
    assert str(pid) in read(f"{cg}/cgroup.procs").split()


def test_limits_are_unit_properties_and_cgroup_files(rt, tmp_path):
    res = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 32}, "cpu": {"quota": 50000, "period": 100000,
                                                                          "shares": 512}}
    cid, unit, cg = run_d(rt, tmp_path, res)
    assert unit_prop(unit, "MemoryMax") == str(64 * MiB)
    assert unit_prop(unit, "TasksMax") == "32"
    assert unit_prop(unit, "CPUQuotaPerSecUSec") == "500ms"
    assert read(f"{cg}/memory.max") == str(64 * MiB)
    assert read(f"{cg}/pids.max") == "32"
    assert read(f"{cg}/cpu.max") == "50000 100000"
    assert read(f"{cg}/cpu.weight") == "20"          # 512 shares, runc's conversion


def test_update_changes_the_unit_and_the_files(rt, tmp_path):
    cid, unit, cg = run_d(rt, tmp_path, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 32}})
    rt("update", "--memory", str(128 * MiB), "--pids-limit", "64", cid)
    assert unit_prop(unit, "MemoryMax") == str(128 * MiB)
    assert unit_prop(unit, "TasksMax") == "64"
    assert read(f"{cg}/memory.max") == str(128 * MiB)
    assert read(f"{cg}/pids.max") == "64"


def test_pause_freezes_the_scope_and_resume_thaws_it(rt, tmp_path):
    cid, unit, cg = run_d(rt, tmp_path)
    rt("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    assert "frozen 1" in read(f"{cg}/cgroup.events").splitlines()
    rt("resume", cid)
    assert rt.state(cid)["status"] == "running"
    assert "frozen 0" in read(f"{cg}/cgroup.events").splitlines()


def test_exec_joins_the_scope_and_ps_lists_it(rt, tmp_path):
    cid, unit, cg = run_d(rt, tmp_path)
    pidfile = str(tmp_path / "exec.pid")
    rt("exec", "-d", "--pid-file", pidfile, cid, "sleep", "300")
    epid = int(read(pidfile))
    assert read(f"/proc/{epid}/cgroup") == f"0::/system.slice/{unit}"
    pids = rt("ps", "--format", "json", cid).stdout
    assert epid in json.loads(pids)


def test_kill_all_signals_every_process_of_the_scope(rt, tmp_path):
    cid, unit, cg = run_d(rt, tmp_path)
    pidfile = str(tmp_path / "exec.pid")
    rt("exec", "-d", "--pid-file", pidfile, cid, "sleep", "300")
    rt("kill", "--all", cid, "KILL")
    rt.wait_status(cid, "stopped")
    deadline = time.monotonic() + 20
    while read(f"{cg}/cgroup.procs") if os.path.exists(cg) else "":
        assert time.monotonic() < deadline, "processes survived kill --all"
        time.sleep(0.1)
    reap()


def test_delete_removes_the_unit_and_its_cgroup(rt, tmp_path):
    cid, unit, cg = run_d(rt, tmp_path)
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt("delete", cid)
    reap()
    wait_unit_gone(unit)
    assert not unit_exists(unit)
    assert not os.path.exists(cg)


def test_delete_force_of_a_running_container_stops_its_unit(rt, tmp_path):
    cid, unit, cg = run_d(rt, tmp_path)
    rt("delete", "--force", cid)
    reap()
    wait_unit_gone(unit)
    assert not unit_exists(unit)
    assert not os.path.exists(cg)


def test_failed_create_leaves_no_unit(rt, tmp_path):
    cid = rt.new_id()
    # CPU 99 does not exist in the VM: the cpuset write fails after the unit was started with init's pid
    b = sleeper(tmp_path, cid, resources={"cpu": {"cpus": "99"}, "memory": {"limit": 64 * MiB}})
    p = rt("create", "--bundle", b.path, cid, check=False)
    reap()
    assert p.returncode != 0
    assert rt("list", "-q").stdout.split() == []
    unit = f"{PREFIX}-{cid}.scope"
    wait_unit_gone(unit)
    assert not unit_exists(unit), systemctl("status", "--no-pager", unit).stdout
    assert not os.path.exists(f"/sys/fs/cgroup/system.slice/{unit}")


def test_two_containers_share_one_slice(rt, tmp_path):
    a, ua, cga = run_d(rt, tmp_path)
    b, ub, cgb = run_d(rt, tmp_path)
    assert os.path.dirname(cga) == os.path.dirname(cgb) == "/sys/fs/cgroup/system.slice"
    assert unit_prop(ua, "Slice") == unit_prop(ub, "Slice") == "system.slice"
    rt("delete", "--force", a)
    assert unit_exists(ub) and unit_prop(ub, "ActiveState") == "active"


def test_a_custom_nested_slice_holds_the_scope(rt, tmp_path):
    slice_ = f"{PREFIX}-sub.slice"
    cid, unit, cg = run_d(rt, tmp_path, {"pids": {"limit": 10}}, slice_=slice_)
    assert unit_prop(unit, "Slice") == slice_
    assert unit_prop(unit, "ControlGroup") == f"/{PREFIX}.slice/{slice_}/{unit}"
    assert read(f"{cg}/pids.max") == "10"
    rt("delete", "--force", cid)
    reap()
    for s in (slice_, f"{PREFIX}.slice"):      # transient slices stay until stopped (runc leaves them too)
        systemctl("stop", s)
