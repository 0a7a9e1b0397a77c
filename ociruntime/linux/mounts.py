"""config.json `mounts[]`: option parsing (a table, not an if-chain) and mounting each entry into the rootfs.

Runs in the container's init, inside its new mount namespace, before pivot_root. Every target is reached through
an O_PATH fd from paths.open_in_root, so a symlink planted in the rootfs can never redirect a mount to the host.
"""
import errno
from .. import fastos as os
import _stat as stat  # the C module behind `stat` (its S_* are these): one import less for init, ~0.1 ms
from ..record import record, replace

from ..errors import ConfigError, SyscallError
from . import syscalls as sc
from .paths import fd_path, open_in_root, resolved_path

# --- the option table --------------------------------------------------------------------------------------------
# name -> (clears?, MS_* flag). "Clears" options remove the flag and remember it was asked for, so a bind remount
# drops it even when the source mount has it.
FLAGS = {
    "defaults": (False, 0),
    "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID), "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV), "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC), "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS), "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "noatime": (False, sc.MS_NOATIME), "atime": (True, sc.MS_NOATIME),
    "nodiratime": (False, sc.MS_NODIRATIME), "diratime": (True, sc.MS_NODIRATIME),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "iversion": (False, sc.MS_I_VERSION), "noiversion": (True, sc.MS_I_VERSION),
    "silent": (False, sc.MS_SILENT), "loud": (True, sc.MS_SILENT),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW), "symfollow": (True, sc.MS_NOSYMFOLLOW),
}

# name -> MS_BIND plus MS_REC for the recursive one
BINDS = {"bind": sc.MS_BIND, "rbind": sc.MS_BIND | sc.MS_REC}

