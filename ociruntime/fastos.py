"""`os` for the commands of the hot path, without `import os`.

Importing os costs ~1 ms of every CLI call here: it builds os.environ as a MutableMapping, which imports
_collections_abc. Every call os offers on Linux is posix's, re-exported; this module re-exports them too, adds
the few os.path helpers the hot path uses (`fastos.path.join`...) and getenv(). Anything else falls back to the real
os (or posixpath), imported only then, so `from . import fastos as os` is a drop-in for the modules that use it.
"""
import posix
from posix import *  # noqa: F401,F403 — the functions os re-exports on Linux
from posix import _exit  # noqa: F401 — not part of *

del environ  # noqa: F821 — posix.environ is bytes-keyed: use getenv(), or os.environ through the fallback

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
sep = "/"


def getenv(name: str, default: str | None = None) -> str | None:
    value = posix.environ.get(name.encode())
    return default if value is None else value.decode(errors="surrogateescape")


def write_file(path: str, data: bytes, flags: int = 0) -> None:
    """One write(2) to an existing file (proc, sys, cgroup and resctrl files want exactly one); raises OSError, the
    caller names what it was writing. flags: extra open flags (O_NOFOLLOW, O_TRUNC)."""
    fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC | flags)
    try:
        posix.write(fd, data)
    finally:
        posix.close(fd)


def makedirs(name: str, mode: int = 0o777, exist_ok: bool = False) -> None:
    head = path.dirname(name.rstrip("/"))
    if head and head != name and not path.isdir(head):
        makedirs(head, exist_ok=True)
    try:
        posix.mkdir(name, mode)
    except FileExistsError:
        if not exist_ok or not path.isdir(name):
            raise


class _PathFallback(type):
    def __getattr__(cls, name):
        import posixpath
        return getattr(posixpath, name)


class path(metaclass=_PathFallback):
    """The os.path functions of the hot path (posixpath semantics); others come from posixpath itself."""

    @staticmethod
    def join(a: str, *parts: str) -> str:
        out = a
        for p in parts:
            if p.startswith("/"):
                out = p
            elif not out or out.endswith("/"):
                out += p
            else:
                out += "/" + p
        return out

    @staticmethod
    def exists(p) -> bool:
        try:
            posix.stat(p)
        except (OSError, ValueError):
            return False
        return True

    @staticmethod
    def isdir(p) -> bool:
        try:
            return posix.stat(p).st_mode & 0o170000 == 0o040000
        except (OSError, ValueError):
            return False

    @staticmethod
    def isfile(p) -> bool:
        try:
            return posix.stat(p).st_mode & 0o170000 == 0o100000
        except (OSError, ValueError):
            return False

    @staticmethod
    def isabs(p: str) -> bool:
        return p.startswith("/")

    @staticmethod
    def split(p: str) -> tuple[str, str]:
        i = p.rfind("/") + 1
        head, tail = p[:i], p[i:]
        return (head.rstrip("/") or head), tail

    @staticmethod
    def dirname(p: str) -> str:
        i = p.rfind("/") + 1
        head = p[:i]
        return head.rstrip("/") or head

    @staticmethod
    def basename(p: str) -> str:
        return p[p.rfind("/") + 1:]

    @staticmethod
    def normpath(p: str) -> str:
        if not p:
            return "."
        lead = "//" if p.startswith("//") and not p.startswith("///") else "/" if p.startswith("/") else ""
        out = []
        for c in p.split("/"):
            if c in ("", "."):
                continue
            if c != ".." or (not lead and not out) or (out and out[-1] == ".."):
                out.append(c)
            elif out:
                out.pop()
        return (lead + "/".join(out)) or "."

    @staticmethod
    def abspath(p: str) -> str:
        return path.normpath(p if p.startswith("/") else path.join(posix.getcwd(), p))


def __getattr__(name):
    """Whatever else os offers, from os itself (imported on first use). Not dunders: `from .fastos import x` asks
    for __path__, and answering from os would import it (~1.8 ms) for nothing."""
    if name.startswith("__"):
        raise AttributeError(name)
    import os
    return getattr(os, name)
