"""ctypes for the system calls the os module lacks. Every wrapper raises SyscallError(call, target, errno).

Only this module touches libc directly; callers never check return codes.
"""
import posix
import sys

from .. import fastos as os
from ..errors import SyscallError
from . import arch
from . import ffi as ctypes    # ctypes' types without `import ctypes` (~3 ms): see ffi.py

_libc = ctypes.CDLL(None)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# Calls glibc 2.36 has no wrapper for (or wraps badly) go by number: the numbers differ between architectures and
# come from this machine's table (linux/arch/); an architecture without one fails each such call with one line.
_nr = arch.nr

# clone / unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# mount_setattr / open_tree
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_SYMLINK_NOFOLLOW = 0x100
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


def _check(ret, call, target=""):
    if ret < 0:
        raise SyscallError(call, target, ctypes.get_errno())
    return ret


def _b(path):
    """os.fsencode without importing os: str -> bytes (surrogateescape), bytes as they are."""
    if path is None or isinstance(path, bytes):
        return path
    path = posix.fspath(path)
    return path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")


def mount(source, target, fstype, flags=0, data=None):
    """mount(2). The error names source -> target."""
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    if ret < 0:
        desc = f"{source} -> {target}" if source else str(target)
        raise SyscallError("mount", desc, ctypes.get_errno())


def umount2(target, flags=0):
    _check(_libc.umount2(_b(target), flags), "umount", target)


def pivot_root(new_root, put_old):
    _check(_syscall(_nr("pivot_root"), _b(new_root), _b(put_old)), "pivot_root", new_root)


def setns(fd, nstype=0, what=""):
    _check(_syscall(_nr("setns"), fd, nstype), "setns", what)


def unshare(flags):
    _check(_syscall(_nr("unshare"), flags), "unshare", hex(flags))


def pidfd_open(pid, flags=0):
    return _check(_syscall(_nr("pidfd_open"), pid, flags), "pidfd_open", str(pid))


def pidfd_send_signal(pidfd, sig):
    _check(_syscall(_nr("pidfd_send_signal"), pidfd, sig, None, 0), "pidfd_send_signal", str(sig))


def close_range(first, last=0xFFFFFFFF, flags=0):
    """close every fd in [first, last]; falls back to a loop on kernels without close_range."""
    ret = _syscall(_nr("close_range"), ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags))
    if ret < 0:
        os.closerange(first, min(last, 65536))


def sethostname(name):
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), "sethostname", name)


def setdomainname(name):
    b = name.encode()
    _check(_libc.setdomainname(b, len(b)), "setdomainname", name)


def open_tree(dfd, path, flags):
    return _check(_syscall(_nr("open_tree"), dfd, _b(path), ctypes.c_uint(flags)), "open_tree", path)


def move_mount(from_dfd, from_path, to_dfd, to_path, flags):
    _check(_syscall(_nr("move_mount"), from_dfd, _b(from_path), to_dfd, _b(to_path), ctypes.c_uint(flags)),
           "move_mount", to_path)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0, what=""):
    a = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _check(_syscall(_nr("mount_setattr"), dfd, _b(path), ctypes.c_uint(flags), ctypes.byref(a),
                    ctypes.c_size_t(ctypes.sizeof(a))), "mount_setattr", what or path)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dfd, path, flags, mode=0, resolve=0):
    how = _OpenHow(flags, mode, resolve)
    return _check(_syscall(_nr("openat2"), dfd, _b(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))),
                  "openat2", path)


def personality(persona):
    return _check(_syscall(_nr("personality"), ctypes.c_ulong(persona)), "personality", hex(persona))


def ioprio_set(which, who, ioprio):
    _check(_syscall(_nr("ioprio_set"), which, who, ioprio), "ioprio_set", str(ioprio))


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4),
                              ctypes.c_ulong(arg5)), "prctl", str(option))


PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36