# name -> propagation flags for a separate mount(2) call
PROPAGATION = {
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# name -> (attr_clr, attr_set) for mount_setattr(AT_RECURSIVE). The atime modes are an enum, not bits: the kernel
# wants MOUNT_ATTR__ATIME cleared and exactly one mode set, so "ratime"/"rnostrictatime" (the defaults back) mean
# relatime and "rnorelatime" (neither relatime nor noatime) means strictatime.
_ATIME = sc.MOUNT_ATTR__ATIME
RECURSIVE = {
    "rro": (0, sc.MOUNT_ATTR_RDONLY), "rrw": (sc.MOUNT_ATTR_RDONLY, 0),
    "rnosuid": (0, sc.MOUNT_ATTR_NOSUID), "rsuid": (sc.MOUNT_ATTR_NOSUID, 0),
    "rnodev": (0, sc.MOUNT_ATTR_NODEV), "rdev": (sc.MOUNT_ATTR_NODEV, 0),
    "rnoexec": (0, sc.MOUNT_ATTR_NOEXEC), "rexec": (sc.MOUNT_ATTR_NOEXEC, 0),
    "rnodiratime": (0, sc.MOUNT_ATTR_NODIRATIME), "rdiratime": (sc.MOUNT_ATTR_NODIRATIME, 0),
    "rnosymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rrelatime": (_ATIME, sc.MOUNT_ATTR_RELATIME), "rnorelatime": (_ATIME, sc.MOUNT_ATTR_STRICTATIME),
    "rnoatime": (_ATIME, sc.MOUNT_ATTR_NOATIME), "ratime": (_ATIME, sc.MOUNT_ATTR_RELATIME),
    "rstrictatime": (_ATIME, sc.MOUNT_ATTR_STRICTATIME), "rnostrictatime": (_ATIME, sc.MOUNT_ATTR_RELATIME),
}

# options that are ours, never the kernel's: name -> MountOptions field set to True
EXTENSIONS = {"idmap": "idmap", "ridmap": "recursive_idmap", "tmpcopyup": "tmpcopyup"}

_ATIME_FLAGS = sc.MS_NOATIME | sc.MS_RELATIME | sc.MS_STRICTATIME
# per-mount flags a bind remount may change; the ones the kernel locks when a less privileged mount namespace is
# made (MNT_LOCK_*) are the same set minus nosymfollow
_PER_MOUNT = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NODIRATIME | sc.MS_NOSYMFOLLOW \
    | _ATIME_FLAGS
_LOCKABLE = _PER_MOUNT & ~sc.MS_NOSYMFOLLOW
# statvfs f_flag (ST_*) -> MS_*: the two tables differ for relatime and nosymfollow
_ST_TO_MS = {1: sc.MS_RDONLY, 2: sc.MS_NOSUID, 4: sc.MS_NODEV, 8: sc.MS_NOEXEC, 1024: sc.MS_NOATIME,
             2048: sc.MS_NODIRATIME, 4096: sc.MS_RELATIME, 8192: sc.MS_NOSYMFOLLOW}


@record
class MountOptions:
    flags: int = 0                  # MS_* to set on mount (or bind remount)
    clear_flags: int = 0            # MS_* the options explicitly turn off (rw, suid, dev, exec, atime, ...)
    propagation: tuple = ()         # MS_* values, one mount(2) call each, in the order given
    attr_set: int = 0               # MOUNT_ATTR_* for mount_setattr(AT_RECURSIVE)
    attr_clr: int = 0
    data: str = ""                  # filesystem-specific options, comma-joined, for mount(2)'s data
    is_bind: bool = False
    is_recursive_bind: bool = False
    idmap: bool = False             # idmap or ridmap given
    recursive_idmap: bool = False
    tmpcopyup: bool = False         # a tmpfs starts with a copy of the directory it covers (runc)

    @property
    def touches_atime(self) -> bool:
        return bool((self.flags | self.clear_flags) & _ATIME_FLAGS)


def parse_options(options) -> MountOptions:
    """Turn a mount's option strings into flags; later options win over earlier ones (as mount(8) does)."""
    flags = clear = attr_set = attr_clr = bind = 0
    propagation, data, ext = [], [], {}
    for opt in options:
        if opt in FLAGS:
            clears, flag = FLAGS[opt]
            flags, clear = (flags & ~flag, clear | flag) if clears else (flags | flag, clear & ~flag)
        elif opt in BINDS:
            bind |= BINDS[opt]
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            c, s = RECURSIVE[opt]
            if c & _ATIME:
                attr_set = (attr_set & ~_ATIME) | s
                attr_clr |= _ATIME
            else:
                attr_set, attr_clr = (attr_set | s) & ~c, (attr_clr | c) & ~s
        elif opt in EXTENSIONS:
            ext[EXTENSIONS[opt]] = True
        else:
            data.append(opt)
    if ext.get("recursive_idmap"):
        ext["idmap"] = True
    return MountOptions(flags=flags, clear_flags=clear, propagation=tuple(propagation), attr_set=attr_set,
                        attr_clr=attr_clr, data=",".join(data), is_bind=bool(bind),
                        is_recursive_bind=bool(bind & sc.MS_REC), **ext)


# --- mounting ----------------------------------------------------------------------------------------------------
def mount_all(rootfs: str, mounts, *, bundle: str, mount_label: str | None = None, cgroup_mount=None,
              debug=None, source_fds=None) -> None:
    """Mount every `mounts[]` entry into `rootfs`, in order (the spec requires the listed order). debug(msg): a
    line for --debug. source_fds: {index: O_PATH fd} of bind sources opened with the host's rights in a
    user-namespaced container's mount namespace (open_bind_sources)."""
    for i, m in enumerate(mounts):
        mount_one(rootfs, m, bundle=bundle, mount_label=mount_label, cgroup_mount=cgroup_mount, index=i, debug=debug,
                  source_fd=(source_fds or {}).get(i))


def open_bind_sources(mounts, bundle: str, userns_pid: int | None = None) -> dict:
    """{index: O_PATH fd of the source} for every bind source, opened by the runtime (host rights) after it joined
    the container's mount namespace (launch.py, on FDS): its root may not search the directories above a source,
    and a mount namespace made with a user namespace holds locked copies of the host's mounts (ro, nosuid, nodev,
    noexec, atime, submounts), which a bind of the fd keeps (runc 1.1's mount fds). A clone made in the host's
    namespace would not be locked. A source that does not open now (made later by a hook, say) is left to its path.

    An idmapped bind gets a detached tree already idmapped instead (userns_pid: the container's init): its maps
    name host ids, which only a process of the host's user namespace can write, and the container's root cannot
    idmap a host filesystem either (CAP_SYS_ADMIN over its superblock). Where that fails, nothing is sent."""
    fds = {}
    for i, m in enumerate(mounts):
        opts = _with_mount_mappings(parse_options(m.options), m)
        if m.source and (m.type == "bind" or opts.is_bind):
            path = os.path.join(bundle, m.source)
            try:
                fds[i] = _idmapped_tree(path, opts, m, path, i, userns_pid) if opts.idmap else \
                    os.open(path, os.O_PATH | os.O_CLOEXEC)
            except (OSError, SyscallError, ConfigError):
                pass
    return fds


def _with_mount_mappings(opts, m):
    """uidMappings/gidMappings make the mount idmapped even without the idmap option (config.md: they are the
    mount's mapping, the option only a SHOULD; runc 1.2 idmaps such a mount, non-recursively unless ridmap, and
    youki's idmap tests, a port of runc's idmap.bats, give most mounts no idmap option)."""
    if (m.uid_mappings or m.gid_mappings) and not opts.idmap:
        return replace(opts, idmap=True)
    return opts


def _idmapped_tree(source, opts, m, where, index, userns_pid=None) -> int:
    """A detached clone of the bind source, idmapped (the kernel idmaps only detached mounts): an fd of it."""
    tree = _call("open_tree", source, sc.open_tree, sc.AT_FDCWD, source,
                 sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | (sc.AT_RECURSIVE if opts.is_recursive_bind else 0))
    try:
        _give_idmap(tree, opts, m, where, index, userns_pid)
    except BaseException:
        os.close(tree)
        raise
    return tree


def mount_one(rootfs: str, m, *, bundle: str, mount_label: str | None = None, cgroup_mount=None,
              index: int = 0, debug=None, source_fd=None) -> None:
    opts = _with_mount_mappings(parse_options(m.options), m)
    dest = "/" + m.destination.lstrip("/")
    where = f"{rootfs.rstrip('/')}{dest}"
    if opts.flags & sc.MS_RDONLY and os.path.normpath(dest) == "/dev":
        # devices, links and the console are made in it first: rootfs.remount_dev_readonly() at the end (runc)
        opts = replace(opts, flags=opts.flags & ~sc.MS_RDONLY)
    if m.type == "cgroup" and not opts.is_bind:
        return _mount_cgroup(rootfs, dest, where, opts, cgroup_mount)
    if opts.is_bind or m.type == "bind":
        target = _bind(rootfs, m, dest, where, opts, bundle, index, source_fd)
    else:
        target = _mount_fs(rootfs, m, dest, where, opts, mount_label, index)
    try:
        _propagate_and_setattr(target, opts, where)
    finally:
        os.close(target)


def dev_is_readonly(mounts) -> bool:
    """The last mounts[] entry on /dev asks for ro (it was mounted writable: mount_one)."""
    ro = False
    for m in mounts:
        if os.path.normpath("/" + m.destination.lstrip("/")) == "/dev":
            ro = bool(parse_options(m.options).flags & sc.MS_RDONLY)
    return ro


def _bind(rootfs, m, dest, where, opts, bundle, index, source_fd=None) -> int:
    """Bind `source` on dest; returns an fd on the new mount. Flags need a second MS_REMOUNT|MS_BIND call.
    source_fd: an O_PATH fd of the source opened beforehand (open_bind_sources), bound instead of the path."""
    if not m.source:
        raise ConfigError(f"mounts[{index}].source", "a bind mount needs a source")
    source = m.source if os.path.isabs(m.source) else os.path.join(bundle, m.source)
    path = source if source_fd is None else fd_path(source_fd)   # an fd: bound through its magic link
    try:
        kind = "dir" if stat.S_ISDIR(os.stat(path).st_mode) else "file"
    except OSError as e:
        raise SyscallError("stat", f"bind source {source}", e.errno) from None
    _check_proc_destination(dest, path, m.type, index)
    fd = open_in_root(rootfs, dest, create=kind)
    try:
        if opts.idmap and source_fd is not None:      # idmapped by the runtime already (open_bind_sources)
            _move_tree(source_fd, fd, where)
        elif opts.idmap:
            _idmapped_bind(path, fd, opts, m, where, index)
        else:
            _call("mount", f"{source} -> {where}", sc.mount, path, fd_path(fd), None,
                  sc.MS_BIND | (sc.MS_REC if opts.is_recursive_bind else 0))
    finally:
        os.close(fd)
    target = open_in_root(rootfs, dest)      # reopen: the fd from before the mount sees what is underneath
    if (opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)) or opts.clear_flags:
        try:
            remount_bind(target, opts.flags, opts.clear_flags, touches_atime=opts.touches_atime, where=where)
        except BaseException:
            os.close(target)
            raise
    return target


