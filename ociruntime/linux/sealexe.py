"""The runtime's interpreter, re-exec'd from a read-only copy, for a container that could write to it otherwise
(CVE-2019-5736 class).

A process of the container holding CAP_SYS_PTRACE in the initial user namespace passes the ptrace check on a
non-dumpable process: it can open /proc/<pid>/exe of every runtime process it can see (a created container's init,
which is Python until `start`; exec's process until its execve) and keep the handle. Once no Python runs, the handle
reopens for writing through /proc/self/fd: the next runtime call would run the container's code as host root. runc
1.1.5 is safe there because its visible process runs from a sealed memfd copy of runc.

The same holds for any other process of the pid namespace the runtime's process is in (a container that joined it)
and, for a runtime in a user namespace, for root of that namespace when the interpreter's file is mapped there (a
runtime nested in a container).

So, for such a container only (launch.needs_sealed_interpreter; ~10-25 ms per create or exec, as the interpreter
starts twice), the forked child re-execs the interpreter, still in the host's namespaces and invisible to the
container, from a detached read-only bind mount of its binary (open_tree + mount_setattr, as runc 1.2 does with its
own binary; no mount namespace sees it), or, where that is refused, from a sealed memfd copy. Everything the
container can see of the runtime afterwards is a fork of that process: /proc/<pid>/exe opens, but a reopen for
writing fails with EROFS (or EPERM on the sealed copy).

The child's arguments cross the execve marshalled in a memfd: the records of the parsed config as their classes'
names and fields (flatten), sockets as fd numbers, every fd keeping its close-on-exec flag on the other side, and
the names of the modules the runtime had imported, imported again before the child goes on (_import_all).
"""
from .. import fastos as os
import sys

# What the new interpreter runs: the launcher's start (bench/mklauncher.sh: its sys.path, and its hot-path file when
# it had one, so init's modules come from that file again and init closes it as usual), then resume().
_BOOT = """import sys
sys.path[:0] = %r
if %r:
    FD = -1
    try:
        import marshal, posix
        FD = posix.open(%r, posix.O_RDONLY | posix.O_CLOEXEC)
        exec(marshal.loads(posix.pread(FD, 65536, 8)), {"__name__": "ociruntime_hotpath", "FD": FD})
    except (OSError, ValueError, EOFError, TypeError):
        if FD >= 0:
            posix.close(FD)
from ociruntime.linux.sealexe import resume
resume(%r, %d)
"""


def reexec(entry: str, args) -> None:
    """In the forked child, before anything else: continue as `initargs.run_child(entry, args)` in a fresh
    interpreter started from a read-only copy of our binary. Never returns; raises if the execve fails."""
    import marshal
    state = {k: getattr(args, k) for k in type(args).__slots__}
    state["seal"] = False
    keep = {}                                       # fd -> was it inheritable
    for k in ("sock", "listener"):
        if state.get(k) is not None:
            state[k] = state[k].fileno()
            keep[state[k]] = False                  # sync sockets are close-on-exec
    if isinstance(state.get("console_fd"), int):
        keep.setdefault(state["console_fd"], os.get_inheritable(state["console_fd"]))
    data = os.memfd_create("ociruntime-args", 0)    # inheritable: the new interpreter reads it
    modules = [n for n in sys.modules if n != "__main__"]
    payload = marshal.dumps((type(args).__name__, flatten(state), keep, modules))
    view = memoryview(payload)
    while view:
        view = view[os.write(data, view):]
    os.lseek(data, 0, os.SEEK_SET)
    for fd in keep:
        os.set_inheritable(fd, True)
    exe = sealed_binary(os.path.realpath(sys.executable))
    hot = _hot_path_file()
    argv = [sys.executable or "python3", "-IS", "-c", _BOOT % (sys.path, hot is not None, hot, entry, data)]
    os.execve(exe, argv, dict(os.environ))


def _hot_path_file() -> str | None:
    """The path of the launcher's hot-path file, from the fd its finder reads."""
    from ..initargs import hot_path_globals
    g = hot_path_globals()
    try:
        return os.readlink(f"/proc/self/fd/{g['FD']}") if g is not None else None
    except OSError:
        return None