def set_dumpable(on: bool):
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_child_subreaper():
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def keyctl_join_session_keyring(name=None):
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a new session keyring for the container."""
    KEYCTL_JOIN_SESSION_KEYRING = 1
    ret = _syscall(_nr("keyctl"), KEYCTL_JOIN_SESSION_KEYRING, _b(name))
    if ret < 0:
        err = ctypes.get_errno()
        # ENOSYS: no keyrings in this kernel; EDQUOT/EACCES: not fatal, as runc treats them
        import errno
        if err not in (errno.ENOSYS, errno.EDQUOT, errno.EACCES, errno.EPERM):
            raise SyscallError("keyctl join session keyring", name or "", err)


# --- appended for linux/paths, mounts, devices, rootfs ---
MS_I_VERSION = 1 << 23
MOVE_MOUNT_T_EMPTY_PATH = 0x40
PROC_SUPER_MAGIC = 0x9FA0
DEVPTS_SUPER_MAGIC = 0x1CD1
CGROUP2_SUPER_MAGIC = 0x63677270
TMPFS_MAGIC = 0x01021994


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long), ("f_blocks", ctypes.c_ulong),
                ("f_bfree", ctypes.c_ulong), ("f_bavail", ctypes.c_ulong), ("f_files", ctypes.c_ulong),
                ("f_ffree", ctypes.c_ulong), ("f_fsid", ctypes.c_int * 2), ("f_namelen", ctypes.c_long),
                ("f_frsize", ctypes.c_long), ("f_flags", ctypes.c_long), ("f_spare", ctypes.c_long * 4)]


def statfs_type(path):
    """statfs(2) f_type: the filesystem's magic number (os.statvfs does not report it)."""
    buf = _Statfs()
    _check(_libc.statfs(_b(path), ctypes.byref(buf)), "statfs", path)
    return buf.f_type & 0xFFFFFFFF


# --- capabilities, scheduler, NUMA (appended for linux/capabilities.py, linux/procattrs.py) ---
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget(pid=0):
    """capget(2) v3: (effective, permitted, inheritable) as 64-bit masks."""
    hdr, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid), (_CapData * 2)()
    _check(_syscall(_nr("capget"), ctypes.byref(hdr), data), "capget", str(pid))
    join = lambda f: getattr(data[0], f) | (getattr(data[1], f) << 32)  # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective, permitted, inheritable):
    """capset(2) v3 on the calling thread, from 64-bit masks."""
    hdr, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    for i in (0, 1):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_syscall(_nr("capset"), ctypes.byref(hdr), data), "capset",
           f"eff={effective:#x} prm={permitted:#x} inh={inheritable:#x}")


class SchedAttr(ctypes.Structure):
    """struct sched_attr (SCHED_ATTR_SIZE_VER1, 56 bytes)."""
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32), ("sched_flags", ctypes.c_uint64),
                ("sched_nice", ctypes.c_int32), ("sched_priority", ctypes.c_uint32),
                ("sched_runtime", ctypes.c_uint64), ("sched_deadline", ctypes.c_uint64),
                ("sched_period", ctypes.c_uint64), ("sched_util_min", ctypes.c_uint32),
                ("sched_util_max", ctypes.c_uint32)]


def sched_setattr(pid, attr: SchedAttr, flags=0):
    attr.size = ctypes.sizeof(SchedAttr)
    _check(_syscall(_nr("sched_setattr"), pid, ctypes.byref(attr), ctypes.c_uint(flags)), "sched_setattr",
           f"policy {attr.sched_policy}")