def _mount_fs(rootfs, m, dest, where, opts, mount_label, index) -> int:
    fstype = m.type
    if not fstype and not opts.flags & sc.MS_REMOUNT:
        raise ConfigError(f"mounts[{index}].type", "required unless the mount is a bind or a remount")
    _check_proc_destination(dest, m.source, fstype, index)
    if fstype in ("proc", "sysfs"):
        _check_ordinary_directory(rootfs, dest, fstype, index)
    source = m.source or fstype or "none"
    data = _with_label(opts.data, fstype, mount_label)
    keep_mode = _dir_mode(rootfs, dest) if fstype == "tmpfs" and not opts.flags & sc.MS_REMOUNT else None
    # runc 1.1: a read-only tmpfs is mounted read-write, given its mode, then remounted read-only (the mount, not
    # the superblock), so a "ro" tmpfs over a directory keeps that directory's mode too
    ro_later = fstype == "tmpfs" and opts.flags & sc.MS_RDONLY and not opts.flags & sc.MS_REMOUNT
    flags = opts.flags & ~sc.MS_RDONLY if ro_later else opts.flags
    fd = open_in_root(rootfs, dest, create=None if opts.flags & sc.MS_REMOUNT else "dir")
    # tmpcopyup (runc's extension): what the directory holds, read through an fd taken before the tmpfs hides it
    below = _open_dir(fd) if opts.tmpcopyup and fstype == "tmpfs" and not opts.flags & sc.MS_REMOUNT else None
    try:
        try:
            _call("mount", f"{source} -> {where}", sc.mount, source, fd_path(fd), fstype, flags, data or None)
        except SyscallError as e:
            host = _USERNS_FALLBACK.get(fstype)
            if e.err != errno.EPERM or host is None:
                raise
            # in a user namespace without its own net/ipc namespace the kernel refuses a fresh sysfs/mqueue;
            # bind the host's instead, as runc does
            _call("mount", f"{host} -> {where}", sc.mount, host, fd_path(fd), None, sc.MS_BIND | sc.MS_REC)
            fallback = open_in_root(rootfs, dest)
            try:
                remount_bind(fallback, opts.flags, opts.clear_flags, touches_atime=opts.touches_atime, where=where)
            finally:
                os.close(fallback)
        if opts.idmap:
            _idmap_in_place(rootfs, dest, fd, opts, m, where, index)
    except BaseException:
        if below is not None:
            os.close(below)
        raise
    finally:
        os.close(fd)
    target = open_in_root(rootfs, dest)
    if below is not None:
        try:
            copy_up(below, target, where)
        except BaseException:
            os.close(target)
            raise
        finally:
            os.close(below)
    if keep_mode is not None:
        # runc: a tmpfs mounted over a directory of the rootfs gets that directory's mode, whatever mode= says
        # (Docker's `--tmpfs /tmp` keeps /tmp's 1777); a directory created for the mount keeps mode=
        try:
            os.chmod(fd_path(target), keep_mode)
        except OSError as e:
            os.close(target)
            raise SyscallError("chmod", where, e.errno) from None
    if ro_later:
        try:
            remount_bind(target, opts.flags, opts.clear_flags, touches_atime=opts.touches_atime, where=where)
        except BaseException:
            os.close(target)
            raise
    return target


