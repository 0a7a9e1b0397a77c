"""Typed errors. Raise with context once per layer; only the CLI prints (one line) and exits."""
import errno as _errno


class RuntimeErr(Exception):
    """Base of every error the CLI turns into one line and a non-zero exit."""


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
