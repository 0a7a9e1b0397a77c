"""Crash injection (issue 10): the runtime is SIGKILLed at named steps of create, start and delete (the test-only
OCIRUNTIME_TEST_FAULT, ociruntime/errors.py fault()) and at timed moments of create. After each kill, `delete --force ID`
must leave no state dir, cgroup, mount or process, and a new create with the same id must succeed.

Every kill point is one parametrised case; the summary test at the end asserts there were at least 30 and that
none leaked (the counts are what issue 10 asks to report).
"""
import os
import subprocess
import time

import pytest

from conftest import EXE, reap, own_cgroup_dirs, _children, _mounts

CREATE_POINTS = ["create:reserved", "create:recorded", "create:cgroups-made", "create:forked", "create:warmed-up",
                 "create:init-pid", "create:placed", "create:resources-set", "create:init-ready", "create:saved",
                 "create:pid-file", "remove:state-unlinked:rollback"]
START_POINTS = ["start:fifo-opened", "start:init-released", "start:fifo-removed"]
DELETE_POINTS = ["delete:killed", "delete:cgroups-removed", "remove:state-unlinked", "remove:exec.fifo-unlinked"]
TIMED_MS = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 70, 80, 90, 110]
RESULTS = {}


def _cgroup_dirs_of(cgroups_path):
    """The container's cgroup directories that exist, in every hierarchy (v2: the one)."""
    return [d for d in (os.path.join(base, cgroups_path) for base in own_cgroup_dirs().values()) if os.path.isdir(d)]


def _run(runtime, args, fault=None, timeout=30):
    env = dict(os.environ)
    env.pop("OCIRUNTIME_TEST_FAULT", None)
    if fault:
        env["OCIRUNTIME_TEST_FAULT"] = fault
    return runtime(*args, check=False, timeout=timeout, env=env)   # stdio to files: init inherits them


def _leaks(runtime, bundle, cid, mounts_before):
    """What delete --force left: state dir, cgroups, mounts, processes (orphans come to us: we are the
    subreaper). A child the dead create never placed dies on its own when its sync socket closes: allowed 2 s."""
    left = []
    if os.path.exists(os.path.join(runtime.root, cid)):
        left.append(f"state dir {cid}")
    left += _cgroup_dirs_of(bundle.config["linux"]["cgroupsPath"])
    if _mounts() - mounts_before:
        left.append(f"mounts {sorted(_mounts() - mounts_before)}")
    deadline = time.monotonic() + 2
    while True:
        reap()
        kids = _children()
        if not kids or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if kids:
        left.append(f"processes {sorted(kids)}")
    return left


def _check_recovery(runtime, bundle, cid, mounts_before, name):
    d = _run(runtime, ["delete", "--force", cid])
    assert d.returncode == 0, f"{name}: delete --force: {d.stderr}"
    left = _leaks(runtime, bundle, cid, mounts_before)
    RESULTS[name] = left
    assert not left, f"killed at {name}: delete --force left {left}"
    c = _run(runtime, ["create", "--bundle", bundle.path, cid])
    assert c.returncode == 0, f"{name}: a new create with the same id failed: {c.stderr}"
    _run(runtime, ["delete", "--force", cid])
    assert not _leaks(runtime, bundle, cid, mounts_before)


@pytest.fixture
def sleeper(bundle, tmp_path):
    bundle.set_args("sleep", "100").write()
    return bundle


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_create_killed_at_a_named_step_is_cleaned_by_delete_force(runtime, sleeper, cid, tmp_path, point):
    mounts = _mounts()
    fault = point
    if point.endswith(":rollback"):      # a create that fails (a missing program) and dies in its rollback
        fault = point[:-len(":rollback")]
        sleeper.set_args("/no/such/program").write()
    p = _run(runtime, ["create", "--bundle", sleeper.path, "--pid-file", str(tmp_path / "pid"), cid], fault=fault)
    assert p.returncode == -9, f"{point} was never reached: {p.returncode} {p.stderr}"
    sleeper.set_args("sleep", "100").write()
    _check_recovery(runtime, sleeper, cid, mounts, point)


@pytest.mark.parametrize("point", START_POINTS)
def test_start_killed_at_a_named_step_is_cleaned_by_delete_force(runtime, sleeper, cid, point):
    mounts = _mounts()
    assert _run(runtime, ["create", "--bundle", sleeper.path, cid]).returncode == 0
    p = _run(runtime, ["start", cid], fault=point)
    assert p.returncode == -9, f"{point} was never reached: {p.returncode} {p.stderr}"
    _check_recovery(runtime, sleeper, cid, mounts, point)


@pytest.mark.parametrize("point", DELETE_POINTS)
def test_delete_killed_at_a_named_step_is_finished_by_delete_force(runtime, sleeper, cid, point):
    mounts = _mounts()
    assert _run(runtime, ["create", "--bundle", sleeper.path, cid]).returncode == 0
    assert _run(runtime, ["start", cid]).returncode == 0
    p = _run(runtime, ["delete", "--force", cid], fault=point)
    assert p.returncode == -9, f"{point} was never reached: {p.returncode} {p.stderr}"
    _check_recovery(runtime, sleeper, cid, mounts, point)


@pytest.mark.parametrize("point", DELETE_POINTS)
def test_delete_of_a_stopped_container_killed_at_a_named_step_is_finished_by_delete(runtime, sleeper, cid, point):
    # a stopped container's delete takes its own way (container._rmdir_empty: no cgroup driver, one rmdir each)
    mounts = _mounts()
    assert _run(runtime, ["run", "-d", "--bundle", sleeper.path, cid]).returncode == 0
    assert _run(runtime, ["kill", cid, "KILL"]).returncode == 0
    runtime.wait_status(cid, "stopped")
    p = _run(runtime, ["delete", cid], fault=point)
    assert p.returncode == -9, f"{point} was never reached: {p.returncode} {p.stderr}"
    _check_recovery(runtime, sleeper, cid, mounts, f"stopped, {point}")


@pytest.mark.parametrize("ms", TIMED_MS)
def test_create_killed_after_a_delay_is_cleaned_by_delete_force(runtime, sleeper, cid, ms):
    mounts = _mounts()
    p = subprocess.Popen([EXE, "--root", runtime.root, "create", "--bundle", sleeper.path, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(ms / 1000)
    p.kill()
    p.wait()
    _check_recovery(runtime, sleeper, cid, mounts, f"{ms} ms into create")


def test_the_fault_variable_is_inert_when_unset_or_naming_no_step(runtime, sleeper, cid):
    p = _run(runtime, ["create", "--bundle", sleeper.path, cid], fault="no-such-step")
    assert p.returncode == 0, p.stderr
    assert _run(runtime, ["delete", "--force", cid]).returncode == 0


def test_crash_injection_covers_30_points_without_a_leak():
    """Runs last in this module: the issue's counts (>= 30 kill points over create, start, delete; 0 leaks)."""
    n = len(CREATE_POINTS) + len(START_POINTS) + len(DELETE_POINTS) + len(TIMED_MS)
    assert n >= 30
    if len(RESULTS) < n:
        pytest.skip(f"only {len(RESULTS)} of the {n} kill points ran (a -k selection)")
    leaked = {k: v for k, v in RESULTS.items() if v}
    print(f"\ncrash injection: {len(RESULTS)} kill points, {len(leaked)} leaked")
    assert not leaked