def _open_dir(path_fd: int) -> int:
    return os.open(fd_path(path_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def copy_up(src_dir: int, dst_path_fd: int, where: str) -> None:
    """Copy the tree under the directory fd `src_dir` into the directory `dst_path_fd` (O_PATH) is, as runc's
    tmpcopyup does: directories, regular files, symlinks and device nodes, with their modes and owners (a fifo or
    socket fails, as in runc). Every step is relative to an fd, never following a symlink of the tree."""
    dst = _open_dir(dst_path_fd)
    try:
        _copy_tree(src_dir, dst, where)
    except OSError as e:
        raise SyscallError("tmpcopyup", f"{where}: {getattr(e, 'filename', '') or ''}", e.errno) from None
    finally:
        os.close(dst)


def _copy_tree(src: int, dst: int, where: str) -> None:
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=dst)
            s2 = os.open(name, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=src)
            try:
                d2 = os.open(name, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=dst)
                try:
                    _copy_tree(s2, d2, where)
                finally:
                    os.close(d2)
            finally:
                os.close(s2)
        elif kind == stat.S_IFREG:
            s2 = _open_regular(name, src, st)
            try:
                d2 = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600, dir_fd=dst)
                try:
                    while os.sendfile(d2, s2, None, 1 << 30):
                        pass
                finally:
                    os.close(d2)
            finally:
                os.close(s2)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            os.mknod(name, kind | 0o600, st.st_rdev, dir_fd=dst)
        else:
            raise OSError(errno.EINVAL, "neither a directory, a file, a symlink nor a device node", name)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if kind != stat.S_IFLNK:                   # after chown, which clears setuid/setgid
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst)


