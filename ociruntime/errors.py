"""Typed errors. Raise with context once per layer; only the CLI prints (one line) and exits."""
import errno as _errno
import posix as _posix


class RuntimeErr(Exception):
    """Base of every error the CLI turns into one line and a non-zero exit."""


class HookError(RuntimeErr):
    """A hook failed (linux/hooks.py). Here, not there: `start` tells a failed poststart hook apart without importing
    the hooks module (subprocess) on every call."""


class ConfigError(RuntimeErr):
    """config.json breaks a rule: `path` is the JSON path (e.g. linux.namespaces[2].type)."""

    def __init__(self, path: str, rule: str):
        self.path, self.rule = path, rule
        super().__init__(f"config.json: {path}: {rule}" if path else f"config.json: {rule}")


class StateError(RuntimeErr):
    """The container's state forbids the operation, or the id is unknown/in use."""


class SyscallError(RuntimeErr, OSError):
    """A system call failed: names the call, its target and the errno (`mount /proc -> /x: EPERM`)."""

    def __init__(self, call: str, target: str, err: int):
        OSError.__init__(self, err, _errno.errorcode.get(err, str(err)))
        self.call, self.target, self.err = call, target, err
        self.msg = f"{call} {target}: {_errno.errorcode.get(err, 'errno %d' % err)}" if target \
            else f"{call}: {_errno.errorcode.get(err, 'errno %d' % err)}"

    def __str__(self):
        return self.msg


class InitError(RuntimeErr):
    """An error raised in the container's init process, carried back to `create`."""


INTERNAL = "internal error: "


def describe(e: BaseException) -> str:
    """One line for any exception: the text of the runtime's own and the OS's errors; anything else is a bug,
    `internal error: <type>: <text>` (the CLI prefixes the command; the traceback is for --debug only)."""
    if isinstance(e, (RuntimeErr, OSError)):
        return " ".join((str(e) or type(e).__name__).split("\n"))
    return INTERNAL + " ".join(f"{type(e).__name__}: {e}".split("\n"))


# Test-only fault injection at named steps of create, start, delete, exec and restore (spec-tests/
# test_crash_injection.py, test_hostile_input.py). Here rather than in a module of its own: every command imports this
# one already, so the points cost the hot path one comparison each and no module load.
#     OCIRUNTIME_TEST_FAULT=<point>          SIGKILL this process when it reaches <point> (a crash, no cleanup)
#     OCIRUNTIME_TEST_FAULT=<point>:raise    raise an unexpected exception there (the "internal error" path)
_FAULT = _posix.environ.get(b"OCIRUNTIME_TEST_FAULT")
_FAULT = _FAULT.decode() if _FAULT is not None else None


class InjectedFault(Exception):
    """Deliberately not a RuntimeErr: it stands for a bug."""


def fault(name: str) -> None:
    if _FAULT is None:
        return
    if _FAULT == name + ":raise":
        raise InjectedFault(f"injected fault at {name}")
    if _FAULT == name:
        _posix.kill(_posix.getpid(), 9)
