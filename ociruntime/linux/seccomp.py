"""linux.seccomp through libseccomp (a thin ctypes binding; the BPF is libseccomp's).

As runc: a syscall newer than every one the profile names (clone3...) returns ENOSYS rather than the default action,
so that glibc falls back to the older call (a BPF stub before libseccomp's program: see "ENOSYS" below).

Imported only when the config has linux.seccomp. `load` builds the filter from the raw config.json object and
loads it; init calls it last, just before execve, so the runtime's own setup syscalls are not filtered.

With SCMP_ACT_NOTIFY the notify fd is sent to the agent at listenerPath with SCM_RIGHTS, the message being the
"container process state" JSON of config-linux.md ({"ociVersion","fds":["seccompFd"],"pid","metadata","state"}),
one connection per message, as runc does. The syscalls used for that (socket, connect, sendmsg, close) run under
the new filter: if the profile sends them to the agent too, pass `listener` (a connected socket, or a callable
that takes the notify fd) prepared before the filter is loaded.
"""
import ctypes
import errno
import functools
import os
import struct          # imported before pivot_root: load() runs after it, where imports fail

from ..errors import ConfigError, RuntimeErr, SyscallError
from . import syscalls

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_NOTIFY": 0x7FC00000,
}
WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")                # actions whose low 16 bits carry errnoRet
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ARCHES = {f"SCMP_ARCH_{a.upper()}": a for a in (
    "x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel", "mipsel64", "mipsel64n32",
    "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc", "parisc64", "riscv64", "loongarch64", "m68k", "sh",
    "sheb")}

# scmp_filter_attr
ATTR_ACT_BADARCH, ATTR_CTL_NNP, ATTR_CTL_TSYNC, ATTR_CTL_LOG, ATTR_CTL_SSB, ATTR_CTL_OPTIMIZE = 2, 3, 4, 6, 7, 8
ATTR_API_SYSRAWRC, ATTR_CTL_WAITKILL = 9, 10
# flag -> filter attribute set to 1 (None: nothing to do; init is single-threaded, so TSYNC is moot, as in runc)
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": None, "SECCOMP_FILTER_FLAG_LOG": ATTR_CTL_LOG,
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": ATTR_CTL_SSB, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": ATTR_CTL_WAITKILL}
MAX_ARGS = 6
NR_SCMP_ERROR = -1


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


@functools.lru_cache(maxsize=1)
def _lib():
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise RuntimeErr(f"linux.seccomp: libseccomp.so.2 cannot be loaded ({e}); install libseccomp2") from None
    sig = {
        "seccomp_init": (ctypes.c_void_p, [ctypes.c_uint32]),
        "seccomp_release": (None, [ctypes.c_void_p]),
        "seccomp_attr_set": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]),
        "seccomp_arch_resolve_name": (ctypes.c_uint32, [ctypes.c_char_p]),
        "seccomp_arch_add": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32]),
        "seccomp_syscall_resolve_name": (ctypes.c_int, [ctypes.c_char_p]),
        "seccomp_syscall_resolve_name_arch": (ctypes.c_int, [ctypes.c_uint32, ctypes.c_char_p]),
        "seccomp_rule_add_array": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                                  ctypes.POINTER(_ArgCmp)]),
        "seccomp_load": (ctypes.c_int, [ctypes.c_void_p]),
        "seccomp_notify_fd": (ctypes.c_int, [ctypes.c_void_p]),
        "seccomp_export_bpf": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
        "seccomp_api_get": (ctypes.c_uint, []),
        "seccomp_version": (ctypes.POINTER(_Version), []),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def preload() -> None:
    """Load libseccomp now: init calls this before pivot_root, after which the host's library is out of reach."""
    _lib()


def version() -> str:
    v = _lib().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def _rc(ret: int, call: str, target: str) -> int:
    """libseccomp returns -errno."""
    if ret < 0:
        raise SyscallError(call, target, -ret)
    return ret


def _action(name, errno_ret, path, errno_field):
    if name not in ACTIONS:
        raise ConfigError(path, f"unknown action {name!r}")
    if errno_ret is not None and name not in WITH_ERRNO:
        raise ConfigError(errno_field, f"{name} takes no errno (only {' and '.join(WITH_ERRNO)} do)")
    if name in WITH_ERRNO:
        return ACTIONS[name] | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    return ACTIONS[name]


def uses_notify(cfg: dict) -> bool:
    return any(s.get("action") == "SCMP_ACT_NOTIFY" for s in cfg.get("syscalls") or ())