def _open_regular(name: str, dir_fd: int, st) -> int:
    """Open for reading the regular file `name` that `st` describes, only if it still is that file: the directory
    may be shared (a volume) and the file swapped since for a fifo, whose open would block create, or a device,
    which open alone can act on and a read of (/dev/zero) would fill the tmpfs. O_PATH first: it opens nothing."""
    path = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        now = os.fstat(path)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise OSError(errno.EAGAIN, "changed while being copied", name)
        return os.open(fd_path(path), os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(path)


def _dir_mode(rootfs, dest) -> int | None:
    """Permission bits (with sticky/setgid) of the directory at `dest` before anything is mounted on it."""
    try:
        fd = open_in_root(rootfs, dest)
    except (SyscallError, OSError):
        return None
    try:
        st = os.stat(fd_path(fd))
    finally:
        os.close(fd)
    return stat.S_IMODE(st.st_mode) if stat.S_ISDIR(st.st_mode) else None


# fstype -> host path bound instead when mounting it is refused in a user namespace
_USERNS_FALLBACK = {"sysfs": "/sys", "mqueue": "/dev/mqueue"}
# fstypes whose mount(2) takes no SELinux context= option
_NO_LABEL = {"proc", "sysfs", "mqueue", "cgroup", "cgroup2", "bpf", "securityfs", "debugfs", "tracefs"}


def _with_label(data: str, fstype: str | None, label: str | None) -> str:
    if not label or fstype in _NO_LABEL or not os.path.exists("/sys/fs/selinux/enforce"):
        return data
    ctx = f'context="{label}"'
    return f"{data},{ctx}" if data else ctx


def _propagate_and_setattr(target: int, opts: MountOptions, where: str) -> None:
    for flag in opts.propagation:                 # propagation only changes with a mount(2) call of its own
        _call("mount", f"propagation {where}", sc.mount, None, fd_path(target), None, flag)
    if opts.attr_set or opts.attr_clr:
        _call("mount_setattr", where, sc.mount_setattr, target, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE,
              opts.attr_set, opts.attr_clr)


def mount_flags_of(path: str) -> int:
    """The per-mount MS_* flags the mount holding `path` has now (statvfs f_flag translated)."""
    f = os.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS.items() if f & st)


def remount_bind(target_fd: int, flags: int, clear: int = 0, *, touches_atime: bool = False, where: str = "") -> None:
    """Apply per-mount flags to the bind mount `target_fd` is on, keeping what the options do not mention.

    Starting from the mount's current flags (not from zero) keeps nosuid/nodev/noexec/ro a source had unless an
    option cleared them; if the kernel still says EPERM (an option tried to clear a flag locked because the mount
    came from a more privileged namespace), retry with the locked flags kept, as runc does.
    """
    path = fd_path(target_fd)
    current = mount_flags_of(path)
    base = current & ~_ATIME_FLAGS if touches_atime else current
    want = ((base & ~clear) | flags) & ~(sc.MS_REC | sc.MS_BIND | sc.MS_REMOUNT)
    want |= sc.MS_BIND | sc.MS_REMOUNT
    try:
        _call("remount", where or path, sc.mount, None, path, None, want)
    except SyscallError as e:
        if e.err != errno.EPERM:
            raise
        locked = current & _LOCKABLE
        if locked & _ATIME_FLAGS:
            want &= ~_ATIME_FLAGS
        _call("remount", where or path, sc.mount, None, path, None, want | locked)


