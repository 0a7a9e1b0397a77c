"""What the conformance checks share: the runtimes under test (ociruntime and the runc control, each behind an
argv-logging wrapper) and the names of the locally built images."""
import os
import shutil

from conformance.ociimage import ImageSpec
from conformance.sandbox import write_wrapper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OCIRUNTIME = os.environ.get("OCIRUNTIME_BIN", os.path.join(REPO, ".venv", "bin", "ociruntime"))
RUNTIMES = {"ociruntime": OCIRUNTIME, "runc": shutil.which("runc") or "/usr/sbin/runc"}

IMAGE = "docker.io/conformance/busybox:latest"
IMAGE_USER = "docker.io/conformance/busybox:nobody"
IMAGE_CMD = "docker.io/conformance/busybox:cmd"
IMAGE_SPECS = (ImageSpec(IMAGE),
               ImageSpec(IMAGE_USER, user="65534:65534", workdir="/tmp", env=("IMGVAR=from-image",)),
               ImageSpec(IMAGE_CMD, cmd=("sh", "-c", "echo started-by-task; exit 5")))


class RuntimeUnderTest:
    """One runtime binary as the clients see it: a logging wrapper, its argv log, a --root for its state."""

    def __init__(self, name, real, workdir):
        self.name, self.real = name, real
        bindir = os.path.join(workdir, "bin")
        os.makedirs(bindir, exist_ok=True)
        self.binary = os.path.join(bindir, name)  # same basename as the real one: clients key flags on it
        self.argv_log = os.path.join(workdir, f"argv-{name}.log")
        self.root = os.path.join(workdir, f"state-{name}")
        write_wrapper(self.binary, real, self.argv_log)

    def calls(self, cid=None):
        """Logged invocations (argv after the program name), those naming `cid` if given."""
        try:
            with open(self.argv_log) as f:
                lines = [line.split()[1:] for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [a for a in lines if cid is None or cid in a]

    def commands(self, cid):
        """The subcommands (create, start, exec, kill, delete, ...) called for `cid`, in order."""
        out = []
        for args in self.calls(cid):
            i = 0
            while i < len(args) and args[i].startswith("-"):
                i += 1 if "=" in args[i] or args[i] in ("--systemd-cgroup", "--debug") else 2
            if i < len(args):
                out.append(args[i])
        return out

    def __repr__(self):
        return self.name
