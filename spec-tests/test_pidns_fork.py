"""With a new pid namespace (and no user or time namespace), create forks init straight into it (no intermediate
process): the --debug trace shows the forked child's pid is the one that reports back. exec's process is not forked
straight into the container's pid namespace when the container has its own mount namespace: the child joins every
namespace first, then forks it (launch._exec_pidns says why). The runtime going back to its own pid namespace after that fork also works when it
is itself PID 1 of a pid namespace."""
import json
import re
import subprocess

from conftest import EXE


def _steps(log):
    return [ln for ln in map(json.loads, log.read_text().splitlines()) if "step" in ln]


def test_init_is_forked_straight_into_the_pid_namespace_and_execs_process_after_the_mount_namespace_join(
        runtime, bundle, cid, tmp_path):
    log = tmp_path / "log.json"
    flags = ("--debug", "--log", str(log), "--log-format", "json")
    bundle.set_args("sleep", "60")
    runtime(*flags, "run", "-d", "--bundle", bundle.write(), cid)
    p = runtime(*flags, "exec", cid, "sh", "-c", "echo $$")
    assert p.stdout.strip() != "1"                       # a process of the container's pid namespace, not init
    names = [(s["process"], s["step"]) for s in _steps(log)]
    forked = [n for w, n in names if n.startswith("forked the child (pid ")]
    create_pid = re.match(r"forked the child \(pid (\d+)\)", forked[0]).group(1)   # v2: "... into its cgroup"
    assert ("create", f"init's pid {create_pid} received") in names
    assert not any(w == "create child" and n.startswith("7 forked init") for w, n in names)
    exec_child = re.match(r"forked the child \(pid (\d+)\)", forked[1]).group(1)
    assert ("exec", f"the process's pid {exec_child} received") not in names   # the intermediate's child reports
    assert ("exec child", "3 namespaces joined") in names and ("exec child", "4 forked, total") in names
    assert ("exec child", "4 (in the pid namespace from birth), total") not in names
    runtime("kill", cid, "KILL")


def test_a_runtime_that_is_pid_1_of_its_own_pid_namespace_runs_a_container(runtime, bundle, cid):
    # the forked child is PID 1 of the new namespace too: only the parent (told apart by fork's return, not by
    # getpid) goes back to its own pid namespace
    bundle.set_args("sh", "-c", "echo pid=$$").write()
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", 'exec "$@"', "sh", EXE,
                        "--root", runtime.root, "run", "--bundle", bundle.path, cid],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "pid=1", (p.stdout, p.stderr)
