from . import CONFIG_OPT, Opt

SUMMARY = "create and run a container"
USAGE = "[command options] <container-id>"
DESCRIPTION = """
The run command creates and starts a container from a bundle, waits for its process and exits with its exit
status (128+N when killed by signal N), then deletes it. With --detach it returns once the process runs.
Without a "mount" entry in linux.namespaces the container shares the runtime's mount namespace (as runc): its
mounts are made there, visible on the host below the rootfs until `delete` removes them, and its root is a
chroot, not pivot_root (a process holding CAP_SYS_CHROOT can leave it); maskedPaths/readonlyPaths are refused."""
OPTIONS = (
    Opt("--bundle", "-b", value="DIR", default=".", help="path to the root of the bundle directory"),
    Opt("--console-socket", value="PATH", help="path to an AF_UNIX socket which will receive the pty master fd"),
    Opt("--detach", "-d", help="detach from the container's process"),
    Opt("--pid-file", value="FILE", help="specify the file to write the process id to"),
    Opt("--no-pivot", help="do not use pivot root to jail process inside rootfs"),
    Opt("--no-new-keyring", help="do not create a new session keyring for the container"),
    Opt("--preserve-fds", value="N", default="0", help="pass N additional file descriptors to the container"),
    Opt("--keep", help="do not delete the container after it exits"),
    Opt("--no-subreaper", help="accepted for runc's command line, ignored: run always reaps its container's process"),
    CONFIG_OPT,
)
NARGS = (1, 1)


def run(g, o, args):
    import gc
    gc.enable()             # may run as long as the container: collect as usual (the launcher disables it)
    import os
    from .. import foreground
    from ..container import delete, start
    from ..errors import RuntimeErr, StateError
    from ..launch import create
    from ..state import ContainerState
    from .create import create_options
    cid = args[0]
    if o["console_socket"] and not o["detach"]:
        # runc's checkTerminal: the pty master goes to the socket's owner only when run returns at once
        raise RuntimeErr("cannot use console socket if ociruntime will not detach or allocate tty")
    co = create_options(o)
    ours = None
    if not o["detach"] and not o["console_socket"]:
        # foreground: if the config asks for a terminal we hold the other end of the console socket ourselves
        ours, co.console_fd = foreground.console_pair()
    try:
        # --no-subreaper is accepted and ignored (as crun does): where init is forked by an intermediate that exits
        # (a user, time or joined pid namespace, the sealed interpreter) it is our child only as a subreaper's
        # orphan, and without that `run` could not wait for it (runc's init is its child anyway: CLONE_PARENT)
        st = create(g, cid, co, subreaper=not o["detach"])
    finally:
        if co.console_fd is not None:
            os.close(co.console_fd)
    master = foreground.take_master(ours) if ours is not None else None
    st.lock()
    try:
        start(st, g.log)
    except BaseException:
        delete(st, g.log, force=True)
        raise
    st.release()
    if o["detach"]:
        return 0
    status = foreground.wait(st.pid, master)
    if not o["keep"]:
        try:
            delete(ContainerState.load(g.root, cid, lock=True), g.log, force=True)
        except StateError:
            pass
    return status
