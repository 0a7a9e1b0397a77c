"""The real clients, each started and driven in a MountSandbox under a temporary directory.

Containerd: our own daemon (version 2 config, its own root/state/socket, CRI and the host-path plugins disabled),
driven with `ctr --address SOCK`. Podman: daemonless, with its own --root/--runroot/--tmpdir, a containers.conf
(cgroupfs, no network, low default rlimits: this machine lacks CAP_SYS_RESOURCE) and a storage.conf.
Both use the same absolute cgroup parent, which the caller's cgroup namespace places below its own cgroups.
"""
import os
import shutil
import signal
import subprocess
import time

from conformance.sandbox import MountSandbox, die_with_parent, remove_cgroup_tree

DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.internal.v1.opt",           # would create /opt/containerd on the host
    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
)


def _toml_list(items):
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


class Containerd:
    """A containerd daemon of our own. `ctr(...)` runs ctr against it; `close()` stops it and every process it
    left, by pid, and removes its cgroups and directories."""

    def __init__(self, workdir, cgroup_parent, namespace="conformance"):
        self.workdir, self.cgroup_parent, self.namespace = workdir, cgroup_parent, namespace
        self.sock = os.path.join(workdir, "containerd.sock")
        self.config = os.path.join(workdir, "containerd.toml")
        self.log = os.path.join(workdir, "containerd.log")
        with open(self.config, "w") as f:
            f.write(f"""version = 2
root = "{workdir}/root"
state = "{workdir}/state"
disabled_plugins = {_toml_list(DISABLED_PLUGINS)}
oom_score = 0

[grpc]
  address = "{self.sock}"

[ttrpc]
  address = "{self.sock}.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
""")
        self.sandbox = MountSandbox()
        self.daemon = None
        try:
            # the shim writes exec process files and console sockets to $TMPDIR: keep them in workdir
            tmp = os.path.join(workdir, "tmp")
            os.makedirs(tmp, exist_ok=True)
            path = f"{self._path_runc()}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
            with open(self.log, "ab") as log:
                self.daemon = subprocess.Popen(self.sandbox.wrap(["containerd", "--config", self.config]),
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                               env={**os.environ, "TMPDIR": tmp, "PATH": path}, start_new_session=True,
                                               preexec_fn=die_with_parent(signal.SIGTERM))
            self._wait_ready(20)
        except BaseException:
            self.close()
            raise

    def _path_runc(self):
        """A `runc` first in the daemon's PATH, for the ctr paths that ignore --runc-binary (`ctr containers
        create` + `ctr task start`, `ctr run --no-pivot`): it execs the binary named in a file, the system runc
        unless a check chose another with `use_path_runc`."""
        d = os.path.join(self.workdir, "path-runc")
        os.makedirs(d, exist_ok=True)
        self.path_runc_target = os.path.join(d, "target")
        self.use_path_runc(shutil.which("runc") or "/usr/sbin/runc")
        with open(os.path.join(d, "runc"), "w") as f:
            f.write(f'#!/bin/sh\nexec "$(cat \'{self.path_runc_target}\')" "$@"\n')
        os.chmod(os.path.join(d, "runc"), 0o755)
        return d

    def use_path_runc(self, binary):
        with open(self.path_runc_target, "w") as f:
            f.write(binary)

    def use_criu(self, binary):
        """`criu` first in the daemon's PATH: the shim's checkpoint/restore calls pass no --criu."""
        link = os.path.join(os.path.dirname(self.path_runc_target), "criu")
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(binary, link)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"containerd exited {self.daemon.returncode}: {self.tail_log()}")
            if os.path.exists(self.sock) and self.ctr("version", timeout=5, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"containerd not ready after {timeout}s: {self.tail_log()}")

    def tail_log(self, n=20):
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def argv(self, *args):
        return self.sandbox.wrap(["ctr", "--address", self.sock, "--namespace", self.namespace, *args])

    def ctr(self, *args, timeout=30, check=True, input=None):
        p = subprocess.run(self.argv(*args), input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def tasks(self):
        """{id: (pid, STATUS)} from `ctr task ls`."""
        out = self.ctr("task", "ls").stdout.splitlines()[1:]
        return {f[0]: (int(f[1]), f[2]) for f in (line.split() for line in out) if len(f) >= 3}

    def containers(self):
        return self.ctr("containers", "ls", "-q").stdout.split()

    def remove(self, cid):
        """Kill and delete task and container `cid`, whatever state they are in."""
        if cid in self.tasks():
            self.ctr("task", "kill", "--all", "--signal", "SIGKILL", cid, check=False)
            self.wait_status(cid, "STOPPED", timeout=10, check=False)
            self.ctr("task", "delete", "--force", cid, check=False)
        if cid in self.containers():
            self.ctr("containers", "delete", cid, check=False)

    def wait_status(self, cid, status, timeout=10, check=True):
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.tasks().get(cid, (None, None))[1]
            if seen == status:
                return True
            time.sleep(0.05)
        if check:
            raise AssertionError(f"task {cid}: status {seen}, wanted {status} within {timeout}s")
        return False

    def leftovers(self):
        """What the tests left in the daemon: tasks, containers, snapshots (of the default snapshotter)."""
        snaps = self.ctr("snapshots", "ls", check=False).stdout.splitlines()[1:]
        active = [s for s in snaps if "Active" in s]
        return {"tasks": sorted(self.tasks()), "containers": self.containers(), "active snapshots": active}

    def close(self):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        # shims (and anything they left) are still in the sandbox's mount namespace: stop them by pid
        self.sandbox.close()
        return remove_cgroup_tree(self.cgroup_parent)


class Podman:
    """podman configured to write only below `workdir`; `podman(...)` runs it inside the sandbox."""

    def __init__(self, workdir, cgroup_parent, runtimes):
        self.workdir, self.cgroup_parent = workdir, cgroup_parent
        d = lambda *p: os.path.join(workdir, *p)  # noqa: E731
        for sub in ("root", "runroot", "tmp", "volumes", "net"):
            os.makedirs(d(sub), exist_ok=True)
        self.conf, self.storage_conf, self.registries = d("containers.conf"), d("storage.conf"), d("registries.conf")
        rt_paths = "\n".join(f'{name} = ["{path}"]' for name, path in runtimes.items())
        with open(self.conf, "w") as f:
            f.write(f"""[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
log_driver = "k8s-file"
pids_limit = 0
shm_size = "16m"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d('events.log')}"
tmp_dir = "{d('tmp')}"
volume_path = "{d('volumes')}"
static_dir = "{d('root', 'libpod')}"
no_pivot_root = false
num_locks = 128
lock_type = "file"
runtime = "ociruntime"

[engine.runtimes]
{rt_paths}

[network]
network_config_dir = "{d('net')}"
""")
        with open(self.storage_conf, "w") as f:
            f.write(f"""[storage]
driver = "overlay"
graphroot = "{d('root')}"
runroot = "{d('runroot')}"
""")
        with open(self.registries, "w") as f:
            f.write('unqualified-search-registries = []\n')
        self.sandbox = MountSandbox()
        self.path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")

    def use_criu(self, binary):
        """`criu` first in podman's PATH (podman asks it for its version; the runtime gets no --criu)."""
        d = os.path.join(self.workdir, "criu-bin")
        os.makedirs(d, exist_ok=True)
        if not os.path.islink(os.path.join(d, "criu")):
            os.symlink(binary, os.path.join(d, "criu"))
        self.path = f"{d}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"

    def argv(self, *args):
        d = self.workdir
        return self.sandbox.wrap(["env", f"PATH={self.path}", f"CONTAINERS_CONF={self.conf}", f"CONTAINERS_STORAGE_CONF={self.storage_conf}",
                                  f"CONTAINERS_REGISTRIES_CONF={self.registries}",
                                  "podman", "--root", f"{d}/root", "--runroot", f"{d}/runroot",
                                  "--tmpdir", f"{d}/tmp", "--cgroup-manager", "cgroupfs",
                                  "--events-backend", "file", "--storage-driver", "overlay", *args])

    def podman(self, *args, timeout=60, check=True, input=None):
        p = subprocess.run(self.argv(*args), input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def close(self):
        self.podman("rm", "--all", "--force", "--time", "0", check=False, timeout=60)
        self.podman("rmi", "--all", "--force", check=False, timeout=60)
        self.sandbox.close()
        left = remove_cgroup_tree(self.cgroup_parent)
        return left



class Docker:
    """A dockerd of our own (Debian's docker.io 20.10) with its managed containerd, driven by Debian's `docker` CLI
    (the docker next to dockerd, not another one earlier in PATH): own data root, exec root, socket, pidfile and
    config file; no bridge, no iptables, no forwarding; vfs storage (no overlay mounts to leave behind); cgroupfs
    driver with an absolute --cgroup-parent that the caller's cgroup namespace places below its own cgroups. The
    runtimes are registered with --add-runtime under `names` (docker reserves "runc" for its own)."""

    def __init__(self, workdir, cgroup_parent, runtimes, dockerd, cli):
        self.workdir, self.cgroup_parent, self.cli = workdir, cgroup_parent, cli
        d = lambda *p: os.path.join(workdir, *p)  # noqa: E731
        for sub in ("data", "exec", "cli", "tmp"):
            os.makedirs(d(sub), exist_ok=True)
        self.sock, self.pidfile, self.log = d("docker.sock"), d("dockerd.pid"), d("dockerd.log")
        self.config = d("daemon.json")
        with open(self.config, "w") as f:
            f.write("{}\n")
        argv = [dockerd, "--data-root", d("data"), "--exec-root", d("exec"), "-H", f"unix://{self.sock}",
                "--pidfile", self.pidfile, "--config-file", self.config, "--bridge=none", "--iptables=false",
                "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
                "--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent", cgroup_parent, "--log-level", "warn"]
        for name, path in runtimes.items():
            argv += ["--add-runtime", f"{name}={path}"]
        # /etc/docker: dockerd 20.10 writes its trust key (key.json) there whatever --config-file says
        self.sandbox = MountSandbox(covered=("/run", "/var/lib", "/etc/docker"))
        self.daemon = None
        self.env = {**os.environ, "DOCKER_CONFIG": d("cli"), "TMPDIR": d("tmp"), "DOCKER_HOST": f"unix://{self.sock}"}
        try:
            with open(self.log, "ab") as log:
                self.daemon = subprocess.Popen(self.sandbox.wrap(argv), stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=log, env=self.env, start_new_session=True,
                                               preexec_fn=die_with_parent(signal.SIGTERM))
            self._wait_ready(60)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.daemon.returncode}: {self.tail_log()}")
            if os.path.exists(self.sock) and self.docker("version", timeout=10, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd not ready after {timeout}s: {self.tail_log()}")

    def tail_log(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def argv(self, *args):
        return self.sandbox.wrap(["env", f"DOCKER_CONFIG={self.env['DOCKER_CONFIG']}", self.cli, "-H",
                                  f"unix://{self.sock}", *args])

    def docker(self, *args, timeout=60, check=True, input=None):
        p = subprocess.run(self.argv(*args), input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def daemon_pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return self.daemon.pid if self.daemon is not None else None

    def close(self):
        """Containers and images removed, dockerd stopped by its pid (SIGTERM, then SIGKILL), then whatever is
        left in the sandbox (its containerd, shims), then the cgroups. Returns remove_cgroup_tree's leftovers."""
        if self.daemon is not None and self.daemon.poll() is None:
            ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False, timeout=60)
            self.docker("image", "prune", "-af", check=False, timeout=60)
            self.daemon.terminate()
            try:
                self.daemon.wait(20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.sandbox.close()
        return remove_cgroup_tree(self.cgroup_parent)
