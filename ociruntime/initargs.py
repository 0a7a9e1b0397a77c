"""What the parent hands to the forked child (create's init, exec's process): plain values, no parsing happens
in the child. Kept apart from init.py so the parent can fork without importing init's modules (ctypes, the
mount code...): the child imports them itself, while the parent places it in its cgroups."""


class _Args:
    __slots__ = ()

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


class InitArgs(_Args):
    __slots__ = ("cfg", "cid", "sock", "fifo", "console_fd", "console_ours", "no_pivot", "no_new_keyring", "preserve_fds",
                 "cgroup_state", "debug", "fifo_w", "host_pid", "placed", "notes", "fifo_fd", "source_fds",
                 "in_pidns", "seal", "self_placed", "listener")


class ExecArgs(_Args):
    __slots__ = ("process", "init_pid", "sock", "console_fd", "console_ours", "preserve_fds", "listener", "cid", "cfg", "fifo_w",
                 "host_pid", "debug", "notes", "exe", "in_pidns", "seal", "self_placed", "tasks_fds")


def place_self(fds) -> bool:
    """In a child forked a moment ago, still one thread: "0" into each v1 hierarchy's `tasks` (fds the parent opened,
    launch._Fork), which moves this thread, so this process, into the container's cgroup there without the global
    threadgroup rwsem (no RCU grace period). False at the first refusal (no permission, a cgroup gone): the parent
    then writes cgroup.procs itself, and that write's error is the one reported. The caller closes the fds."""
    from . import fastos as os
    try:
        for fd in fds:
            os.write(fd, b"0")
    except OSError:
        return False
    return True


def run_child(entry: str, args) -> None:
    """In the forked child: import init and run `entry` (main or exec_main). Never returns; an import failure
    travels to the parent like any init error, and never unwinds into the parent's code."""
    from . import fastos as os
    try:
        if args.seal:    # first, while invisible to the container: a read-only interpreter (linux/sealexe.py)
            from .linux import sealexe
            sealexe.reexec(entry, args)
        from . import init
        getattr(init, entry)(args)
    except BaseException as e:  # noqa: BLE001
        try:
            from . import sync
            from .errors import describe
            sync.send(args.sock, sync.ERR, describe(e))
        except BaseException:  # noqa: BLE001
            pass
    os._exit(1)


def hot_path_globals():
    """The namespace the launcher runs the hot-path finder in (bench/mklauncher.sh): its FD is read by the finder at
    each import; None without the launcher's file. init closes that fd (init._close_hot_path_file); a sealed child
    reopens the file by the fd's path (linux/sealexe.py)."""
    import sys
    for f in sys.meta_path:
        g = getattr(getattr(f, "exec_module", None), "__globals__", None)
        if g is not None and g.get("__name__") == "ociruntime_hotpath" and isinstance(g.get("FD"), int):
            return g
    return None
