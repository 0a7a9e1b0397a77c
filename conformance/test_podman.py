"""podman 4 (with conmon) driving the runtime directly, as a user would.

Every check runs with `podman --runtime <ociruntime>` and with runc as the control. podman keeps all its state under
a temporary directory (its own --root, --runroot, --tmpdir, containers.conf, storage.conf), uses the cgroupfs
manager, no network, and runs in a MountSandbox: conmon calls the runtime without --root, so the runtime's default
state dir (/run/...) is the sandbox's tmpfs.
"""
import os
import shutil
import subprocess
import time

import pytest

from conformance.ociimage import ImageSpec, oci_archive
from conformance.sandbox import cgroup_dir_of, run_pty

TIMEOUT = 60
MEMORY_LIMIT = 32 * 1024 * 1024
IMAGE = "localhost/conformance/busybox:latest"
WAIT_SIZE = ('for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do s=$(stty size 2>/dev/null); '
             '[ -n "$s" ] && [ "$s" != "0 0" ] && break; sleep 0.1; done; echo "$s"')


# Runtime bug: podman picks 127 by matching "no such file or directory" in the runtime's error text (runc:
# `exec: "/x": stat /x: no such file or directory`); ociruntime says `exec process.args[0] /x: ENOENT`, so podman
# exits 126 ("OCI runtime error") instead of 127.
@pytest.fixture(scope="session")
def podman(require_confined, workdir, cgroup_parent, runtimes):
    missing = [b for b in ("podman", "conmon", "nsenter", "unshare") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install --no-install-recommends podman)")
    from conformance.clients import Podman
    d = os.path.join(workdir, "podman")
    os.makedirs(d)
    archive = os.path.join(workdir, "busybox-podman.tar")
    oci_archive(archive, [ImageSpec(IMAGE)])
    pm = Podman(d, cgroup_parent + "-podman", {name: rt.binary for name, rt in runtimes.items()})
    try:
        pm.podman("load", "--input", archive, timeout=120)
        yield pm
        left = pm.podman("ps", "--all", "--quiet").stdout.split()
    finally:
        cg = pm.close()
    assert not left, f"podman checks left containers: {left}"
    assert not cg["pids"], f"processes left in {pm.cgroup_parent}: {sorted(cg['pids'])}"


@pytest.fixture
def pod(podman, runtime, workdir):
    """Per-check driver: `pod.run(name, *flags, cmd...)` runs `podman --runtime <runtime> run`; `pod.id(name)` is the
    container id podman passes to the runtime. Every named container is removed at the end."""
    class Driver:
        def __init__(self):
            self.podman, self.runtime, self.names = podman, runtime, []

        def argv(self, *args):
            return podman.argv("--runtime", runtime.binary, *args)

        def __call__(self, *args, **kw):
            return podman.podman("--runtime", runtime.binary, *args, **kw)

        def run_args(self, name, *flags):
            self.names.append(name)
            cidfile = os.path.join(workdir, "podman", f"{name}.cid")
            return ["run", "--name", name, "--cidfile", cidfile, "--network", "none",
                    "--cgroup-parent", podman.cgroup_parent, *flags, IMAGE]

        def id(self, name):
            with open(os.path.join(workdir, "podman", f"{name}.cid")) as f:
                return f.read().strip()

        def detached(self, name, *flags):
            self(*self.run_args(name, "--detach", *flags), "sleep", "3600", timeout=TIMEOUT)
            return int(self("inspect", "--format", "{{.State.Pid}}", name).stdout)

    drv = Driver()
    yield drv
    for name in drv.names:
        podman.podman("rm", "--force", "--time", "0", name, check=False)
        try:
            os.unlink(os.path.join(workdir, "podman", f"{name}.cid"))
        except FileNotFoundError:
            pass


def assert_called(pod, name, *commands):
    cid = pod.id(name)
    seen = pod.runtime.commands(cid)
    for c in commands:
        assert c in seen, f"{pod.runtime.name} was not called with `{c}` for {name}; calls: {pod.runtime.calls(cid)}"


def test_run_prints_stdout_and_stderr_and_exits_zero(pod, make_id):
    name = make_id()
    p = pod(*pod.run_args(name, "--rm"), "sh", "-c", "echo to-stdout; echo to-stderr >&2", timeout=TIMEOUT)
    assert (p.returncode, p.stdout, p.stderr.strip().splitlines()[-1:]) == (0, "to-stdout\n", ["to-stderr"])
    assert_called(pod, name, "create", "start")


def test_exit_code_propagates(pod, make_id):
    name = make_id()
    p = pod(*pod.run_args(name, "--rm"), "sh", "-c", "exit 42", timeout=TIMEOUT, check=False)
    assert p.returncode == 42, p.stderr
    assert_called(pod, name, "create", "start")


def test_missing_command_exits_127(pod, make_id):
    """podman maps the runtime's "no such file or directory" error text to exit status 127."""
    name = make_id()
    p = pod(*pod.run_args(name, "--rm"), "/no/such/binary", timeout=TIMEOUT, check=False)
    assert p.returncode == 127 and "/no/such/binary" in p.stderr, (p.returncode, p.stderr)


def test_user_workdir_and_env_reach_the_process(pod, make_id):
    name = make_id()
    p = pod(*pod.run_args(name, "--rm", "--user", "65534:65534", "--workdir", "/tmp", "--env", "GREETING=hello world"),
            "sh", "-c", 'echo "$(id -u):$(id -g):$(pwd):$GREETING"', timeout=TIMEOUT)
    assert p.stdout.strip() == "65534:65534:/tmp:hello world", p.stderr