def _conditions(args, path):
    """One tuple of scmp_arg_cmp per rule: all args in one rule (AND) unless an index repeats, then one rule per
    arg (OR) — runc's rule, since libseccomp refuses two conditions on the same argument."""
    conds = []
    for j, a in enumerate(args):
        idx = a.get("index")
        if not isinstance(idx, int) or not 0 <= idx < MAX_ARGS:
            raise ConfigError(f"{path}.args[{j}].index", f"{idx!r} is not an argument index (0..{MAX_ARGS - 1})")
        if a.get("op") not in OPERATORS:
            raise ConfigError(f"{path}.args[{j}].op", f"unknown operator {a.get('op')!r}")
        conds.append(_ArgCmp(idx, OPERATORS[a["op"]], a.get("value", 0), a.get("valueTwo", 0)))
    indexes = [c.arg for c in conds]
    if len(set(indexes)) == len(indexes):
        return [conds]
    return [[c] for c in conds]


def build(cfg: dict, *, debug=lambda msg: None):
    """A libseccomp filter context for linux.seccomp (the caller releases it with _lib().seccomp_release)."""
    lib = _lib()
    p = "linux.seccomp"
    default = _action(cfg.get("defaultAction"), cfg.get("defaultErrnoRet"), f"{p}.defaultAction",
                      f"{p}.defaultErrnoRet")
    if cfg.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise ConfigError(f"{p}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action (the runtime could "
                          "not hand the notify fd to the agent)")
    if uses_notify(cfg) and not cfg.get("listenerPath"):
        raise ConfigError(f"{p}.listenerPath", "required when SCMP_ACT_NOTIFY is used")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SyscallError("seccomp_init", f"{p}.defaultAction {cfg.get('defaultAction')}", ctypes.get_errno()
                           or errno.EINVAL)
    try:
        _configure(lib, ctx, cfg, default, debug)
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def _configure(lib, ctx, cfg, default, debug):
    p = "linux.seccomp"
    for i, arch in enumerate(cfg.get("architectures") or ()):
        token = lib.seccomp_arch_resolve_name(ARCHES.get(arch, "").encode()) if arch in ARCHES else 0
        if not token:
            raise ConfigError(f"{p}.architectures[{i}]", f"{arch!r} is not known to libseccomp {version()}")
        ret = lib.seccomp_arch_add(ctx, token)
        if ret != -errno.EEXIST:                               # the native arch is already in the filter
            _rc(ret, "seccomp_arch_add", f"{p}.architectures[{i}] {arch}")
    # the runtime decides no_new_privs itself (process.noNewPrivileges); libseccomp would force it on
    _rc(lib.seccomp_attr_set(ctx, ATTR_CTL_NNP, 0), "seccomp_attr_set", "SCMP_FLTATR_CTL_NNP")
    lib.seccomp_attr_set(ctx, ATTR_API_SYSRAWRC, 1)            # raw kernel errno from seccomp_load (>= 2.5.4)
    for i, flag in enumerate(cfg.get("flags") or ()):
        if flag not in FLAGS:
            raise ConfigError(f"{p}.flags[{i}]", f"unknown flag {flag!r}")
        if FLAGS[flag] is not None and lib.seccomp_attr_set(ctx, FLAGS[flag], 1) < 0:
            raise RuntimeErr(f"{p}.flags[{i}]: {flag} is not supported by libseccomp {version()} or this kernel")
    syscalls = cfg.get("syscalls") or ()
    if len(syscalls) > 32:
        lib.seccomp_attr_set(ctx, ATTR_CTL_OPTIMIZE, 2)        # binary tree: faster for long profiles (as runc)
    for i, sc in enumerate(syscalls):
        path = f"{p}.syscalls[{i}]"
        act = _action(sc.get("action"), sc.get("errnoRet"), f"{path}.action", f"{path}.errnoRet")
        if act == default:
            continue                                           # libseccomp refuses a rule equal to the default
        rules = _conditions(sc.get("args") or (), path)
        for j, name in enumerate(sc.get("names") or ()):
            if act == ACTIONS["SCMP_ACT_NOTIFY"] and name == "write":
                raise ConfigError(f"{path}.names[{j}]", "SCMP_ACT_NOTIFY cannot be used for write (as runc)")
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == NR_SCMP_ERROR:
                debug(f"seccomp: unknown syscall {name!r} ignored ({path}.names[{j}])")
                continue
            for conds in rules:
                arr = (_ArgCmp * len(conds))(*conds) if conds else None
                _rc(lib.seccomp_rule_add_array(ctx, act, nr, len(conds), arr), "seccomp_rule_add",
                    f"{path}.names[{j}] {name}")


