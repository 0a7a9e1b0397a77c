"""The root filesystem's own steps: propagation, the self-bind, pivot_root, masked/readonly paths, read-only root
and the console bind. Runs in the container's init inside its new mount namespace; the order is init.py's.
"""
import errno
from .. import fastos as os
import _stat as stat  # the C module behind `stat` (its S_* are these): one import less for init, ~0.1 ms

from ..errors import ConfigError, SyscallError
from . import syscalls as sc
from .mounts import mount_flags_of
from .paths import fd_path, open_in_root

# linux.rootfsPropagation -> flags for "/" (recursive: every mount the new namespace copied gets it). runc's
# r-prefixed spellings are accepted too. None (unset) means rslave: host mounts still reach the container, nothing
# the container mounts reaches the host.
PROPAGATION = {
    None: sc.MS_SLAVE | sc.MS_REC,
    "slave": sc.MS_SLAVE | sc.MS_REC, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "private": sc.MS_PRIVATE | sc.MS_REC, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED | sc.MS_REC, "rshared": sc.MS_SHARED | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE | sc.MS_REC, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# propagations pivot_root / the rootfs self-bind cannot live with: prepare() makes the rootfs's parent mount
# private so they work, and finish_propagation() puts the configured value on the new "/" afterwards
_REAPPLY = frozenset({"shared", "rshared", "unbindable", "runbindable"})
# an unbindable tree refuses every bind from it (EINVAL: runc fails so): until finish_propagation, the last mount
# step, the container's mounts are only private
_LATER = frozenset({"unbindable", "runbindable"})
# flags kept when a read-only remount must not drop what the mount has (locked in a user namespace)
_KEEP = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME | sc.MS_NODIRATIME | sc.MS_RELATIME \
    | sc.MS_STRICTATIME | sc.MS_NOSYMFOLLOW


def _flags(propagation: str | None) -> int:
    try:
        return PROPAGATION[propagation or None]
    except KeyError:
        raise ConfigError("linux.rootfsPropagation", f"unknown value {propagation!r}") from None


def prepare(rootfs: str, propagation: str | None) -> None:
    """Set "/"'s propagation, then bind the rootfs onto itself so that it is a mount point (pivot_root needs one)."""
    flags = _flags(propagation)
    sc.mount(None, "/", None, sc.MS_PRIVATE | sc.MS_REC if propagation in _LATER else flags)
    if propagation in _REAPPLY:
        # a shared parent breaks pivot_root (EINVAL) and an unbindable one refuses the self-bind below
        parent = mountpoint_of(rootfs)
        sc.mount(None, parent, None, sc.MS_PRIVATE)
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)


def prepare_without_mount_ns(rootfs: str) -> None:
    """No mount namespace: the container's mounts are made in the runtime's (config-linux.md: it MUST inherit
    it). The rootfs is bound onto itself and made private, so the container's mounts hang below one mount that
    does not pass them on and that `delete` detaches (runc 1.1.5 leaves them all on the host). Unlike runc, the
    propagation of the runtime's "/" is left alone (runc makes the host's / rslave)."""
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    sc.mount(None, rootfs, None, sc.MS_PRIVATE | sc.MS_REC)


def top_mount_id(path: str) -> int | None:
    """The id of the topmost mount on `path` in this mount namespace; None when `path` is no mount point."""
    path = os.path.realpath(path)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if _unescape(fields[4]) == path:
                found = int(fields[0])
    return found


def detach_host_mount(path: str, mount_id: int) -> None:
    """Detach the rootfs self-bind prepare_without_mount_ns made (and every container mount below it), if it is
    still the topmost mount there."""
    if top_mount_id(path) == mount_id:
        sc.umount2(os.path.realpath(path), sc.MNT_DETACH)


def detach_above(path: str, before: int | None) -> None:
    """Detach the topmost mount on `path` unless it is `before`, the one that was there before create's init ran
    (a failed or killed create: the self-bind of prepare_without_mount_ns, with the container's mounts below it)."""
    now = top_mount_id(path)
    if now is not None and now != before:
        sc.umount2(os.path.realpath(path), sc.MNT_DETACH)


def mountpoint_of(path: str) -> str:
    """The mount point of the mount that contains `path` (longest matching mountinfo entry)."""
    path = os.path.realpath(path)
    best = "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = _unescape(line.split()[4])
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best = mnt
    return best


def _unescape(field: str) -> str:
    """mountinfo octal-escapes space, tab, newline and backslash."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def pivot(rootfs: str, no_pivot: bool = False, chroot_only: bool = False) -> None:
    """Make `rootfs` the root: pivot_root(".", ".") stacks the old root on top of the new one, and a lazy unmount
    of "." (the old root, once we fchdir into it) removes it. With no_pivot (ramfs roots): MS_MOVE + chroot.
    chroot_only (no mount namespace: the runtime's root must stay where it is): chroot alone, as runc."""
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new_root)
        if chroot_only:
            os.chroot(".")
        elif no_pivot:
            _hide_host_proc_and_sys(rootfs)
            sc.mount(rootfs, "/", None, sc.MS_MOVE)
            os.chroot(".")
        else:
            old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                try:
                    sc.pivot_root(".", ".")
                except SyscallError as e:
                    raise SyscallError("pivot_root", rootfs, e.err) from None
                os.fchdir(old_root)           # cwd is now the old root, mounted on top of "/"
                # rslave first so the unmount below cannot propagate to the host through a shared peer
                sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
                sc.umount2(".", sc.MNT_DETACH)
            finally:
                os.close(old_root)
    finally:
        os.close(new_root)
    os.chdir("/")


