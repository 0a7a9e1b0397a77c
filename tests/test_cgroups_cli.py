"""pause / resume / update / events / ps against a container whose stored state points at a real cgroup (a sleeping
process stands in for the container's init). Creates cgroups: run under spec-tests/confine.sh."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ociruntime.linux import cgroups
from ociruntime.state import ContainerState, proc_start_time

pytestmark = pytest.mark.skipif(os.environ.get("OCIRUNTIME_CONFINED") != "1" or os.geteuid() != 0,
                                reason="creates cgroups: run as root under spec-tests/confine.sh")

v1_only = pytest.mark.skipif(cgroups.detect() != "v1", reason="reads cgroup v1 files")
ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Ctr:
    def __init__(self, root, cid, mgr, proc):
        self.root, self.id, self.mgr, self.proc = root, cid, mgr, proc

    def cli(self, *argv, input=None, check=True, timeout=20):
        env = dict(os.environ, PYTHONPATH=ROOT_DIR)
        r = subprocess.run([sys.executable, "-m", "ociruntime", "--root", self.root, *argv], input=input,
                           capture_output=True, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{argv} failed: {r.stderr.decode()}")
        return r

    def status(self):
        return json.loads(self.cli("state", self.id).stdout)["status"]

    def read(self, ctrl, name):
        key = ctrl if self.mgr.version == "v1" else ""
        with open(os.path.join(self.mgr.paths[key], name)) as f:
            return f.read().strip()


@pytest.fixture
def ctr(tmp_path):
    cid = f"t{uuid.uuid4().hex[:8]}"
    mgr = cgroups.manager_for(f"test-cli-{cid}", cid)
    mgr.create()
    proc = subprocess.Popen(["sleep", "600"])
    mgr.apply(proc.pid)
    root = str(tmp_path / "state")
    st = ContainerState.new(root, cid, {"pid": proc.pid, "start_time": proc_start_time(proc.pid),
                                        "bundle": str(tmp_path), "created": "2024-01-01T00:00:00Z",
                                        "cgroup": mgr.to_state(), "ociVersion": "1.3.0"})
    st.save()                    # create saves its facts once init is ready
    st.release()
    c = Ctr(root, cid, mgr, proc)
    yield c
    if mgr.is_frozen():
        mgr.thaw()
    mgr.kill_all(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while mgr.pids() and time.time() < deadline:
        time.sleep(0.01)
    mgr.destroy()
    assert not [p for p in mgr.paths.values() if os.path.exists(p)]


def test_pause_and_resume(ctr):
    assert ctr.status() == "running"
    ctr.cli("pause", ctr.id)
    assert ctr.status() == "paused"
    r = ctr.cli("pause", ctr.id, check=False)
    assert r.returncode == 1 and b"container not running" in r.stderr
    ctr.cli("resume", ctr.id)
    assert ctr.status() == "running"
    r = ctr.cli("resume", ctr.id, check=False)
    assert r.returncode == 1 and b"container not paused" in r.stderr


def test_pause_of_stopped_container_fails(ctr):
    ctr.proc.kill()
    ctr.proc.wait()
    r = ctr.cli("pause", ctr.id, check=False)
    assert r.returncode == 1 and b"container not running" in r.stderr


def test_pause_unknown_container(ctr):
    r = ctr.cli("pause", "nosuch", check=False)
    assert r.returncode == 1 and b"does not exist" in r.stderr


@v1_only
def test_update_flags(ctr):
    ctr.cli("update", "--memory", "64m", "--memory-swap", "128M", "--memory-reservation", "1g",
            "--pids-limit", "17", "--cpu-quota", "30000", "--cpu-period", "60000", "--cpu-share", "256",
            "--cpuset-cpus", "0", ctr.id)
    assert int(ctr.read("memory", "memory.limit_in_bytes")) == 64 << 20
    assert int(ctr.read("memory", "memory.memsw.limit_in_bytes")) == 128 << 20
    assert int(ctr.read("memory", "memory.soft_limit_in_bytes")) == 1 << 30
    assert ctr.read("pids", "pids.max") == "17"
    assert ctr.read("cpu", "cpu.cfs_quota_us") == "30000"
    assert ctr.read("cpu", "cpu.cfs_period_us") == "60000"
    assert ctr.read("cpu", "cpu.shares") == "256"
    assert ctr.read("cpuset", "cpuset.cpus") == "0"


@v1_only
def test_update_resources_from_stdin(ctr):
    doc = {"pids": {"limit": 23}, "memory": {"limit": 50 << 20}, "devices": [{"allow": True, "access": "rwm"}]}
    ctr.cli("update", "--resources", "-", ctr.id, input=json.dumps(doc).encode())
    assert ctr.read("pids", "pids.max") == "23"
    assert int(ctr.read("memory", "memory.limit_in_bytes")) == 50 << 20


@v1_only
def test_update_resources_from_file(ctr, tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"pids": {"limit": -1}}))
    ctr.cli("update", "-r", str(tmp_path / "r.json"), ctr.id)
    assert ctr.read("pids", "pids.max") == "max"


def test_update_rejects_bad_size_and_stopped_container(ctr):
    r = ctr.cli("update", "--memory", "12x", ctr.id, check=False)
    assert r.returncode != 0 and b"invalid value for --memory" in r.stderr
    ctr.proc.kill()
    ctr.proc.wait()
    r = ctr.cli("update", "--pids-limit", "5", ctr.id, check=False)
    assert r.returncode == 1 and b"container not running" in r.stderr


def test_update_parse_ram_units():
    from ociruntime.cli.update import parse_ram
    assert parse_ram("1024") == 1024 and parse_ram("1k") == 1024 and parse_ram("2MiB") == 2 << 20
    assert parse_ram("1.5g") == 3 << 29 and parse_ram("-1") == -1


def test_events_stats_prints_one_stats_event(ctr):
    ctr.cli("update", "--pids-limit", "40", ctr.id)
    lines = ctr.cli("events", "--stats", ctr.id).stdout.decode().splitlines()
    assert len(lines) == 1
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == ctr.id
    assert ev["data"]["pids"] == {"current": 1, "limit": 40}
    assert list(ev) == ["type", "id", "data"]


def test_events_streams_stats_and_oom(ctr):
    ctr.cli("update", "--memory", "8m", "--memory-swap", "8m", ctr.id)
    env = dict(os.environ, PYTHONPATH=ROOT_DIR)
    ev = subprocess.Popen([sys.executable, "-m", "ociruntime", "--root", ctr.root, "events", "--interval", "200ms",
                           ctr.id], stdout=subprocess.PIPE, env=env)
    try:
        first = json.loads(ev.stdout.readline())
        assert first["type"] == "stats"
        hog = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(1); bytearray(64 << 20)"],
                               stdin=subprocess.PIPE)
        ctr.mgr.apply(hog.pid)
        hog.stdin.write(b"x")
        hog.stdin.close()
        assert hog.wait(10) == -signal.SIGKILL
        kinds = set()
        deadline = time.time() + 5
        while "oom" not in kinds and time.time() < deadline:
            e = json.loads(ev.stdout.readline())
            kinds.add(e["type"])
            if e["type"] == "oom":
                assert e == {"type": "oom", "id": ctr.id}
        assert "oom" in kinds
    finally:
        ev.kill()
        ev.wait()


def test_events_rejects_bad_interval(ctr):
    r = ctr.cli("events", "--interval", "fast", ctr.id, check=False)
    assert r.returncode == 1 and b"invalid value" in r.stderr


def test_ps_json_lists_container_pids(ctr):
    extra = subprocess.Popen(["sleep", "600"])
    try:
        ctr.mgr.apply(extra.pid)
        pids = json.loads(ctr.cli("ps", "--format", "json", ctr.id).stdout)
        assert sorted(pids) == sorted([ctr.proc.pid, extra.pid])
    finally:
        extra.kill()
        extra.wait()


def test_ps_table_filters_ps_output(ctr):
    lines = ctr.cli("ps", ctr.id).stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"]
    assert len(lines) == 2 and lines[1].split()[1] == str(ctr.proc.pid) and "sleep 600" in lines[1]


def test_ps_passes_options_to_ps(ctr):
    lines = ctr.cli("ps", ctr.id, "-o", "pid,comm").stdout.decode().splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert lines[1].split() == [str(ctr.proc.pid), "sleep"]


def test_ps_without_pid_column_is_an_error(ctr):
    r = ctr.cli("ps", ctr.id, "-o", "comm", check=False)
    assert r.returncode == 1 and b"couldn't find PID field" in r.stderr


@pytest.mark.skipif(cgroups.detect() != "v2", reason="reads cgroup v2 files")
def test_update_flags_v2(ctr):
    ctr.cli("update", "--memory", "64m", "--memory-swap", "96m", "--pids-limit", "17", "--cpu-quota", "30000",
            "--cpu-period", "60000", "--cpu-share", "1024", ctr.id)
    assert ctr.read("", "memory.max") == str(64 << 20)
    if os.path.exists(ctr.mgr.path + "/memory.swap.max"):
        assert ctr.read("", "memory.swap.max") == str(32 << 20)
    assert ctr.read("", "pids.max") == "17"
    assert ctr.read("", "cpu.max") == "30000 60000"
    assert ctr.read("", "cpu.weight") == "39"
    ctr.cli("update", "--cpu-period", "100000", ctr.id)  # the quota is kept
    assert ctr.read("", "cpu.max") == "30000 100000"
