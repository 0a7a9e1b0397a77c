"""delete of a stopped container: its empty cgroup directories go by one rmdir each without the cgroup drivers being
loaded; anything else (a directory that does not go) takes the drivers' way. Plain directories stand in for the
cgroups: rmdir treats an empty one alike."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DELETE = """
import json, sys
sys.path.insert(0, {repo!r})
from ociruntime.container import delete
from ociruntime.log import Logger
from ociruntime.state import ContainerState
st = ContainerState.load({root!r}, "c1", lock=True)
assert st.status() == "stopped", st.status()
delete(st, Logger())
print(json.dumps(sorted(m for m in sys.modules if m.startswith("ociruntime.linux.cgroups"))))
"""


def _stopped(tmp_path, cgroup: dict) -> str:
    from ociruntime.state import ContainerState
    root = str(tmp_path / "state")
    st = ContainerState.new(root, "c1", {"pid": os.getpid(), "start_time": -1, "bundle": str(tmp_path),
                                         "cgroup": cgroup})   # a start time that is not ours: stopped
    st.save()
    st.release()
    return root


def _delete(root) -> list:
    out = subprocess.run([sys.executable, "-c", DELETE.format(repo=REPO, root=root)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def _v1(tmp_path, names=("cpu", "memory", "pids")) -> dict:
    hs = []
    for n in names:
        d = tmp_path / "fs" / n / "c1"
        d.mkdir(parents=True)
        hs.append({"ctrls": [n], "opts": n, "mnt": str(tmp_path / "fs" / n), "dir": str(d)})
    return {"version": "v1", "hierarchies": hs}


def test_empty_v1_cgroups_of_a_stopped_container_go_without_loading_the_drivers(tmp_path):
    cg = _v1(tmp_path)
    root = _stopped(tmp_path, cg)
    assert _delete(root) == []
    assert not any(os.path.exists(h["dir"]) for h in cg["hierarchies"])
    assert not os.path.exists(os.path.join(root, "c1"))


def test_an_empty_v2_cgroup_of_a_stopped_container_goes_without_loading_the_drivers(tmp_path):
    d = tmp_path / "fs" / "c1"
    d.mkdir(parents=True)
    root = _stopped(tmp_path, {"version": "v2", "path": str(d), "mnt": str(tmp_path / "fs")})
    assert _delete(root) == []
    assert not d.exists()


def test_a_cgroup_that_does_not_go_takes_the_drivers_way(tmp_path):
    cg = _v1(tmp_path)
    sub = os.path.join(cg["hierarchies"][1]["dir"], "sub")      # a sub-cgroup the container made
    os.mkdir(sub)
    root = _stopped(tmp_path, cg)
    assert "ociruntime.linux.cgroups.v1" in _delete(root)
    assert not any(os.path.exists(h["dir"]) for h in cg["hierarchies"])


@pytest.mark.parametrize("cg", [{"version": "v2", "path": "/nonexistent/x", "mnt": "/nonexistent",
                                 "systemd": {"unit": "x.scope", "slice": "", "user": False}}])
def test_the_systemd_driver_state_is_never_removed_by_rmdir(cg):
    from ociruntime.container import _plain_cgroup_dirs
    assert _plain_cgroup_dirs(cg) is None