def test_read_only_rootfs_refuses_writes(pod, make_id):
    name = make_id()
    p = pod(*pod.run_args(name, "--rm", "--read-only"),
            "sh", "-c", "touch /probe 2>&1; echo rc=$?; touch /tmp/ok && echo tmp-writable", timeout=TIMEOUT)
    assert "Read-only file system" in p.stdout and "rc=1" in p.stdout and "tmp-writable" in p.stdout, p.stdout


def test_memory_limit_is_applied_to_the_container_cgroup(pod, make_id):
    name = make_id()
    pid = pod.detached(name, "--memory", str(MEMORY_LIMIT))
    try:
        path = os.path.join(cgroup_dir_of(pid, "memory"), "memory.limit_in_bytes")
    except LookupError:
        path = os.path.join(cgroup_dir_of(pid, ""), "memory.max")
    with open(path) as f:
        assert int(f.read()) == MEMORY_LIMIT, path


def test_piped_stdin_reaches_the_process_and_its_end_closes_it(pod, make_id):
    name = make_id()
    p = pod(*pod.run_args(name, "--rm", "--interactive"), "tr", "a-z", "A-Z", input="hello from stdin\n",
            timeout=TIMEOUT)
    assert p.stdout == "HELLO FROM STDIN\n", p.stderr


def test_tty_run_gets_a_terminal_of_the_callers_size(pod, make_id):
    name = make_id()
    code, out = run_pty(pod.argv(*pod.run_args(name, "--rm", "--tty", "--interactive"), "sh", "-c",
                                 "tty; " + WAIT_SIZE + "; test -t 0 && test -t 1 && echo both-tty; exit 3"),
                        timeout=TIMEOUT, rows=30, cols=100)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    assert code == 3, out
    assert lines[:3] == ["/dev/pts/0", "30 100", "both-tty"], out
    create = next(a for a in pod.runtime.calls(pod.id(name)) if "create" in a)
    assert "--console-socket" in create, create


def test_exec_runs_as_user_in_cwd_and_propagates_exit_code(pod, make_id):
    name = make_id()
    pod.detached(name)
    p = pod("exec", "--user", "65534", "--workdir", "/tmp", name,
            "sh", "-c", 'echo "exec:$(id -u):$(pwd)"; exit 7', timeout=TIMEOUT, check=False)
    assert (p.returncode, p.stdout) == (7, "exec:65534:/tmp\n"), p.stderr
    assert_called(pod, name, "exec")


def test_exec_of_a_missing_command_exits_127(pod, make_id):
    name = make_id()
    pod.detached(name)
    p = pod("exec", name, "/no/such/binary", timeout=TIMEOUT, check=False)
    assert p.returncode == 127 and "/no/such/binary" in p.stderr, (p.returncode, p.stderr)


def test_exec_with_tty(pod, make_id):
    name = make_id()
    pod.detached(name)
    code, out = run_pty(pod.argv("exec", "--tty", "--interactive", name,
                                 "sh", "-c", "tty; test -t 0 && echo exec-tty; exit 4"), timeout=TIMEOUT)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    assert code == 4, out
    assert lines[0].startswith("/dev/pts/") and "exec-tty" in lines, out


def test_pause_freezes_and_unpause_thaws(pod, make_id):
    name = make_id()
    pid = pod.detached(name)
    pod("pause", name)
    assert pod("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
    freezer = os.path.join(cgroup_dir_of(pid, "freezer"), "freezer.state")
    with open(freezer) as f:
        assert f.read().strip() == "FROZEN"
    pod("unpause", name)
    assert pod("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
    with open(freezer) as f:
        assert f.read().strip() == "THAWED"
    assert_called(pod, name, "pause", "resume")


def test_kill_stops_the_container_and_rm_removes_its_state(pod, make_id):
    name = make_id()
    pod.detached(name)
    cid = pod.id(name)
    pod("kill", "--signal", "KILL", name)
    deadline = time.monotonic() + 10
    while pod("inspect", "--format", "{{.State.Status}}", name).stdout.strip() != "exited":
        assert time.monotonic() < deadline, "container did not stop after SIGKILL"
        time.sleep(0.1)
    assert pod("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "137"
    pod("rm", name)
    state = pod.podman.sandbox.wrap(["sh", "-c", f"ls -d /run/*/{cid} 2>/dev/null || true"])
    assert subprocess.run(state, capture_output=True, text=True).stdout == "", "runtime state left after rm"
    assert_called(pod, name, "kill", "delete")


def test_checkpoint_then_restore_continues_the_container(pod, make_id):
    """`podman container checkpoint` (the runtime's `checkpoint --image-path --work-path`; the container exits),
    then `podman container restore` (conmon runs `restore --detach --pid-file --bundle ...`): the counter carries on
    from the checkpointed value."""
    from conformance.criutool import COUNTER, Counter, forget_kdat_tmp, working_criu
    criu, why = working_criu()
    if criu is None:
        pytest.skip(why)
    pod.podman.use_criu(criu)
    name = make_id()
    pod(*pod.run_args(name, "--detach"), *COUNTER, timeout=TIMEOUT)

    def cat():
        p = pod("exec", name, "cat", "/count", check=False)
        return p.returncode, p.stdout
    count = Counter(cat)
    try:
        before = count.wait(40, 15)                # 4 s: a fresh start could not be there yet
        pod("container", "checkpoint", name, timeout=TIMEOUT)
        assert pod("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "exited"
        pod("container", "restore", name, timeout=TIMEOUT)
        after = count.wait(1, 3)                   # an exec right after restore may find it settling
        assert after >= before >= 40, f"restored counter {after}, checkpointed at {before}: not restored"
        assert count.wait(after + 3, 3) > after, "the restored container does not run"
        assert_called(pod, name, "checkpoint", "restore")
    finally:
        forget_kdat_tmp()
