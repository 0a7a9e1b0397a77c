"""runtime_tools.py against a fake runtime-tools tree whose validation executables print canned TAP
(CI has no runtime-tools; these prove the runner's table, statuses and exit codes)."""
import os
import platform
import subprocess
import sys

import pytest

from conformance.runtime_tools import GOARCH, find_executables, parse_tap, table

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime_tools.py")

FAKES = {
    # name: shell body; each sees RUNTIME and runs in the suite dir
    "pass/pass.t": 'test -x ./runtimetest && echo "ok 1 - runtime is $RUNTIME"; echo "ok 2 - two"; echo "1..2"',
    "fail.t": 'echo "ok 1 - fine"; echo "not ok 2 - linux.sysctl not applied"; echo "1..2"',
    "skip/skip.t": 'echo "1..1"; echo "ok 1 # skip cgroup v2 not supported"',
    "crash.t": 'echo "ok 1 - started"; echo "failed to create the container" >&2; exit 1',
    "short.t": 'echo "1..3"; echo "ok 1 - one"',
    "slow.t": 'echo "ok 1 - before"; exec sleep 30',
}


@pytest.fixture
def suite(tmp_path):
    (tmp_path / "runtimetest").write_text("#!/bin/sh\n")
    (tmp_path / "runtimetest").chmod(0o755)
    (tmp_path / f"rootfs-{GOARCH.get(platform.machine(), platform.machine())}.tar.gz").write_bytes(b"")
    for name, body in FAKES.items():
        path = tmp_path / "validation" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return tmp_path


def run(*args):
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True, timeout=60)


def test_tap_parsing_counts_ok_not_ok_skip_todo_and_plan():
    r = parse_tap("x.t", "TAP version 13\nok 1 - a\nnot ok 2 - b\nok 3 # SKIP no cgroup\n"
                         "not ok 4 - c # TODO later\n# diagnostic\n1..4\n")
    assert (r.passed, r.failed, r.skipped, r.todo, r.planned) == (1, 1, 1, 1, 4)
    assert r.failures == ["not ok 2 - b"]


def test_statuses_follow_tap_and_exit_code():
    def status(text, code=0):
        r = parse_tap("t", text)
        r.exit_code = code
        return r.status
    assert status("ok 1\n1..1\n") == "PASS"
    assert status("ok 1\nnot ok 2\n1..2\n") == "FAIL"
    assert status("1..1\nok 1 # skip nope\n") == "SKIP"
    assert status("1..0 # SKIP whole suite\n") == "SKIP"
    assert status("ok 1\n", code=1) == "ERROR"
    assert status("", code=0) == "ERROR"
    assert status("1..3\nok 1\n") == "FAIL"


def test_executables_are_found_recursively_and_filtered(suite):
    names = [os.path.relpath(p, suite / "validation") for p in find_executables(str(suite))]
    assert names == sorted(FAKES)
    assert [os.path.basename(p) for p in find_executables(str(suite), "skip")] == ["skip.t"]


def test_table_has_a_row_per_executable_and_totals():
    rows = table([parse_tap("a.t", "ok 1\n1..1\n"), parse_tap("b.t", "not ok 1\n1..1\n")]).splitlines()
    assert rows[2].split()[:2] == ["a.t", "PASS"] and rows[3].split()[:2] == ["b.t", "FAIL"]
    assert "executables: 2" in rows[-2] and "pass: 1" in rows[-2] and "fail: 1" in rows[-2]
    assert rows[-1] == "assertions: 1 passed, 1 failed, 0 skipped"


def test_unset_dir_prints_a_message_and_exits_zero():
    env = {k: v for k, v in os.environ.items() if k != "RUNTIME_TOOLS"}
    p = subprocess.run([sys.executable, RUNNER], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0 and "RUNTIME_TOOLS is unset" in p.stdout


def test_incomplete_suite_dir_is_refused_with_the_reason(tmp_path):
    p = run(str(tmp_path))
    assert p.returncode == 2
    assert "runtimetest missing" in p.stderr and "validation-executables" in p.stderr


def test_runner_prints_the_table_and_fails_when_a_validation_fails(suite):
    p = run(str(suite), "--timeout", "3", "--runtime", "/bin/true", "--verbose")
    rows = {ln.split()[0]: ln.split()[1] for ln in p.stdout.splitlines() if ln.endswith(tuple("0123456789"))
            and len(ln.split()) == 6}
    assert rows == {"pass/pass.t": "PASS", "fail.t": "FAIL", "skip/skip.t": "SKIP", "crash.t": "ERROR",
                    "short.t": "FAIL", "slow.t": "TIMEOUT"}, p.stdout
    assert "ok 1 - runtime is /bin/true" not in p.stdout  # passes are counted, not echoed
    assert "not ok 2 - linux.sysctl not applied" in p.stdout  # --verbose shows failures
    assert p.returncode == 1


def test_report_only_exits_zero_and_keyword_selects(suite):
    p = run(str(suite), "--runtime", "/bin/true", "-k", "pass", "--report-only")
    assert p.returncode == 0 and "executables: 1" in p.stdout and "pass: 1" in p.stdout, p.stdout
    p = run(str(suite), "--runtime", "/bin/true", "-k", "fail", "--report-only")
    assert p.returncode == 0 and "fail: 1" in p.stdout
