"""The isolation every real-client check runs in, and the cleanup that proves it leaves nothing behind.

- MountSandbox: a private mount namespace, held open by one `sleep` we start, with tmpfs on /run and /var/lib.
  containerd's shim puts its socket under the hard-coded /run/containerd/s, ctr its FIFOs under
  /run/containerd/fifo, podman its locks under /run/libpod and its blob-info cache in /var/lib/containers/cache
  (no flag moves it), and podman's conmon calls the runtime without --root (so its state goes to the default
  /run/...): inside the sandbox all of that lands in a tmpfs that dies with the namespace. Commands enter it
  with `nsenter --mount` (no fork: the pid we get is the client's own pid).
- Cgroups: the clients get an absolute cgroup parent (/NAME/...), which the caller's cgroup namespace (confine.sh)
  maps below the test process's own cgroups; `remove_cgroup_tree` kills what is left in it and removes it.
- Runtime wrappers: `<dir>/<name>` logs its argv to a file, then execs the real binary, so a check can prove
  which runtime the client called and how.
"""
import os
import select
import signal
import subprocess
import time

CGROUP_ROOT = "/sys/fs/cgroup"


def confined():
    """True only inside spec-tests/confine.sh: its marker is set and this process sits at the root of every cgroup
    hierarchy it sees (a fresh cgroup namespace shows "/" for each; the host shows real paths). PID 1's namespaces
    cannot be read here, so they are not compared; anything that cannot be checked counts as not confined."""
    if os.environ.get("OCIRUNTIME_CONFINED") != "1":
        return False
    try:
        with open("/proc/self/cgroup") as f:
            return all(line.rstrip("\n").split(":", 2)[2] == "/" for line in f)
    except OSError:
        return False


def die_with_parent(sig=signal.SIGKILL):
    """preexec_fn: the child gets `sig` when the test process dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    def _set():
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)
    return _set


COVERED = ("/run", "/var/lib")  # default state dirs of the clients (/run/containerd/s, /var/lib/containers/cache)


class MountSandbox:
    """A private mount namespace with a tmpfs on /run and /var/lib, kept alive by a `sleep` we own."""

    def __init__(self, covered=COVERED):
        mounts = " && ".join(f"mount -t tmpfs -o mode=755,size=512m ocirt-conformance {d}" for d in covered)
        script = f"{mounts} && mkdir -p /run/lock && echo ready && exec sleep 86400"
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True, preexec_fn=die_with_parent())
        ready, _, _ = select.select([self.holder.stdout], [], [], 10)
        line = self.holder.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            err = self.holder.stderr.read1(4096) if self.holder.poll() is not None else b"(timed out)"
            self.holder.kill()
            self.holder.wait()
            raise RuntimeError(f"mount sandbox did not start: {err.decode(errors='replace')}")
        self.mnt_ns = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")

    def wrap(self, argv):
        return ["nsenter", f"--target={self.holder.pid}", "--mount", "--", *argv]

    def members(self):
        """Pids (other than the holder) whose mount namespace is the sandbox's."""
        found = []
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) != self.holder.pid:
                try:
                    if os.readlink(f"/proc/{p}/ns/mnt") == self.mnt_ns:
                        found.append(int(p))
                except OSError:
                    pass
        return found

    def close(self, grace=5.0):
        """SIGTERM every process still in the namespace, SIGKILL after `grace`, then end the holder."""
        kill_and_wait(self.members(), grace)
        self.holder.kill()
        self.holder.wait()
        for stream in (self.holder.stdout, self.holder.stderr):
            stream.close()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_and_wait(pids, grace=5.0):
    """SIGTERM the given pids, SIGKILL those still alive after `grace` seconds; wait until they are gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [p for p in pids if alive(p)]
        if not pids:
            return


def hierarchies():
    """Every mounted cgroup hierarchy: /sys/fs/cgroup itself on a v2 host, its subdirectories on v1/hybrid."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.procs")):
        return [CGROUP_ROOT]
    return [os.path.join(CGROUP_ROOT, d) for d in sorted(os.listdir(CGROUP_ROOT))
            if os.path.exists(os.path.join(CGROUP_ROOT, d, "cgroup.procs"))]


def cgroup_dir_of(pid, controller):
    """Host path of `pid`'s cgroup in the hierarchy holding `controller` ('' = the v2 unified one)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(",") or (controller == "" and ctrls == ""):
                base = CGROUP_ROOT if controller == "" and os.path.exists(f"{CGROUP_ROOT}/cgroup.procs") else \
                    os.path.join(CGROUP_ROOT, "unified" if controller == "" else ctrls)
                return base + path
    raise LookupError(f"pid {pid} has no {controller or 'unified'} cgroup")


def remove_cgroup_tree(name):
    """Kill every process left in /NAME (all hierarchies), then remove its cgroups bottom-up. Returns what was
    still there (pids and dirs), so a caller can report leftovers."""
    left = {"pids": set(), "dirs": []}
    for h in hierarchies():
        top = os.path.join(h, name.strip("/"))
        if not os.path.isdir(top):
            continue
        for d, _, _ in os.walk(top):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    left["pids"].update(int(x) for x in f.read().split())
            except OSError:
                pass
    kill_and_wait(sorted(left["pids"]), grace=0.5)
    for h in hierarchies():
        top = os.path.join(h, name.strip("/"))
        if not os.path.isdir(top):
            continue
        for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            left["dirs"].append(d)
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
    return left


def write_wrapper(path, real, log):
    """A shell script at `path` that appends its argv (one line) to `log` and execs `real` with it."""
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                f"{{ printf '%s' \"$0\"; for a in \"$@\"; do printf ' %s' \"$a\"; done; echo; }} >> '{log}'\n"
                f"exec '{real}' \"$@\"\n")
    os.chmod(path, 0o755)


def run_pty(argv, timeout, rows=30, cols=100, env=None):
    """Run argv with a pseudo-terminal as its stdin/stdout/stderr (size rows x cols); return (exit code, output).

    Output is everything read from the master until the child exits and the slave is closed."""
    import fcntl
    import struct
    import termios
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env=env)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                # the child is gone; drain what is buffered, then stop
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                    break
        else:
            p.kill()
            p.wait()
            raise subprocess.TimeoutExpired(argv, timeout, output=bytes(out))
        return p.wait(timeout=max(1.0, deadline - time.monotonic())), out.decode(errors="replace")
    finally:
        os.close(master)
