"""Resolve container paths inside the rootfs without ever leaving it (the CVE-2021-30465 defence).

Every mount target and device node is reached through an O_PATH fd obtained here, and the kernel is handed
`/proc/self/fd/N` instead of a path string a racing container process could swap for a symlink.
Resolution is done by openat2(RESOLVE_IN_ROOT) when the kernel has it; otherwise by a component walk that
treats every symlink as relative to the rootfs and clamps `..` at the root, exactly as RESOLVE_IN_ROOT does.
"""
import errno
from .. import fastos as os
import _stat as stat  # the C module behind `stat` (its S_* are these): one import less for init, ~0.1 ms

from ..errors import SyscallError
from . import syscalls

_O_PATH = os.O_PATH | os.O_CLOEXEC
_MAX_LINKS = 40                     # the kernel's MAXSYMLINKS
_CREATE_KINDS = (None, "dir", "file")


def fd_path(fd: int) -> str:
    """The magic-link path that names `fd`, for syscalls that only take paths (mount targets)."""
    return f"/proc/self/fd/{fd}"


def open_in_root(rootfs: str, path: str, *, create: str | None = None, mode: int = 0o755) -> int:
    """Open `path` (container view) inside `rootfs` as an O_PATH|O_CLOEXEC fd; the caller closes it.

    create: None (must exist), 'dir' (create missing components as dirs) or 'file' (missing parents as
    dirs, the last component as an empty file). `mode` is for the last component if it gets created; missing
    parents get 0755 (the umask applies to both).
    """
    if create not in _CREATE_KINDS:
        raise ValueError(f"open_in_root: create must be one of {_CREATE_KINDS}, not {create!r}")
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            return _openat2_in_root(root, path)
        except SyscallError as e:
            # ENOENT: something to create (or a dangling symlink the walk splices); ENOSYS/EPERM: no
            # openat2 (old kernel, seccomp); ELOOP on a /proc magic link: the walk treats it as a plain link.
            if e.err not in (errno.ENOENT, errno.ENOSYS, errno.EPERM, errno.ELOOP, errno.EXDEV):
                raise
            if e.err == errno.ENOENT and create is None:
                raise SyscallError("open", _where(rootfs, path), errno.ENOENT) from None
        return walk_in_root(root, path, create=create, mode=mode, rootfs=rootfs)
    finally:
        os.close(root)


def _openat2_in_root(root_fd: int, path: str) -> int:
    return syscalls.openat2(root_fd, _clean(path).lstrip("/") or ".", _O_PATH,
                            resolve=syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS)


def _clean(path: str) -> str:
    """Container paths may be relative (deprecated): they are relative to '/'."""
    return "/" + path.lstrip("/")


def _where(rootfs: str, path: str) -> str:
    return rootfs.rstrip("/") + _clean(path)


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def walk_in_root(root_fd: int, path: str, *, create: str | None = None, mode: int = 0o755,
                 rootfs: str = "") -> int:
    """The openat2-free resolver: one component at a time, each opened O_NOFOLLOW relative to its parent fd.

    Symlinks are read and spliced into the remaining components (absolute targets restart at the root);
    `..` pops the walk's own stack of directory fds, so it can never climb above `root_fd`, and never asks the
    kernel to resolve `..` (which a concurrent rename could turn into an escape).
    """
    try:
        return _walk(root_fd, path, create, mode)
    except SyscallError:
        raise
    except OSError as e:
        raise SyscallError("open", _where(rootfs, path), e.errno) from None


def _walk(root_fd: int, path: str, create: str | None, mode: int) -> int:
    todo = _components(path)
    stack = [os.dup(root_fd)]       # stack[0] is the root; stack[-1] the directory being walked
    links = 0
    try:
        while todo:
            name = todo.pop(0)
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            st = _lstat_or_create(stack[-1], name, create, not todo, mode)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many symlinks")
                target = os.readlink(name, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo[:0] = _components(target)
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, "not a directory")
            fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=stack[-1])
            stack.append(fd)
            after = os.fstat(fd)
            if (after.st_dev, after.st_ino) != (st.st_dev, st.st_ino):
                raise OSError(errno.EAGAIN, "changed during lookup")   # swapped under us: refuse
        return stack.pop() if len(stack) > 1 else os.dup(stack[0])
    finally:
        for fd in stack:
            os.close(fd)


def _lstat_or_create(dir_fd: int, name: str, create: str | None, last: bool, mode: int):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        if create is None:
            raise
    try:
        if last and create == "file":
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             mode, dir_fd=dir_fd))
        else:
            os.mkdir(name, mode if last else 0o755, dir_fd=dir_fd)
    except FileExistsError:
        pass                        # lost a race with another creator: use what is there now
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def resolved_path(fd: int) -> str:
    """The host path an fd from open_in_root points at (for messages and for drivers that need a string)."""
    return os.readlink(fd_path(fd))
