"""state.py: the store's file format and its id reservation."""
import json
import os

import pytest

from ociruntime.errors import StateError
from ociruntime.state import ContainerState


def test_facts_round_trip_and_ids_list_saved_containers(tmp_path):
    root = str(tmp_path / "root")
    st = ContainerState.new(root, "a1", {"pid": 0, "creating": True, "bundle": "/b", "annotations": {"k": "v"}})
    assert ContainerState.ids(root) == []                 # nothing written until create saves
    assert ContainerState.load(root, "a1").status() == "creating"
    st.save()
    st.release()
    assert ContainerState.ids(root) == ["a1"]
    assert ContainerState.load(root, "a1").facts["annotations"] == {"k": "v"}


def test_an_id_in_use_is_refused(tmp_path):
    ContainerState.new(str(tmp_path), "dup", {}).release()
    with pytest.raises(StateError, match="exists"):
        ContainerState.new(str(tmp_path), "dup", {})


def test_a_container_saved_by_the_json_format_of_earlier_versions_is_still_read(tmp_path):
    # upgrading the runtime under running containers must not lose them
    d = tmp_path / "old1"
    d.mkdir()
    (d / "state.json").write_text(json.dumps({"pid": 1, "start_time": 1, "bundle": "/x", "ociVersion": "1.2.0"}))
    assert ContainerState.ids(str(tmp_path)) == ["old1"]
    st = ContainerState.load(str(tmp_path), "old1")
    assert st.facts["bundle"] == "/x" and st.oci_state()["id"] == "old1"
    st.remove()
    assert not os.path.exists(d)


@pytest.mark.parametrize("stored, shown", [
    ("2026-12-06T12:36:02.123456789Z", "2026-12-06T12:36:02.123456789Z"),
    ("2026-12-06T12:36:02.123400000Z", "2026-12-06T12:36:02.1234Z"),
    ("2026-12-06T12:36:02.000000000Z", "2026-12-06T12:36:02Z"),
])
def test_created_is_shown_as_gos_rfc3339nano(tmp_path, stored, shown):
    # runc prints `created` with Go's RFC3339Nano: no trailing zeros in the fraction, no fraction when it is zero
    st = ContainerState.new(str(tmp_path), "c1", {"pid": 0, "created": stored, "bundle": "/b"})
    st.save()
    st.release()
    assert ContainerState.load(str(tmp_path), "c1").oci_state()["created"] == shown
