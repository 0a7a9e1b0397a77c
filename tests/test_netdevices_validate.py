"""linux.netDevices and linux.intelRdt.closID: the semantic rules config/validate.py adds (names the kernel would
refuse, two devices given one name, resctrl names that are not groups), without root; and that importing the
netDevices module does not import pyroute2 (the create path pays for it only when moving devices)."""
import subprocess
import sys

import pytest

from ociruntime.config.validate import validate
from ociruntime.errors import ConfigError

try:
    from test_validate import typical_config
except ImportError:     # tests/ made a package
    from tests.test_validate import typical_config


def config(net_devices=None, intel_rdt=None):
    doc = typical_config()
    if net_devices is not None:
        doc["linux"]["netDevices"] = net_devices
    if intel_rdt is not None:
        doc["linux"]["intelRdt"] = intel_rdt
    return doc


@pytest.mark.parametrize("devices", [
    {"eth0": {}},
    {"eth0": {"name": "ctr0"}, "eth1": {"name": "ctr1"}},
    {"eth0": {"name": "eth1"}, "eth1": {"name": "eth0"}},       # a swap: fine in a new namespace
    {"eth0": {"name": "veth%d"}, "eth1": {"name": "veth%d"}},   # templates: the kernel picks distinct numbers
    {"enp0s31f6.100": {"name": "x" * 15}},
    {"eth0": {"name": ""}},                                       # empty name: keep the host name (as runc)
])
def test_valid_net_devices_pass(devices):
    validate(config(devices))


@pytest.mark.parametrize("devices,path,rule", [
    ({"eth0": {"name": "a/b"}}, "linux.netDevices.eth0.name", "is not an interface name"),
    ({"eth0": {"name": "a b"}}, "linux.netDevices.eth0.name", "is not an interface name"),
    ({"eth0": {"name": "x" * 16}}, "linux.netDevices.eth0.name", "1-15 bytes"),
    ({"eth0": {"name": ".."}}, "linux.netDevices.eth0.name", "not . or .."),
    ({"eth0": {"name": "eth:1"}}, "linux.netDevices.eth0.name", "is not an interface name"),
    ({"eth0": {"name": "e%s"}}, "linux.netDevices.eth0.name", "one %d template"),
    ({"eth0": {"name": "e%d%d"}}, "linux.netDevices.eth0.name", "one %d template"),
    ({"": {}}, "linux.netDevices.", "is not an interface name"),
    ({"eth%d": {}}, "linux.netDevices.eth%d", "only allowed as one %d template in a container-side name"),
    ({"eth0": {"name": "ctr0"}, "eth1": {"name": "ctr0"}}, "linux.netDevices.eth1",
     "'ctr0' is also the container-side name of linux.netDevices.eth0"),
    ({"eth0": {}, "eth1": {"name": "eth0"}}, "linux.netDevices.eth1", "also the container-side name"),
])
def test_invalid_net_devices_name_the_entry(devices, path, rule):
    with pytest.raises(ConfigError) as e:
        validate(config(devices))
    assert e.value.path == path and rule in e.value.rule


@pytest.mark.parametrize("clos", ["gold", "/", "guaranteed_group", "a.b"])
def test_valid_closids_pass(clos):
    validate(config(intel_rdt={"closID": clos}))


@pytest.mark.parametrize("clos", ["", "a/b", "..", ".", "info", "mon_groups", "mon_data", "/gold"])
def test_closids_that_are_not_group_names_are_refused(clos):
    with pytest.raises(ConfigError) as e:
        validate(config(intel_rdt={"closID": clos}))
    assert e.value.path == "linux.intelRdt.closID" and "is not a resctrl group name" in e.value.rule


def test_the_netdevices_module_does_not_import_pyroute2_until_it_moves_devices():
    code = ("import sys; from ociruntime.linux import netdevices, intelrdt; "
            "netdevices.check({}); print('pyroute2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