def _call(call: str, where: str, fn, *args):
    """Run a syscalls wrapper, re-raising its error with our own description (host path, not /proc/self/fd/N)."""
    try:
        return fn(*args)
    except SyscallError as e:
        raise SyscallError(call, where, e.err) from None


# --- /proc safety (runc's checkProcMount: no mounting over /proc/<pid>/attr and friends) -------------------------
_PROC_ALLOWED = frozenset({"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                           "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
                           "/proc/sys/kernel/ns_last_pid"})


def _check_ordinary_directory(rootfs: str, dest: str, fstype: str, index: int) -> None:
    """procfs and sysfs only on a real directory: a symlinked /proc would put procfs where the masked and
    read-only paths that follow do not look (runc's fix for CVE-2023-28642, same wording). Each component is
    checked with lstat from the rootfs down, so no symlink of the rootfs is ever followed here."""
    inside = ""
    for part in os.path.normpath("/" + dest).split("/"):
        if not part:
            continue
        inside += "/" + part
        try:
            st = os.lstat(rootfs.rstrip("/") + inside)
        except FileNotFoundError:
            return                   # created as a directory by the mount
        if not stat.S_ISDIR(st.st_mode):
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise ConfigError(f"mounts[{index}].destination", f'{dest}: filesystem "{fstype}" must be mounted on '
                              f"ordinary directory ({inside} in the rootfs is {what})")


def _check_proc_destination(dest: str, source: str | None, fstype: str | None, index: int) -> None:
    d = os.path.normpath(dest)
    if d != "/proc" and not d.startswith("/proc/"):
        return
    if (d == "/proc" and fstype == "proc") or d in _PROC_ALLOWED:
        return
    if source and os.path.isabs(source):
        try:
            if sc.statfs_type(source) == sc.PROC_SUPER_MAGIC:
                return                                        # binding procfs onto procfs is harmless
        except SyscallError:
            pass
    raise ConfigError(f"mounts[{index}].destination", f"{dest}: mounting over /proc is not allowed")


# --- idmapped mounts ---------------------------------------------------------------------------------------------
def _idmapped_bind(source, target_fd, opts, m, where, index) -> None:
    """Clone the source tree detached, give it the idmapping, then move it onto the target."""
    tree = _idmapped_tree(source, opts, m, where, index)
    try:
        _move_tree(tree, target_fd, where)
    finally:
        os.close(tree)


def _idmap_in_place(rootfs, dest, under_fd, opts, m, where, index) -> None:
    """A filesystem mounted normally gets its idmapping by cloning it, detaching the original and moving the clone
    in (the kernel idmaps only detached mounts)."""
    mounted = open_in_root(rootfs, dest)
    try:
        tree = _call("open_tree", where, sc.open_tree, mounted, "",
                     sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_EMPTY_PATH | sc.AT_RECURSIVE)
    finally:
        os.close(mounted)
    try:
        _call("umount", where, sc.umount2, fd_path(under_fd), sc.MNT_DETACH)
        _give_idmap(tree, opts, m, where, index)
        _move_tree(tree, under_fd, where)
    finally:
        os.close(tree)


def _give_idmap(tree, opts, m, where, index, userns_pid=None) -> None:
    """The detached tree gets the mount's own maps, or (none given, userns_pid: the runtime idmaps for init) the
    container's user namespace."""
    if m.uid_mappings or m.gid_mappings or userns_pid is None:
        ns = userns_fd_for(m.uid_mappings, m.gid_mappings, f"mounts[{index}]")
    else:
        ns = os.open(f"/proc/{userns_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _call("mount_setattr", f"idmap {where}", sc.mount_setattr, tree, "",
              sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if opts.recursive_idmap else 0), sc.MOUNT_ATTR_IDMAP, 0, 0, ns)
    finally:
        os.close(ns)


def _move_tree(tree, target_fd, where) -> None:
    _call("move_mount", where, sc.move_mount, tree, "", target_fd, "",
          sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH)


