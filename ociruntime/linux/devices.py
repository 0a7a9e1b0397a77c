"""/dev inside the rootfs: the default device nodes, linux.devices, and the standard symlinks.

Runs in the container's init before pivot_root. Nodes are made with mknod; in a user namespace (where mknod of
real devices is refused) or when mknod says EPERM, the host's node is bind-mounted onto an empty file instead, as
runc does. /dev/console is not made here: the console step binds the pty slave onto it.
"""
import errno
from .. import fastos as os
import _stat as stat  # the C module behind `stat` (its S_* are these): one import less for init, ~0.1 ms

from ..errors import SyscallError
from . import syscalls as sc
from .paths import fd_path, open_in_root

from ..config.model import Device

# path -> (type, major, minor): every container gets these, with mode 0666 owned by root (runtime-spec "Default
# Devices"); a linux.devices entry with the same path replaces the default.
DEFAULT_DEVICES = {
    "/dev/null": ("c", 1, 3),
    "/dev/zero": ("c", 1, 5),
    "/dev/full": ("c", 1, 7),
    "/dev/random": ("c", 1, 8),
    "/dev/urandom": ("c", 1, 9),
    "/dev/tty": ("c", 5, 0),
}
DEFAULT_MODE = 0o666

# Device.type -> file type bits for mknod ("u" is an unbuffered character device, the same node)
NODE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}

# link name -> target, always made (an existing entry is left alone)
SYMLINKS = {
    "/dev/fd": "/proc/self/fd",
    "/dev/stdin": "/proc/self/fd/0",
    "/dev/stdout": "/proc/self/fd/1",
    "/dev/stderr": "/proc/self/fd/2",
}
# link name -> (target, host path that must exist for the link to make sense)
CONDITIONAL_SYMLINKS = {"/dev/core": ("/proc/kcore", "/proc/kcore")}


def all_devices(devices) -> list:
    """The defaults, each replaced by a linux.devices entry of the same path, then the other configured ones."""
    configured = {os.path.normpath(d.path): d for d in devices}
    out = [configured.pop(p, None) or _default(p) for p in DEFAULT_DEVICES]
    return out + [d for d in devices if os.path.normpath(d.path) in configured]


def _default(path):
    kind, major, minor = DEFAULT_DEVICES[path]
    return Device(path=path, type=kind, major=major, minor=minor, file_mode=DEFAULT_MODE, uid=0, gid=0)


def setup_dev(rootfs: str, devices, *, in_userns: bool, dev_is_mounted: bool) -> None:
    """Create the device nodes and /dev symlinks inside `rootfs`.

    in_userns: bind host nodes instead of trying mknod. dev_is_mounted: mounts[] put a fresh filesystem on /dev
    (the usual tmpfs); when false, /dev is the image's own directory and nodes already there are left as they are.
    """
    for dev in all_devices(devices):
        create_device(rootfs, dev, bind=in_userns, replace=dev_is_mounted)
    _symlinks(rootfs)


def create_device(rootfs: str, dev, *, bind: bool = False, replace: bool = True) -> None:
    """One node at dev.path (container view): mknod + chmod + chown, or a bind of the host node."""
    if dev.type not in NODE_TYPES:
        raise SyscallError("mknod", f"{rootfs}{dev.path}: unknown device type {dev.type!r}", errno.EINVAL)
    path = "/" + dev.path.strip("/")              # runc cleans the path: "/mnt/" is the node /mnt
    parent, name = os.path.split(path)
    where = f"{rootfs.rstrip('/')}{parent.rstrip('/')}/{name}"
    dfd = open_in_root(rootfs, parent, create="dir")
    try:
        existing = _lstat(name, dfd)
        if existing is not None:
            if _is_node(existing, dev) or not replace:
                return
            _unlink(name, dfd, where)
        if not bind or dev.type == "p":            # a fifo is no device: mknod works in a user namespace too
            try:
                return _mknod(name, dfd, dev, where)
            except SyscallError as e:
                if e.err != errno.EPERM or dev.type == "p":
                    raise
        _bind_host_node(rootfs, path, where)
    finally:
        os.close(dfd)


def _mknod(name, dfd, dev, where) -> None:
    mode = DEFAULT_MODE if dev.file_mode is None else dev.file_mode & 0o7777
    try:
        os.mknod(name, NODE_TYPES[dev.type] | mode, os.makedev(dev.major, dev.minor), dir_fd=dfd)
    except OSError as e:
        raise SyscallError("mknod", where, e.errno) from None
    # mknod honours the umask; set the exact mode and owner on the node itself (never through a symlink)
    node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    try:
        os.chmod(fd_path(node), mode)
        os.chown(fd_path(node), dev.uid or 0, dev.gid or 0)
    except OSError as e:
        raise SyscallError("chmod/chown", where, e.errno) from None
    finally:
        os.close(node)


def _bind_host_node(rootfs, host, where) -> None:
    target = open_in_root(rootfs, host, create="file", mode=0o600)
    try:
        sc.mount(host, fd_path(target), None, sc.MS_BIND)
    except SyscallError as e:
        raise SyscallError("mount", f"{host} -> {where}", e.err) from None
    finally:
        os.close(target)


def _is_node(st, dev) -> bool:
    return stat.S_IFMT(st.st_mode) == NODE_TYPES[dev.type] and \
        (dev.type == "p" or (os.major(st.st_rdev), os.minor(st.st_rdev)) == (dev.major, dev.minor))


def _lstat(name, dfd):
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _unlink(name, dfd, where) -> None:
    try:
        os.unlink(name, dir_fd=dfd)
    except IsADirectoryError:
        raise SyscallError("unlink", f"{where}: a directory is in the way", errno.EISDIR) from None
    except OSError as e:
        raise SyscallError("unlink", where, e.errno) from None


def _symlinks(rootfs: str) -> None:
    links = dict(SYMLINKS)
    links.update({k: t for k, (t, need) in CONDITIONAL_SYMLINKS.items() if os.path.exists(need)})
    if _pts_is_mounted(rootfs):
        links["/dev/ptmx"] = "pts/ptmx"      # the container's own devpts instance, not the host's ptmx
    dev = open_in_root(rootfs, "/dev", create="dir")
    try:
        for link, target in links.items():
            name = os.path.basename(link)
            if link == "/dev/ptmx":
                st = _lstat(name, dev)
                if st is not None and not stat.S_ISLNK(st.st_mode):
                    _unlink(name, dev, f"{rootfs}{link}")       # an image's ptmx node would be the host's
            try:
                os.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
            except OSError as e:
                raise SyscallError("symlink", f"{rootfs}{link}", e.errno) from None
    finally:
        os.close(dev)


def _pts_is_mounted(rootfs: str) -> bool:
    try:
        pts = open_in_root(rootfs, "/dev/pts")
    except SyscallError:
        return False
    try:
        return sc.statfs_type(fd_path(pts)) == sc.DEVPTS_SUPER_MAGIC
    finally:
        os.close(pts)
