"""--debug: every step of create (parent, its child and init), start, exec and delete is logged with its duration
(wall and CPU), as JSON lines in --log with --log-format json, as text lines otherwise; nothing without --debug."""
import json


def _steps(log):
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    return [ln for ln in lines if "step" in ln]


def test_debug_traces_each_step_of_create_start_exec_delete_with_durations(runtime, bundle, cid, tmp_path):
    log = tmp_path / "log.json"
    flags = ("--debug", "--log", str(log), "--log-format", "json")
    bundle.set_args("sleep", "60")
    runtime(*flags, "create", "--bundle", bundle.write(), cid)
    runtime(*flags, "start", cid)
    runtime(*flags, "exec", cid, "true")
    runtime(*flags, "delete", "--force", cid)
    steps = _steps(log)
    assert {s["level"] for s in steps} == {"debug"}
    assert all(isinstance(s["ms"], float) and s["ms"] >= 0 and s["cpu_ms"] >= 0 for s in steps), steps
    by_process = {}
    for s in steps:
        by_process.setdefault(s["process"], []).append(s["step"])
        assert s["msg"].startswith(f"{s['process']}: {s['step']} (")
    assert {"create", "create child", "init", "start", "exec", "exec child", "exec process", "delete"} <= set(by_process)
    assert "11 7 mounts" in by_process["init"] and "16 pivot_root" in by_process["init"]
    assert "READY, total" in by_process["init"]
    for who in ("create", "start", "exec", "delete"):
        assert by_process[who][-1] == "done, total", (who, by_process[who])
    assert "cgroups made" in by_process["create"] and "cgroups removed" in by_process["delete"]


def test_debug_without_log_writes_the_trace_to_stderr(runtime, bundle, cid):
    bundle.set_args("true")
    p = runtime("--debug", "create", "--bundle", bundle.write(), cid)
    assert "ociruntime: debug: create: config.json loaded and validated (" in p.stderr
    assert "ociruntime: debug: init: 16 pivot_root (" in p.stderr
    runtime("delete", "--force", cid)


def test_text_log_format_carries_the_step_fields(runtime, bundle, cid, tmp_path):
    log = tmp_path / "log.txt"
    bundle.set_args("true")
    runtime("--debug", "--log", str(log), "create", "--bundle", bundle.write(), cid)
    runtime("delete", "--force", cid)
    first = log.read_text().splitlines()[0]
    assert first.startswith('time="') and ' level=debug msg="create: config.json loaded and validated (' in first
    assert ' process=create step="config.json loaded and validated" ms=' in first


def test_without_debug_no_step_is_logged(runtime, bundle, cid, tmp_path):
    log = tmp_path / "log.json"
    bundle.set_args("sleep", "60")
    runtime("--log", str(log), "--log-format", "json", "run", "-d", "--bundle", bundle.write(), cid)
    runtime("--log", str(log), "--log-format", "json", "exec", cid, "true")
    runtime("--log", str(log), "--log-format", "json", "delete", "--force", cid)
    assert not log.exists() or _steps(log) == []