def _hide_host_proc_and_sys(rootfs: str) -> None:
    """--no-pivot keeps the host's mounts under the chroot in the container's mount namespace. A full procfs or
    sysfs among them lets a user namespace made inside mount a fresh proc (the kernel's mnt_already_visible test),
    so, as runc's no-pivot path does, each one outside the rootfs is unmounted (made a slave first: nothing
    propagates to the host), or covered with an empty tmpfs where the unmount is refused."""
    root = os.path.realpath(rootfs).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            mnt = _unescape(fields[4])
            if fstype in ("proc", "sysfs") and fields[3] == "/" and mnt != root and not mnt.startswith(root + "/"):
                found.append(mnt)
    for mnt in reversed(found):      # deepest last in mountinfo: undo from the end
        try:
            sc.mount(None, mnt, None, sc.MS_SLAVE | sc.MS_REC)
        except SyscallError as e:
            if e.err in (errno.ENOENT, errno.EINVAL):
                continue             # gone with a parent unmounted before it
            raise
        try:
            sc.umount2(mnt, sc.MNT_DETACH)
        except SyscallError as e:
            if e.err not in (errno.EINVAL, errno.EPERM):
                raise
            _mount("tmpfs", mnt, "tmpfs", 0, None, where=mnt)


def make_cwd(cwd: str) -> None:
    """After pivot: a process.cwd that does not exist is created, 0755 whatever the umask (runc's MkdirAll), every
    component resolved inside the new root (a symlink in the image cannot make us create on the host)."""
    try:
        os.stat(cwd)
        return
    except FileNotFoundError:
        pass
    except OSError:
        return                        # not ours to judge: the chdir of step 24 reports it
    old = os.umask(0)
    try:
        os.close(open_in_root("/", cwd, create="dir"))
    except SyscallError as e:
        raise SyscallError("mkdir", f"process.cwd {cwd}", e.err) from None
    finally:
        os.umask(old)


def reopen_dev_null() -> None:
    """After pivot: stdio that is the host's /dev/null becomes the container's own /dev/null (runc's
    reOpenDevNull). The same device, but a file of the container's mounts: criu can checkpoint it."""
    try:
        null = os.stat("/dev/null")
    except OSError:
        return
    if not stat.S_ISCHR(null.st_mode):
        return
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        # even the same inode: in a user namespace /dev/null is a bind of the host's, and the fd must be on
        # the container's mount of it, not the host's /dev
        if st.st_rdev == null.st_rdev and stat.S_ISCHR(st.st_mode):
            new = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            try:
                os.dup2(new, fd)
            finally:
                os.close(new)


def finish_propagation(propagation: str | None) -> None:
    """After pivot and every mount of ours (masks, readonly paths, console binds: an unbindable "/" would refuse
    them): the configured rootfsPropagation on the new "/" and everything under it. Unset: rslave, from prepare()."""
    if propagation:
        sc.mount(None, "/", None, _flags(propagation))


def mask_paths(paths, *, mount_label: str | None = None) -> None:
    """After pivot: hide each path. Files get /dev/null bound over them, directories a read-only empty tmpfs."""
    data = f'context="{mount_label}"' if mount_label and os.path.exists("/sys/fs/selinux/enforce") else None
    for p in paths:
        fd = _open_existing(p)
        if fd is None:
            continue
        try:
            target = _target(fd, p)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                _mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, data, where=p)
            else:
                _mount("/dev/null", target, None, sc.MS_BIND, None, where=p)
        finally:
            os.close(fd)


def readonly_paths(paths) -> None:
    """After pivot: bind each path onto itself and remount that bind read-only, keeping its other flags."""
    for p in paths:
        fd = _open_existing(p)
        if fd is None:
            continue
        try:
            _mount(_target(fd, p), _target(fd, p), None, sc.MS_BIND | sc.MS_REC, None, where=p)
        finally:
            os.close(fd)
        fd = open_in_root("/", p)               # reopen: now on the new bind, not the mount underneath
        try:
            _remount_ro(_target(fd, p), p)
        finally:
            os.close(fd)


def remount_root_readonly() -> None:
    """After pivot (and after masks/readonly paths, which need a writable root to create nothing): "/" read-only."""
    _remount_ro("/", "/")


def remount_dev_readonly() -> None:
    """After pivot, once /dev is populated (devices, links, console): a /dev mount with `ro` turns read-only."""
    _remount_ro("/dev", "/dev")


def bind_console(pty_slave_path: str) -> None:
    """After pivot: /dev/console as an empty file with the pty slave bound on it."""
    fd = open_in_root("/", "/dev/console", create="file", mode=0o600)
    try:
        _mount(pty_slave_path, _target(fd, "/dev/console"), None, sc.MS_BIND, None, where="/dev/console")
    finally:
        os.close(fd)


def _remount_ro(path: str, where: str) -> None:
    flags = sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | (mount_flags_of(path) & _KEEP)
    _mount(None, path, None, flags, None, where=where, call="remount")


def _target(fd: int, path: str) -> str:
    """The fd's magic link when the container has a /proc; else the path itself, which after pivot_root can only
    resolve inside the container (the host is no longer reachable), so no escape is possible."""
    return fd_path(fd) if os.path.isdir("/proc/self/fd") else path


def _open_existing(path: str) -> int | None:
    try:
        return open_in_root("/", path)
    except SyscallError as e:
        if e.err == errno.ENOENT:
            return None                          # the spec's lists name paths many images lack
        raise


def _mount(source, target, fstype, flags, data, *, where: str, call: str = "mount") -> None:
    try:
        sc.mount(source, target, fstype, flags, data)
    except SyscallError as e:
        desc = f"{source} -> {where}" if source and not source.startswith("/proc/self/fd/") else where
        raise SyscallError(call, desc, e.err) from None
