"""Docker 20.10 (Debian's docker.io: dockerd, its managed containerd and the runc v2 shim) driving the runtime, as
a user would: `docker run --runtime NAME`.

Every check runs with ociruntime and with runc as the control, both registered with `dockerd --add-runtime` behind
their argv-logging wrappers. The daemon is our own (clients.Docker): own data root, exec root, socket, pidfile,
config file, no network (no bridge, no iptables), vfs storage, cgroupfs driver with --cgroup-parent below the
test's own cgroups, in a MountSandbox. The image is imported from the local busybox rootfs (`docker import`),
never pulled.
"""
import os
import shutil
import subprocess

import pytest

from conformance.ociimage import rootfs_layer
from conformance.sandbox import cgroup_dir_of, run_pty

TIMEOUT = 60
MEMORY_LIMIT = 32 * 1024 * 1024
IMAGE = "conformance/busybox:latest"
# docker reserves the name "runc" for its own runtime
DOCKER_NAME = {"ociruntime": "ociruntime", "runc": "runc-control"}


def _debian_docker():
    """dockerd and the docker CLI of the same package (a newer CLI earlier in PATH may not speak to 20.10)."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        return None, None
    for cli in ("/usr/bin/docker", os.path.join(os.path.dirname(os.path.realpath(dockerd)), "docker")):
        if os.access(cli, os.X_OK):
            return dockerd, cli
    return dockerd, shutil.which("docker")


@pytest.fixture(scope="session")
def dockerd(require_confined, workdir, cgroup_parent, runtimes):
    dockerd_bin, cli = _debian_docker()
    missing = [b for b, p in (("dockerd", dockerd_bin), ("docker", cli), ("containerd", shutil.which("containerd")),
                              ("containerd-shim-runc-v2", shutil.which("containerd-shim-runc-v2")),
                              ("nsenter", shutil.which("nsenter")), ("unshare", shutil.which("unshare"))) if p is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install --no-install-recommends docker.io)")
    from conformance.clients import Docker
    d = os.path.join(workdir, "docker")
    os.makedirs(d)
    parent = cgroup_parent + "-docker"
    daemon = Docker(d, parent, {DOCKER_NAME[name]: rt.binary for name, rt in runtimes.items()}, dockerd_bin, cli)
    try:
        p = subprocess.run(daemon.argv("import", "--change", 'CMD ["sh"]', "-", IMAGE), input=rootfs_layer(),
                           capture_output=True, timeout=120, env=daemon.env)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        yield daemon
        left = daemon.docker("ps", "-aq").stdout.split()
    finally:
        cg = daemon.close()
    assert not left, f"docker checks left containers: {left}"
    assert not cg["pids"], f"processes left in {parent}: {sorted(cg['pids'])}"


@pytest.fixture
def dock(dockerd, runtime):
    """Per-check driver: `dock.run(name, *flags, cmd...)` is `docker run --runtime <runtime> ...`; every named
    container is removed at the end."""
    class Driver:
        def __init__(self):
            self.daemon, self.runtime, self.names = dockerd, runtime, []

        def __call__(self, *args, **kw):
            return dockerd.docker(*args, **kw)

        def run_args(self, name, *flags):
            self.names.append(name)
            return ["run", "--name", name, "--runtime", DOCKER_NAME[runtime.name], "--network", "none", *flags,
                    IMAGE]

        def id(self, name):
            return dockerd.docker("inspect", "--format", "{{.Id}}", name).stdout.strip()

        def detached(self, name, *flags):
            self(*self.run_args(name, "--detach", *flags), "sleep", "3600", timeout=TIMEOUT)
            return int(self("inspect", "--format", "{{.State.Pid}}", name).stdout)

    drv = Driver()
    yield drv
    for name in drv.names:
        dockerd.docker("rm", "--force", name, check=False)


def assert_called(dock, cid, *commands):
    seen = dock.runtime.commands(cid)
    for c in commands:
        assert c in seen, f"{dock.runtime.name} was not called with `{c}` for {cid}; calls: {dock.runtime.calls(cid)}"


def test_run_prints_stdout_and_stderr_and_propagates_the_exit_code(dock, make_id):
    name = make_id()
    p = dock(*dock.run_args(name), "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 42", timeout=TIMEOUT,
             check=False)
    assert (p.returncode, p.stdout, p.stderr.strip().splitlines()[-1:]) == (42, "to-stdout\n", ["to-stderr"])
    assert dock("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "42"
    assert_called(dock, dock.id(name), "create", "start")


def test_missing_command_is_a_runtime_error_naming_it(dock, make_id):
    """docker maps the runtime's create error: 127 for 'no such file', 126 otherwise; both name the program."""
    name = make_id()
    p = dock(*dock.run_args(name), "/no/such/binary", timeout=TIMEOUT, check=False)
    assert p.returncode in (126, 127) and "/no/such/binary" in p.stderr, (p.returncode, p.stderr)
    assert_called(dock, dock.id(name), "create")


