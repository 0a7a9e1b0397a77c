"""The systemd cgroup driver's pure parts: runc's cgroupsPath and slice naming, linux.resources -> unit properties,
device rules -> DevicePolicy/DeviceAllow, and the state round trip (which must not load the D-Bus client). The
driver itself, against a real systemd, is spec-tests/test_systemd_driver.py (`make test-systemd`)."""
import json
import subprocess
import sys

import pytest

from ociruntime.linux import cgroups
from ociruntime.linux.cgroups import systemd as sd
from ociruntime.linux.cgroups.common import CgroupError, SystemdCgroupUnavailable

MiB = 1 << 20


def v252():
    return 252


def test_cgroups_path_is_slice_prefix_name_with_runc_defaults():
    assert sd.parse_path("system.slice:docker:abc", "x") == ("system.slice", "docker", "abc")
    assert sd.parse_path(None, "ctr") == ("", "runc", "ctr")
    with pytest.raises(SystemdCgroupUnavailable, match='expected "slice:prefix:name"'):
        sd.parse_path("/a/b", "x")


def test_unit_is_a_scope_unless_the_name_is_a_slice():
    assert sd.unit_name("docker", "abc") == "docker-abc.scope"
    assert sd.unit_name("docker", "my.slice") == "my.slice"


def test_nested_slices_expand_to_their_parents():
    assert sd.expand_slice("system.slice") == "/system.slice"
    assert sd.expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert sd.expand_slice("-.slice") == "/"
    for bad in ("a--b.slice", "-a.slice", "a-.slice", "a/b.slice", "system"):
        with pytest.raises(CgroupError, match="invalid slice name"):
            sd.expand_slice(bad)


def test_resources_become_unit_properties():
    props = dict(sd.resource_props({"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
                                    "pids": {"limit": 32}, "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                                    "blockIO": {"weight": 500}}, v252))
    assert props["MemoryMax"] == ("t", 64 * MiB)
    assert props["MemoryLow"] == ("t", 32 * MiB)
    assert props["MemorySwapMax"] == ("t", 32 * MiB)       # memory+swap (spec) -> swap alone (v2)
    assert props["TasksMax"] == ("t", 32)
    assert props["CPUWeight"] == ("t", 20)
    assert props["CPUQuotaPerSecUSec"] == ("t", 500000)
    assert props["CPUQuotaPeriodUSec"] == ("t", 100000)
    assert props["IOWeight"] == ("t", 4950)           # runc's [10, 1000] -> [1, 10000]


def test_unlimited_values_are_systemd_infinity():
    props = dict(sd.resource_props({"memory": {"limit": -1}, "pids": {"limit": -1}}, v252))
    assert props["MemoryMax"] == props["TasksMax"] == ("t", sd.UINT64_MAX)


def test_cpu_quota_rounds_up_to_whole_percents_as_runc():
    props = dict(sd.cpu_quota_props(12345, 100000, v252))
    assert props["CPUQuotaPerSecUSec"] == ("t", 130000)
    assert dict(sd.cpu_quota_props(0, 50000, lambda: 241)) == {"CPUQuotaPerSecUSec": ("t", sd.UINT64_MAX)}


def test_cpusets_become_bitmasks():
    assert sd.cpuset_mask("0-2,9", "x") == bytes([0b111, 0b10])
    props = dict(sd.resource_props({"cpu": {"cpus": "1", "mems": "0"}}, v252))
    assert props["AllowedCPUs"] == ("ay", b"\x02") and props["AllowedMemoryNodes"] == ("ay", b"\x01")
    assert "AllowedCPUs" not in dict(sd.resource_props({"cpu": {"cpus": "1"}}, lambda: 243))
    with pytest.raises(CgroupError, match="linux.resources.cpu.cpus"):
        sd.resource_props({"cpu": {"cpus": "a-b"}}, v252)


def test_unified_memory_keys_become_properties():
    props = dict(sd.resource_props({"unified": {"memory.high": "1048576", "pids.max": "max"}}, v252))
    assert props["MemoryHigh"] == ("t", MiB) and props["TasksMax"] == ("t", sd.UINT64_MAX)


def test_default_devices_are_a_strict_allow_list():
    props = dict(sd.device_props(None))
    assert props["DevicePolicy"] == ("s", "strict")
    allow = dict(props["DeviceAllow"][1])
    assert allow["/dev/char/1:3"] == "rwm"           # /dev/null
    assert allow["char-*"] == "m" and allow["block-*"] == "m"
    assert allow.get("char-pts") == "rwm" or "pts" not in open("/proc/devices").read()


def test_allow_all_devices_is_auto_with_wildcards():
    props = dict(sd.device_props([{"allow": True, "access": "rwm"}]))
    assert props["DevicePolicy"] == ("s", "auto")
    assert props["DeviceAllow"] == ("a(ss)", [("char-*", "rwm"), ("block-*", "rwm")])


def test_a_later_deny_takes_access_away():
    props = dict(sd.device_props([{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                                  {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}]))
    assert dict(props["DeviceAllow"][1])["/dev/char/10:229"] == "rm"


def test_state_round_trip_keeps_the_unit_and_does_not_load_dbus():
    m = sd.SystemdManager("/sys/fs/cgroup/system.slice/x-c.scope", "/sys/fs/cgroup", "x-c.scope", "system.slice")
    blob = json.loads(json.dumps(m.to_state()))
    code = ("import json, sys; from ociruntime.linux import cgroups; "
            f"m = cgroups.manager_from_state(json.loads({json.dumps(json.dumps(blob))})); "
            "print(type(m).__name__, m.unit, m.path, m.started, 'jeepney' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["SystemdManager", "x-c.scope", "/sys/fs/cgroup/system.slice/x-c.scope", "True", "False"]


def test_without_systemd_the_driver_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sd.os.path, "isdir", lambda p: False if p == "/run/systemd/system" else True)
    with pytest.raises(SystemdCgroupUnavailable, match="systemd is not running on this host"):
        cgroups.manager_for("system.slice:runc:x", "x", systemd=True)


def test_user_bus_without_a_manager_says_so(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent")
    with pytest.raises(SystemdCgroupUnavailable, match="no(ne| user manager)|there is none"):
        sd.bus_address(user=True)
