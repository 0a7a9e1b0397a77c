"""A criu that works on this machine, for the checkpoint/restore checks (spec-tests and conformance).

Looked for in order: $OCIRUNTIME_CRIU, `criu` on PATH, ../shared/tools/criu/criu (this project's sandbox; absent
in a clean clone). The first whose `criu check` passes wins; Debian 12's criu 3.17 fails it on kernels >= 6.13.
"""
import os
import shutil
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def candidates():
    if os.environ.get("OCIRUNTIME_CRIU"):
        yield os.environ["OCIRUNTIME_CRIU"]
    if shutil.which("criu"):
        yield shutil.which("criu")
    yield os.path.join(REPO, "..", "shared", "tools", "criu", "criu")


def forget_kdat_tmp():
    """criu leaves an empty /run/criu.kdat.tmp where /run is no tmpfs (its README): not ours to leave."""
    try:
        os.unlink("/run/criu.kdat.tmp")
    except OSError:
        pass


def working_criu() -> tuple[str | None, str]:
    """(absolute path of a criu whose `criu check` passes, "") or (None, why not, for a skip message)."""
    why = []
    for c in candidates():
        if not os.access(c, os.X_OK):
            why.append(f"{c}: absent")
            continue
        p = subprocess.run([c, "check"], capture_output=True, text=True, timeout=60)
        forget_kdat_tmp()
        if p.returncode == 0:
            return os.path.abspath(c), ""
        last = (p.stderr.strip().splitlines() or p.stdout.strip().splitlines() or ["?"])[-1]
        why.append(f"{c}: `criu check` fails: {last}")
    return None, "no working criu (set OCIRUNTIME_CRIU=PATH): " + "; ".join(why)


# a shell loop counting in /count, 10 a second: a restored copy goes on from the checkpointed value
COUNTER = ("sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; done")


class Counter:
    """Reads COUNTER's value through `cat_count()` (a client's exec of `cat /count`, returning (rc, stdout))."""

    def __init__(self, cat_count):
        self.cat = cat_count

    def __call__(self) -> int:
        """The value; 0 when the exec fails. Retried while the file reads empty (the loop truncates it)."""
        for _ in range(10):
            rc, out = self.cat()
            if rc:
                return 0
            if out.strip():
                return int(out)
        return 0

    def wait(self, at_least: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        n = self()
        while n < at_least and time.monotonic() < deadline:
            time.sleep(0.2)
            n = self()
        return n