def test_piped_stdin_reaches_the_process_and_its_end_closes_it(dock, make_id):
    name = make_id()
    p = dock(*dock.run_args(name, "--interactive"), "tr", "a-z", "A-Z", input="hello from stdin\n", timeout=TIMEOUT)
    assert p.stdout == "HELLO FROM STDIN\n", p.stderr


def test_tty_run_gets_a_terminal(dock, make_id):
    name = make_id()
    code, out = run_pty(dock.daemon.argv(*dock.run_args(name, "--tty", "--interactive"), "sh", "-c",
                                         "tty; test -t 0 && test -t 1 && echo both-tty; exit 3"),
                        timeout=TIMEOUT, rows=30, cols=100, env=dock.daemon.env)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    assert code == 3, out
    assert lines[:2] == ["/dev/pts/0", "both-tty"], out
    create = next(a for a in dock.runtime.calls(dock.id(name)) if "create" in a)
    assert "--console-socket" in create, create


def test_user_workdir_env_and_read_only_rootfs(dock, make_id):
    """--user/--workdir/--env reach the process; --read-only refuses writes to / while --tmpfs /tmp is writable
    and keeps /tmp's mode (1777), as under runc."""
    name = make_id()
    p = dock(*dock.run_args(name, "--user", "65534:65534", "--workdir", "/tmp", "--env", "GREETING=hello world",
                            "--read-only", "--tmpfs", "/tmp"),
             "sh", "-c", 'echo "$(id -u):$(id -g):$(pwd):$GREETING"; touch /probe 2>&1; echo rc=$?; '
                         'touch /tmp/ok && echo tmp-writable; stat -c %a /tmp', timeout=TIMEOUT)
    lines = p.stdout.splitlines()
    assert lines[0] == "65534:65534:/tmp:hello world", p.stdout + p.stderr
    assert "Read-only file system" in p.stdout and "rc=1" in lines and "tmp-writable" in lines, p.stdout
    assert lines[-1] == "1777", p.stdout


def test_memory_limit_exec_and_stop_of_a_detached_container(dock, make_id):
    """--memory lands in the container's cgroup, below --cgroup-parent; `docker exec` runs as the given user in the
    given cwd with its exit code; `docker stop -t 1` kills `sleep` (PID 1 ignores SIGTERM): 137; rm deletes."""
    name = make_id()
    pid = dock.detached(name, "--memory", str(MEMORY_LIMIT))
    cid = dock.id(name)
    try:
        d = cgroup_dir_of(pid, "memory")
        path = os.path.join(d, "memory.limit_in_bytes")
    except LookupError:
        d = cgroup_dir_of(pid, "")
        path = os.path.join(d, "memory.max")
    assert f"/{dock.daemon.cgroup_parent.strip('/')}/" in d, d
    with open(path) as f:
        assert int(f.read()) == MEMORY_LIMIT, path
    p = dock("exec", "--user", "65534", "--workdir", "/tmp", name,
             "sh", "-c", 'echo "exec:$(id -u):$(pwd)"; exit 7', timeout=TIMEOUT, check=False)
    assert (p.returncode, p.stdout) == (7, "exec:65534:/tmp\n"), p.stderr
    dock("stop", "--time", "1", name, timeout=TIMEOUT)
    assert dock("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split() == \
        ["exited", "137"]
    dock("rm", name)
    assert_called(dock, cid, "create", "start", "exec", "kill", "delete")
