"""config-linux.md "IntelRdt": with linux.intelRdt set and no resctrl mounted in the runtime's mount namespace, the
runtime MUST generate an error (this host has no resctrl; the applied path is tests/test_intelrdt.py)."""
import json
import os

import pytest

from ociruntime.linux import intelrdt

pytestmark = pytest.mark.skipif(intelrdt.is_mounted(), reason="resctrl is mounted here: the error path can't happen")


@pytest.mark.parametrize("rdt", [{"l3CacheSchema": "L3:0=f"}, {}, {"closID": "gold", "enableMonitoring": True}],
                         ids=["schema", "empty", "closid"])
def test_create_fails_with_one_line_naming_intelrdt_and_resctrl_and_leaves_nothing(runtime, bundle, cid, rdt):
    bundle.config["linux"]["intelRdt"] = rdt
    p = runtime("create", "--bundle", bundle.set_args("true").write(), cid, check=False)
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1, p.stderr
    assert "linux.intelRdt" in p.stderr and "resctrl filesystem not mounted at /sys/fs/resctrl" in p.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert not os.path.exists("/sys/fs/resctrl")
    # cgroups and processes: the session fixture fails the run if any is left


def test_features_report_intel_rdt_enabled(runtime):
    doc = json.loads(runtime("features").stdout)
    assert doc["linux"]["intelRdt"] == {"enabled": True, "schemata": True, "monitoring": True}