def resume(entry: str, data: int) -> None:
    """The new interpreter's entry (_BOOT): rebuild the arguments and run the child as if just forked."""
    import marshal
    import _socket
    from .. import initargs
    try:
        os.write_file("/proc/self/comm", b"ociruntime")   # as the launcher's (execveat of an fd named us "N")
    except OSError:
        pass
    sock = None
    try:
        chunks = []
        while chunk := os.read(data, 1 << 16):
            chunks.append(chunk)
        os.close(data)
        name, state, keep, modules = marshal.loads(b"".join(chunks))
        sock = state.get("sock")             # the fd, for an error below
        _import_all(modules)
        state = unflatten(state)
        for fd, inheritable in keep.items():
            os.set_inheritable(fd, inheritable)
        for k in ("sock", "listener"):
            if state.get(k) is not None:
                state[k] = _socket.socket(fileno=state[k])
        args = getattr(initargs, name)()
        for k, v in state.items():
            setattr(args, k, v)
    except BaseException as e:  # noqa: BLE001 — one error line to the parent, as any failure of the child
        _fail(sock, e)
    initargs.run_child(entry, args)


def _fail(sock, e) -> None:
    """Report a failure to rebuild the arguments over the sync socket (fd `sock`), else on stderr; exit 1."""
    msg = f"sealed interpreter: {e}"
    try:
        from .. import sync
        from ..errors import describe
        msg = f"sealed interpreter: {describe(e)}"
        sync.send(_socket_of(sock), sync.ERR, msg)
    except BaseException:  # noqa: BLE001
        try:
            sys.stderr.write(f"ociruntime: {msg}\n")
        except BaseException:  # noqa: BLE001
            pass
    os._exit(1)


def _socket_of(fd):
    import _socket
    if not isinstance(fd, int):
        raise ValueError("no sync socket")
    return _socket.socket(fileno=fd)


def _import_all(names) -> None:
    """Import what the runtime had imported when it forked: a forked child has those modules, and init's lazy imports
    after pivot_root (the runtime's files out of reach) count on them (seccomp's notify state needs fastjson, which
    only config loading had imported). A name that does not import here would not have later either."""
    for name in names:
        if name not in sys.modules:
            try:
                __import__(name)
            except Exception:  # noqa: BLE001
                pass


def flatten(v):
    """`v` as marshal can carry it. Every tuple of the output is a tag made here: ("r", module, name, [fields]) for
    a record (record.py: the parsed config), ("t", [items]) for a tuple; lists, dicts and scalars as they are. No
    value of config.json (strings, lists, dicts) can pass for a tag. pickle would do, but its imports (re,
    functools, collections) cost ~10 ms."""
    if hasattr(type(v), "_fields"):
        return ("r", type(v).__module__, type(v).__qualname__, [flatten(getattr(v, n)) for n in v._fields])
    if isinstance(v, tuple):
        return ("t", [flatten(x) for x in v])
    if isinstance(v, list):
        return [flatten(x) for x in v]
    if isinstance(v, dict):
        return {k: flatten(x) for k, x in v.items()}
    return v


def unflatten(v):
    if isinstance(v, tuple):
        if v[0] == "t":
            return tuple(unflatten(x) for x in v[1])
        if v[0] == "r" and v[1].startswith("ociruntime."):
            return getattr(__import__(v[1], fromlist=["_"]), v[2])(*(unflatten(x) for x in v[3]))
        raise ValueError(f"sealexe: not a tag: {v[:3]!r}")
    if isinstance(v, list):
        return [unflatten(x) for x in v]
    if isinstance(v, dict):
        return {k: unflatten(x) for k, x in v.items()}
    return v


def sealed_binary(path: str) -> int:
    """An fd (close-on-exec) of `path` that execve can start and nobody can write through: the file on a detached
    read-only bind mount, or a sealed memfd copy where cloning a mount is refused (no CAP_SYS_ADMIN, a kernel
    before 5.12)."""
    from . import syscalls as sc
    try:
        fd = sc.open_tree(-100, path, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)   # AT_FDCWD
    except sc.SyscallError:
        return _memfd_copy(path)
    try:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH,
                         attr_set=sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV,
                         what=f"read-only copy of {path}")
    except sc.SyscallError:
        os.close(fd)
        return _memfd_copy(path)
    return fd


def _memfd_copy(path: str) -> int:
    from . import dmz
    src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = dmz.executable_memfd("ociruntime-python", f"read-only copy of {path}")
        size, off = os.fstat(src).st_size, 0
        while off < size:
            n = os.sendfile(fd, src, off, size - off)
            if n == 0:
                break
            off += n
    finally:
        os.close(src)
    dmz.seal(fd)
    return fd