def set_mempolicy(mode, nodes=()):
    """set_mempolicy(2): `mode` includes the MPOL_F_* flags; `nodes` an iterable of node numbers."""
    nodes = tuple(nodes)
    maxnode = (max(nodes) + 1) if nodes else 0
    words = (ctypes.c_ulong * max(1, (maxnode + 63) // 64))()
    for n in nodes:
        words[n // 64] |= 1 << (n % 64)
    # the kernel reads maxnode-1 bits; pass one more than the highest node (and 0 with no nodes at all)
    _check(_syscall(_nr("set_mempolicy"), ctypes.c_int(mode), words if nodes else None,
                    ctypes.c_ulong(maxnode + 1 if nodes else 0)), "set_mempolicy", f"mode {mode:#x}")


# -- inotify (cgroup v2 OOM notifications) and bpf (cgroup v2 device programs) -------------------------------------
def inotify_init1(flags=0):
    return _check(_libc.inotify_init1(flags), "inotify_init1")


def inotify_add_watch(fd, path, mask):
    return _check(_libc.inotify_add_watch(fd, _b(path), ctypes.c_uint32(mask)), "inotify_add_watch", path)


def bpf(cmd, attr, what=""):
    """bpf(2) with a ctypes Structure as the attribute union; returns the result (an fd for loads)."""
    return _check(_syscall(_nr("bpf"), cmd, ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))), "bpf", what)


SECCOMP_SET_MODE_FILTER = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp_set_mode_filter(program: bytes, flags=0, what=""):
    """seccomp(2) SECCOMP_SET_MODE_FILTER with a classic BPF program (struct sock_filter, 8 bytes each, native
    endianness); returns the notify fd with SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0."""
    prog = _SockFprog(len(program) // 8, program)
    return _check(_syscall(_nr("seccomp"), SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags), ctypes.byref(prog)),
                  "seccomp", what)


CLOSE_RANGE_CLOEXEC = 4


def cloexec_range(first, last=0xFFFFFFFF):
    """Mark every fd in [first, last] close-on-exec (close_range with CLOSE_RANGE_CLOEXEC, Linux 5.11): needs no
    free fd, unlike listing /proc/self/fd."""
    _check(_syscall(_nr("close_range"), ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(CLOSE_RANGE_CLOEXEC)),
           "close_range", f"fds {first}.. (CLOSE_RANGE_CLOEXEC)")


# --- clone3(CLONE_INTO_CGROUP): a fork whose child is born in a cgroup v2 directory (launch._Fork) ---
CLONE_CHILD_SETTID = 0x01000000
CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17
_clone = None        # (the GIL-holding libc/Python-API handle, glibc's tid field offset) once looked up


def _clone_setup():
    global _clone
    if _clone is None:
        import _ctypes
        py = ctypes.PyDLL(None)
        # glibc publishes where struct pthread keeps the thread's tid, for libthread_db: {bits, count, offset}
        try:
            desc = _ctypes.dlsym(py._handle, "_thread_db_pthread_tid")
        except OSError:
            desc = 0                 # not glibc: where to write the child's tid is unknown (see fork_into_cgroup)
        offset = ctypes.c_uint.from_address(desc + 8).value if desc and \
            ctypes.c_uint.from_address(desc).value == 32 else -1
        py.pthread_self.restype, py.syscall.restype = ctypes.c_void_p, ctypes.c_long
        py.PyOS_BeforeFork.restype = py.PyOS_AfterFork_Child.restype = py.PyOS_AfterFork_Parent.restype = None
        _clone = (py, offset)
    return _clone


def fork_into_cgroup(cgroup_fd: int) -> int:
    """os.fork() whose child is born in the cgroup v2 directory open at cgroup_fd (clone3 with CLONE_INTO_CGROUP,
    Linux 5.7): it runs no instruction anywhere else, and nobody writes cgroup.procs (whose first write of a burst
    waits for an RCU grace period). Returns the child's pid, 0 in the child. Raises SyscallError("clone3") when it
    cannot be done (no process was made; the caller forks the usual way and writes cgroup.procs).

    What os.fork does around fork(2) is done around clone3, the same way: PyOS_BeforeFork, PyOS_AfterFork_Child or
    _Parent (the import lock, the GIL and thread states, os.register_at_fork hooks), the call made with the GIL held.
    What glibc's fork() adds for a single-threaded process: the child's thread descriptor gets the child's tid
    (CLONE_CHILD_SETTID at the field whose offset glibc publishes for libthread_db; pthread functions aimed at
    pthread_self() go by it). Not done, so refused while another Python thread runs: glibc's resets of the malloc,
    stdio and loader locks another thread could hold (the runtime starts no thread of C code either). Not done
    either: pthread_atfork handlers (C libraries'; Python's own hooks are os.register_at_fork's, run above)."""
    py, offset = _clone_setup()
    import errno
    if offset < 0:
        raise SyscallError("clone3", "CLONE_INTO_CGROUP: this libc's thread descriptor layout is unknown", errno.ENOSYS)
    import _thread
    if _thread._count():             # threads started by Python and still running, the main one not counted
        raise SyscallError("clone3", "CLONE_INTO_CGROUP: this process has other threads", errno.EDEADLK)
    # struct clone_args, CLONE_ARGS_SIZE_VER2 (Linux 5.7): 11 u64, as bytes (a ctypes Structure class costs ~20 us
    # to make): flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup
    args = b"".join(v.to_bytes(8, sys.byteorder) for v in (
        CLONE_CHILD_SETTID | CLONE_INTO_CGROUP, 0, py.pthread_self() + offset, 0, _SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd))
    nr, size = ctypes.c_long(_nr("clone3")), ctypes.c_size_t(len(args))
    import _signal
    # signals blocked from before PyOS_BeforeFork to after PyOS_AfterFork_*, as glibc's fork blocks them around the
    # syscall: a Python handler (create's SIGTERM rollback) must not raise between the two, with the import lock held
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    try:
        py.PyOS_BeforeFork()
        pid = py.syscall(nr, args, size)
        if pid == 0:
            py.PyOS_AfterFork_Child()
        else:
            err = ctypes.get_errno()
            py.PyOS_AfterFork_Parent()
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
    if pid < 0:
        raise SyscallError("clone3", "CLONE_INTO_CGROUP", err)
    return pid
