"""The command line as runc 1.1.5 shows it to its callers: exit codes, stdout bytes, accepted flags and the state
machine, run under ociruntime and under runc (the control) with the same bundle. Each test states runc's observed
behaviour once and asserts it of both runtimes; the runc side skips when runc is not installed.

Deliberate differences (not asserted here, reason beside each):
* error wording, and usage errors print one line on stderr and nothing on stdout (runc adds "Incorrect Usage" and
  the command's help on stdout): callers read stderr/--log for the message, and exit codes are the same;
* `ociVersion` in state/list/spec/features: the spec version each runtime implements (runtime.md `state`);
* `kill` also takes RTMIN/RTMAX[+-N] names (kill(1)'s syntax), which runc 1.1.5 refuses as unknown signals;
* `exec -t` without --console-socket relays through a pty of its own even when our stdin is not a terminal (runc
  fails with "open /dev/tty");
* `--version` prints `ociruntime version V` and `spec: V` in runc's line shape, without runc's go/libseccomp lines.
"""
import json
import os
import shutil
import uuid

import pytest

from conftest import EXE, Runtime, reap

RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.fixture(params=["ociruntime", "runc"])
def rt(request, tmp_path):
    """ociruntime, then runc as the control, each with a private --root."""
    if request.param == "runc" and not os.access(RUNC, os.X_OK):
        pytest.skip("runc (the control) is not installed")
    r = Runtime(tmp_path / "root", exe=EXE if request.param == "ociruntime" else RUNC)
    r.name = request.param
    yield r
    r.cleanup()


@pytest.fixture
def ctr(rt):
    c = f"t{uuid.uuid4().hex[:10]}"
    rt.ids.append(c)
    return c


def _status(rt, cid):
    return json.loads(rt("state", cid).stdout)["status"]


def _stopped(rt, cid):
    try:
        rt.wait_status(cid, "stopped")
    finally:
        reap()


# --- the state machine ------------------------------------------------------------------------------------------
def test_a_paused_created_container_is_paused_until_resumed_then_starts(rt, bundle, ctr):
    # runc freezes a created container and then reports it paused (the freezer is read before the exec FIFO):
    # start and delete refuse it, resume thaws it back to created. ociruntime said `created`: resume refused,
    # start blocked forever on the frozen init and delete (no --force) killed it.
    rt("create", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    assert rt("pause", ctr).returncode == 0
    assert _status(rt, ctr) == "paused"
    assert rt("pause", ctr, check=False).returncode == 1
    assert rt("start", ctr, check=False, timeout=10).returncode == 1
    assert rt("delete", ctr, check=False).returncode == 1
    assert rt("resume", ctr).returncode == 0
    assert _status(rt, ctr) == "created"
    assert rt("resume", ctr, check=False).returncode == 1
    assert rt("start", ctr, timeout=10).returncode == 0
    assert _status(rt, ctr) == "running"


def test_pause_and_resume_twice_fail_on_a_running_container(rt, bundle, ctr):
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    rt("pause", ctr)
    assert rt("pause", ctr, check=False).returncode == 1
    assert rt("exec", ctr, "true", check=False).returncode == 255      # runc: no exec in a paused container
    rt("resume", ctr)
    assert rt("resume", ctr, check=False).returncode == 1