def report_unknown(cfg: dict, debug) -> None:
    """debug() each syscall name libseccomp does not know (build() skips them, as runc does)."""
    lib = _lib()
    for i, sc in enumerate(cfg.get("syscalls") or ()):
        for j, name in enumerate(sc.get("names") or ()):
            if lib.seccomp_syscall_resolve_name(name.encode()) == NR_SCMP_ERROR:
                debug(f"seccomp: unknown syscall {name!r} ignored (linux.seccomp.syscalls[{i}].names[{j}])")


def container_process_state(cfg: dict, state: dict | None) -> bytes:
    """config-linux.md "The Container Process State": what the seccomp agent receives with the fd."""
    state = dict(state or {})
    msg = {"ociVersion": state.get("ociVersion", "1.3.0"), "fds": ["seccompFd"],
           "pid": state.get("pid", os.getpid()), "metadata": cfg.get("listenerMetadata", ""), "state": state}
    from ..fastjson import dumps
    return dumps(msg).encode()


def connect_listener(cfg: dict):
    """A stream connection to linux.seccomp.listenerPath (make it before pivot_root if the path is a host one)."""
    import socket
    path = cfg.get("listenerPath")
    # non-blocking: an agent that accepts nothing (its backlog full) is EAGAIN now, not a create that hangs (runc's
    # Go dial fails the same way); a unix connect is complete when it returns
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        s.connect(path)
        s.setblocking(True)
    except OSError as e:
        s.close()
        raise SyscallError("connect", f"linux.seccomp.listenerPath {path}", e.errno) from None
    return s


def send_notify_fd(conn, notify_fd: int, payload: bytes) -> None:
    """One message: the payload with the fd as SCM_RIGHTS in the first sendmsg; then the connection is closed."""
    import socket
    try:
        sent = socket.send_fds(conn, [payload], [notify_fd])
        while sent < len(payload):
            sent += conn.send(payload[sent:])
    except OSError as e:
        raise SyscallError("sendmsg", "linux.seccomp.listenerPath (seccomp notify fd)", e.errno) from None
    finally:
        conn.close()


def load(cfg: dict, *, state: dict | None = None, debug=lambda msg: None, listener=None) -> None:
    """Build and load linux.seccomp into the calling process. With SCMP_ACT_NOTIFY, send the notify fd and the
    container process state to the agent: over `listener` (connected socket, or callable(fd)) when given, else
    over a new connection to listenerPath. The process's own copy of the notify fd is closed afterwards."""
    lib = _lib()
    payload = container_process_state(cfg, state) if uses_notify(cfg) else None
    own = payload is not None and listener is None
    if own:
        listener = connect_listener(cfg)                       # connect before the filter can catch connect(2)
    try:
        fd = _load(lib, cfg, debug, want_fd=payload is not None)
    except BaseException:
        if own:
            listener.close()
        raise
    if fd is None:
        return
    try:
        if callable(listener):
            listener(fd)
        else:
            send_notify_fd(listener, fd, payload)
    finally:
        os.close(fd)


def _load(lib, cfg, debug, want_fd):
    ctx = build(cfg, debug=debug)
    try:
        stub = enosys_stub(lib, cfg)
        if stub:
            fd = _load_with_stub(lib, ctx, cfg, stub, want_fd)
            return fd if want_fd else None
        _load_error(lib.seccomp_load(ctx), "seccomp_load")
        return _rc(lib.seccomp_notify_fd(ctx), "seccomp_notify_fd", "linux.seccomp") if want_fd else None
    finally:
        lib.seccomp_release(ctx)


def _load_error(ret: int, call: str) -> None:
    if ret in (-errno.EACCES, -errno.EPERM):
        raise SyscallError(call, "linux.seccomp (without process.noNewPrivileges the filter needs "
                           "CAP_SYS_ADMIN: load it before the user switch)", -ret)
    _rc(ret, call, "linux.seccomp")


# -- ENOSYS for syscalls newer than the profile (runc's "patchbpf" stub) -------------------------------------------
#
# A profile lists the syscalls its author knew. One the kernel added later (clone3, close_range, faccessat2...) would
# get the default action, typically EPERM, and glibc only falls back to the older call on ENOSYS. So, as runc does:
# for each architecture the profile lists, a syscall numbered above the highest number the profile names (on that
# architecture; any action, any arguments) returns ENOSYS; everything else goes through libseccomp's filter. Our
# BPF runs before libseccomp's: ld arch; jeq per architecture; ld nr; jgt last -> ENOSYS; else into the filter.
# Not with a permissive default (allow, log, trace: runc's rule) nor one that already answers ENOSYS.

BPF_LD_W_ABS, BPF_JEQ, BPF_JGT, BPF_JSET, BPF_JA, BPF_RET = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
# libseccomp's architecture tokens are the kernel's AUDIT_ARCH_* values (seccomp_data.arch), but for x32: its
# syscalls arrive as x86_64 ones with bit 30 (__X32_SYSCALL_BIT) set in the number
SCMP_ARCH_X32, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT = 0x4000003E, 0xC000003E, 0x40000000
# s390/s390x: a number the kernel does not know arrives as 0 (the multiplexer, setup(2), long gone): ENOSYS too
S390 = (0x16, 0x80000016)


