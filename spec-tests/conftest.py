"""Fixtures for spec-tests: real busybox containers driven through the `ociruntime` executable.

Every container gets a relative cgroupsPath (below the test process's own cgroups) and a temporary --root; the
session fixture fails the run if any state dir, mount, cgroup or process is left behind.
"""
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conformance import rootfs
from ociruntime.linux import arch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SPEC_RUNTIME=/usr/sbin/runc runs the same checks against another runtime (make test-arm64 does, as the control)
EXE = os.environ.get("SPEC_RUNTIME") or os.path.join(REPO, ".venv", "bin", "ociruntime")
BASE_BUNDLE = os.path.join(REPO, "build", "bundle")
SECCOMP_ARCH = arch.native().SECCOMP_ARCH                # this machine's, for linux.seccomp.architectures
# one token per pytest session: the leak check below looks only at this session's cgroups (a concurrent session's
# come and go on the same shared hierarchy roots)
CGROUP_PARENT = f"ociruntime-test-{uuid.uuid4().hex[:6]}"


def _mounts():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")     # pure cgroup v2 (`make test-cgroup2`), else v1/hybrid


def own_cgroup_dirs() -> dict:
    """This process's cgroup directories from /proc/self/cgroup: v1 {controller: dir} (the hybrid's cgroup2
    hierarchy as "unified"); v2 {"": dir}, one directory for every controller."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for ln in f:
            _, ctrls, path = ln.rstrip("\n").split(":", 2)
            path = path.rstrip("/")
            if not ctrls:
                out["" if V2 else "unified"] = ("/sys/fs/cgroup" if V2 else "/sys/fs/cgroup/unified") + path
            for c in ctrls.split(",") if ctrls else ():
                c = c.replace("name=", "")
                out[c] = f"/sys/fs/cgroup/{c}{path}"
    return out


def cgroup_dir(ctrl: str, inner: str = "") -> str:
    """Where a relative cgroupsPath `inner` lives for controller ctrl: v1 in that controller's hierarchy, v2 in the
    unified one (ctrl is then only what the caller means to look at)."""
    base = own_cgroup_dirs()["" if V2 else ctrl]
    return os.path.join(base, inner) if inner else base


def _cgroup_dirs():
    found = set()
    dirs = own_cgroup_dirs()
    for ctrl in ("", "memory", "pids", "cpu", "devices", "freezer", "blkio", "cpuset", "unified"):
        base = dirs.get(ctrl)
        if base and os.path.isdir(base):
            for d in os.listdir(base):
                if d.startswith("ociruntime-test-") and not d.startswith(CGROUP_PARENT):
                    continue    # another session's
                if os.path.isdir(os.path.join(base, d)) and d.startswith(("ociruntime-", "oci-")):
                    found.add(os.path.join(base, d))
    return found


def _children():
    me = str(os.getpid())
    kids = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    parts = f.read().rsplit(")", 1)[1].split()
                if parts[1] == me and parts[0] != "Z":
                    kids.add(int(p))
            except OSError:
                pass
    return kids


def reap():
    """We are the subreaper (as containerd's shim is): collect exited container processes."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_behind(tmp_path_factory):
    import ctypes
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphaned inits come to us, not to PID 1
    if not os.path.exists(os.path.join(BASE_BUNDLE, "config.json")):
        pytest.exit("build/bundle is missing: run `make bundle` (make test does)", 2)
    mounts, cgroups = _mounts(), _cgroup_dirs()
    yield
    reap()
    left = []
    if _mounts() - mounts:
        left.append(f"mounts: {sorted(_mounts() - mounts)}")
    if _cgroup_dirs() - cgroups:
        left.append(f"cgroups: {sorted(_cgroup_dirs() - cgroups)}")
    deadline = time.monotonic() + 3        # a process killed by the last test may still be exiting
    while (kids := _children()) and time.monotonic() < deadline:
        time.sleep(0.05)
        reap()
    if kids:
        left.append(f"processes: {sorted(kids)}")
    assert not left, "tests left things behind: " + "; ".join(left)


class Runtime:
    """Drives ociruntime with a private --root; cleans every container it created."""

    def __init__(self, root, exe=EXE):
        self.root, self.exe, self.ids = str(root), exe, []

    def __call__(self, *args, check=True, timeout=30, input=None, **kw):
        # stdio goes to files, not pipes: a created container inherits them and would hold a pipe open
        import tempfile
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([self.exe, "--root", self.root, *args], stdout=out, stderr=err, text=True,
                               timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                               **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"ociruntime {' '.join(args)} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def wait_status(self, cid, want, timeout=5.0):
        """Poll `state` until the container reaches `want`; its state document."""
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state(cid)
            if st["status"] == want:
                return st
            time.sleep(0.01)
        raise AssertionError(f"{cid} never became {want}: {self.state(cid)}")

    def cleanup(self):
        for cid in self.ids:
            subprocess.run([self.exe, "--root", self.root, "delete", "--force", cid], capture_output=True)
        reap()
        left = os.listdir(self.root) if os.path.isdir(self.root) else []
        shutil.rmtree(self.root, ignore_errors=True)
        assert not left, f"state dirs left: {left}"


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime(tmp_path / "root")
    yield rt
    rt.cleanup()


def copy_rootfs(dst: str) -> str:
    """A copy of the base bundle's rootfs at dst, without device nodes (conformance.rootfs says why)."""
    return rootfs.copy_rootfs(os.path.join(BASE_BUNDLE, "rootfs"), dst)


class Bundle:
    def __init__(self, path):
        self.path = str(path)
        with open(os.path.join(BASE_BUNDLE, "config.json")) as f:
            self.config = json.load(f)
        self.config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}-{uuid.uuid4().hex[:8]}"
        self.config["root"]["readonly"] = False
        copy_rootfs(os.path.join(self.path, "rootfs"))

    @property
    def rootfs(self):
        return os.path.join(self.path, "rootfs")

    def set_args(self, *args):
        self.config["process"]["args"] = list(args)
        return self

    def ns(self, *types):
        self.config["linux"]["namespaces"] = [{"type": t} for t in types]
        return self

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
        return self.path


def without_mount_ns(bundle):
    """The container shares the runtime's mount namespace (config-linux.md: it inherits it)."""
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "mount"]
    for key in ("maskedPaths", "readonlyPaths"):     # refused without one (they would mask the host's), as runc
        bundle.config["linux"].pop(key, None)
    return bundle


@pytest.fixture
def bundle(tmp_path):
    return Bundle(tmp_path / "bundle")


@pytest.fixture
def cid(runtime):
    c = f"t{uuid.uuid4().hex[:10]}"
    runtime.ids.append(c)
    return c


@pytest.fixture
def make_id(runtime):
    def _make():
        c = f"t{uuid.uuid4().hex[:10]}"
        runtime.ids.append(c)
        return c
    return _make


def console_listener(path):
    """A --console-socket at path: (server socket, its thread, dict that gets "fd", the pty master received)."""
    import socket
    import threading
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    got = {}

    def serve():
        conn, _ = srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        got["fd"] = fds[0]
        conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t, got


def read_pty_until(fd, marker=b"done"):
    """What the pty master fd gives until marker appears (or EOF/EIO: the last process closed its side); fd closed."""
    data = b""
    while marker not in data:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data
