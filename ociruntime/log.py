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

    def _line(self, level: str, msg: str, fields: dict | None) -> str:
        if self.fmt == "json":
            from .fastjson import dumps
            return dumps({"level": level, "msg": msg, "time": _now(), **(fields or {})})
        return f'time="{_now()}" level={level} msg="{msg}"' + "".join(
            f' {k}="{v}"' if " " in str(v) else f" {k}={v}" for k, v in (fields or {}).items())

    def _stderr(self, level: str, msg: str, plain: str, fields: dict | None = None):
        """What goes to stderr: our one plain line, or, with --log-format json and no --log, the JSON line runc
        writes there (its log goes to stderr then, in the format asked for; text stays our plain line)."""
        if self.fmt == "json" and not self.path:
            sys.stderr.write(self._line(level, msg, fields) + "\n")
        else:
            sys.stderr.write(plain)

    def _write(self, level: str, msg: str, fields: dict | None = None):
        if not self.path:
            return
        line = self._line(level, msg, fields)
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
                self._stderr("debug", msg, f"ociruntime: debug: {msg}\n")

    def info(self, msg: str):
        self._write("info", msg)

    def warn(self, msg: str):
        self._write("warning", msg)
        self._stderr("warning", msg, f"ociruntime: warning: {msg}\n")

    def error(self, msg: str):
        """The one line a failed command prints: stderr, and --log."""
        self._write("error", msg)
        self._stderr("error", msg, f"ociruntime: {msg}\n")

    def steps(self, who: str):
        """--debug's step trace of one process (create, init, start, exec, delete...): `step = log.steps("create")`,
        then `step("cgroups made")` after each step logs it with the time since the previous one, and
        `step.done()` the total. Without --debug it is a no-op: one call per step."""
        return Steps(self.step, who) if self.debug_on else NO_STEPS

    def step(self, who: str, name: str, ms: float, cpu_ms: float):
        msg = f"{who}: {name} ({ms:.2f} ms, CPU {cpu_ms:.2f} ms)"
        fields = {"process": who, "step": name, "ms": round(ms, 3), "cpu_ms": round(cpu_ms, 3)}
        self._write("debug", msg, fields)
        if not self.path:
            self._stderr("debug", msg, f"ociruntime: debug: {msg}\n", fields)


class Steps:
    """Times the steps of one process, wall and CPU (user+sys of this process); emit(who, step, ms, cpu_ms) writes
    each (Logger.step, or a forked child's notes to the parent)."""

    __slots__ = ("emit", "who", "start", "last")

    def __init__(self, emit, who: str):
        self.emit, self.who = emit, who
        self.start = self.last = (time.perf_counter(), time.process_time())

    def __call__(self, name: str):
        now = (time.perf_counter(), time.process_time())
        self.emit(self.who, name, (now[0] - self.last[0]) * 1000, (now[1] - self.last[1]) * 1000)
        self.last = now

    def forked(self):
        """In a child just forked: its CPU clock restarts at 0; the totals go on counting from the parent's."""
        cpu = self.last[1]
        self.start = (self.start[0], self.start[1] - cpu)
        self.last = (self.last[0], 0.0)

    def done(self, name: str = "done"):
        self.last = self.start
        self(f"{name}, total")


class _NoSteps:
    __slots__ = ()

    def __call__(self, name: str):
        pass

    def forked(self):
        pass

    def done(self, name: str = "done"):
        pass


NO_STEPS = _NoSteps()