def last_syscalls(lib, cfg: dict) -> dict:
    """{AUDIT_ARCH: {token: highest syscall number the profile names on it}} for the listed architectures (x86_64
    may hold two: its own and x32's); names an architecture lacks, or multiplexed ones (< 0), do not count."""
    names = [n.encode() for sc in cfg.get("syscalls") or () for n in sc.get("names") or ()]
    out = {}
    for arch in cfg.get("architectures") or ():
        token = lib.seccomp_arch_resolve_name(ARCHES[arch].encode()) if arch in ARCHES else 0
        last = max((lib.seccomp_syscall_resolve_name_arch(token, n) for n in names), default=-1) if token else -1
        if last > 0:
            out.setdefault(AUDIT_ARCH_X86_64 if token == SCMP_ARCH_X32 else token, {})[token] = last
    return out


def enosys_stub(lib, cfg: dict) -> list:
    """The instructions (code, jt, jf, k) to put before libseccomp's program; [] when none is needed."""
    if cfg.get("defaultAction") in PERMISSIVE or (
            cfg.get("defaultAction") == "SCMP_ACT_ERRNO" and cfg.get("defaultErrnoRet") == errno.ENOSYS):
        return []
    lasts = last_syscalls(lib, cfg)
    if not lasts:
        return []
    prog = [(BPF_LD_W_ABS, 0, 0, 4)]                                     # seccomp_data.arch
    prog += [(BPF_JEQ, f"arch{a:x}", 0, a) for a in lasts]
    prog.append((BPF_JA, 0, 0, "filter"))
    for a, by_token in lasts.items():
        prog += [("label", f"arch{a:x}"), (BPF_LD_W_ABS, 0, 0, 0)]      # seccomp_data.nr
        if a in S390:
            prog.append((BPF_JEQ, "enosys", 0, 0))
        if a == AUDIT_ARCH_X86_64:
            native, x32 = by_token.get(AUDIT_ARCH_X86_64), by_token.get(SCMP_ARCH_X32)
            # x32 numbers have bit 30 set: they go to x32's check, or into the filter when x32 is not listed
            prog.append((BPF_JSET, "x32" if x32 else "filter", 0, X32_SYSCALL_BIT))
            if native:
                prog.append((BPF_JGT, "enosys", 0, native))
            prog.append((BPF_JA, 0, 0, "filter"))
            if x32:
                prog += [("label", "x32"), (BPF_JGT, "enosys", 0, x32), (BPF_JA, 0, 0, "filter")]
        else:
            prog += [(BPF_JGT, "enosys", 0, by_token[a]), (BPF_JA, 0, 0, "filter")]
    prog += [("label", "enosys"), (BPF_RET, 0, 0, ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS), ("label", "filter")]
    return _resolve(prog)


def _resolve(prog: list) -> list:
    """Labels -> relative jumps (forward only; a conditional one must fit in 8 bits, `ja` takes 32)."""
    where, out = {}, []
    for ins in prog:
        if ins[0] == "label":
            where[ins[1]] = len(out)
        else:
            out.append(ins)
    for i, (code, jt, jf, k) in enumerate(out):
        rel = lambda t: where[t] - i - 1 if isinstance(t, str) else t  # noqa: E731
        jt, jf, k = rel(jt), rel(jf), rel(k) if code == BPF_JA else k
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise RuntimeErr("linux.seccomp: the ENOSYS stub needs a jump longer than BPF allows")
        out[i] = (code, jt, jf, k)
    return out


def _export_bpf(lib, ctx) -> bytes:
    """libseccomp's program as raw sock_filter bytes (written to a memfd: no file system needed)."""
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        _rc(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf", "linux.seccomp")
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# seccomp(2) filter flags, as libseccomp would pass them from the attributes _configure set
_KERNEL_FLAGS = {"SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
                 "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
FLAG_NEW_LISTENER = 8


def _load_with_stub(lib, ctx, cfg, stub, want_fd):
    program = b"".join(struct.pack("=HBBI", *ins) for ins in stub) + _export_bpf(lib, ctx)
    flags = FLAG_NEW_LISTENER if want_fd else 0
    for f in cfg.get("flags") or ():
        flags |= _KERNEL_FLAGS.get(f, 0)
    try:
        return syscalls.seccomp_set_mode_filter(program, flags, "linux.seccomp")
    except SyscallError as e:
        _load_error(-e.err, "seccomp")
