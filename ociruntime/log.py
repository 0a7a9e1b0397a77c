"""Logging to --log as runc does: text lines or JSON lines {"level","msg","time"} (containerd's shim parses these)."""
from . import fastos as os
import sys
import time


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


class Logger:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False):
        self.path, self.fmt, self.debug_on = path, fmt, debug

    def create_file(self):
        """runc opens --log FILE (O_CREAT) before any command runs, so it exists even when nothing is logged:
        callers (containerd's shim) read it after a failure. A file that cannot be opened fails the command."""
        if self.path:
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644))
            except OSError as e:
                from .errors import SyscallError
                path, self.path = self.path, None
                raise SyscallError("open", path, e.errno) from None

    def _write(self, level: str, msg: str):
        if not self.path:
            return
        if self.fmt == "json":
            from .fastjson import dumps
            line = dumps({"level": level, "msg": msg, "time": _now()})
        else:
            line = f'time="{_now()}" level={level} msg="{msg}"'
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass

    def debug(self, msg: str):
        if self.debug_on:
            self._write("debug", msg)
            if not self.path:
                sys.stderr.write(f"ociruntime: debug: {msg}\n")

    def info(self, msg: str):
        self._write("info", msg)

    def warn(self, msg: str):
        self._write("warning", msg)
        sys.stderr.write(f"ociruntime: warning: {msg}\n")

    def error(self, msg: str):
        """The one line a failed command prints: stderr, and --log."""
        self._write("error", msg)
        sys.stderr.write(f"ociruntime: {msg}\n")