def userns_fd_for(uid_mappings, gid_mappings, what: str) -> int:
    """An fd on a user namespace with these mappings: a child unshares CLONE_NEWUSER, we write its maps and open
    /proc/<child>/ns/user, then let it exit. Without mappings, the caller's own (non-initial) user namespace."""
    if not uid_mappings and not gid_mappings:
        if _in_initial_userns():
            raise ConfigError(f"{what}.options", "idmap needs uidMappings/gidMappings or a user namespace")
        return os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child never returns into caller code
        code = 1
        try:
            os.close(go_w)
            os.close(ready_r)
            sc.unshare(sc.CLONE_NEWUSER)
            # our pid as the mounted /proc numbers it: fork() gave the one in our pid namespace, which the /proc
            # of the runtime's (mounted before pivot_root) does not use
            os.write(ready_w, os.readlink("/proc/self").encode())
            os.read(go_r, 1)                       # hold the namespace alive until the parent has its fd
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(ready_w)
    try:
        seen = os.read(ready_r, 32)
        if not seen.isdigit():
            raise SyscallError("unshare", f"user namespace for {what} idmap", errno.EPERM)
        proc = f"/proc/{seen.decode()}"
        for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            if maps:
                text = "".join(f"{x.container_id} {x.host_id} {x.size}\n" for x in maps)
                try:
                    with open(f"{proc}/{name}", "w") as f:
                        f.write(text)
                except OSError as e:
                    raise SyscallError("write", f"{proc}/{name} for {what}", e.errno) from None
        return os.open(f"{proc}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


def _in_initial_userns() -> bool:
    with open("/proc/self/uid_map") as f:
        return f.read().split() == ["0", "0", "4294967295"]


# --- cgroup mounts -----------------------------------------------------------------------------------------------
def _mount_cgroup(rootfs, dest, where, opts, cgroup_mount) -> None:
    fd = open_in_root(rootfs, dest, create="dir")
    try:
        if cgroup_mount is not None:
            return cgroup_mount(resolved_path(fd), opts)
        flags = opts.flags | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):          # unified (v2) host
            _call("mount", f"cgroup2 -> {where}", sc.mount, "cgroup2", fd_path(fd), "cgroup2", flags, None)
        else:
            _mount_cgroup_v1(rootfs, dest, where, fd, flags)
    finally:
        os.close(fd)
    target = open_in_root(rootfs, dest)
    try:
        _propagate_and_setattr(target, opts, where)
    finally:
        os.close(target)


def _mount_cgroup_v1(rootfs, dest, where, fd, flags) -> None:
    """A tmpfs with one directory per host hierarchy, each a fresh mount of that hierarchy (the cgroup namespace,
    if any, makes its root the container's cgroup); co-mounted controllers get symlinks (cpu -> cpu,cpuacct)."""
    _call("mount", f"tmpfs -> {where}", sc.mount, "tmpfs", fd_path(fd), "tmpfs", flags & ~sc.MS_RDONLY, "mode=755")
    for name, fstype, data in host_cgroup_hierarchies():
        sub = open_in_root(rootfs, f"{dest}/{name}", create="dir")
        try:
            _call("mount", f"cgroup -> {where}/{name}", sc.mount, "cgroup", fd_path(sub), fstype, flags, data or None)
        finally:
            os.close(sub)
        if "," in name:
            top = open_in_root(rootfs, dest)
            try:
                for ctrl in name.split(","):
                    try:
                        os.symlink(name, ctrl, dir_fd=top)
                    except FileExistsError:
                        pass
            finally:
                os.close(top)
    if flags & sc.MS_RDONLY:                       # the tmpfs goes read-only once its directories exist
        top = open_in_root(rootfs, dest)
        try:
            _call("remount", where, sc.mount, None, fd_path(top), None, sc.MS_REMOUNT | flags, "mode=755")
        finally:
            os.close(top)


def host_cgroup_hierarchies() -> list[tuple[str, str, str]]:
    """(directory name, fstype, mount data) of each cgroup hierarchy mounted under the host's /sys/fs/cgroup."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields, tail = pre.split(), post.split()
            if len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
                continue
            mnt = fields[4]
            if os.path.dirname(mnt) != "/sys/fs/cgroup":
                continue
            data = ",".join(o for o in tail[2].split(",") if o not in ("rw", "ro"))
            out.append((os.path.basename(mnt), tail[0], data))
    return out
