from . import Opt

SUMMARY = "create and run a container"
USAGE = "[command options] <container-id>"
DESCRIPTION = """
The run command creates and starts a container from a bundle, waits for its process and exits with its exit
status (128+N when killed by signal N), then deletes it. With --detach it returns once the process runs."""
OPTIONS = (
    Opt("--bundle", "-b", value="DIR", default=".", help="path to the root of the bundle directory"),
    Opt("--console-socket", value="PATH", help="path to an AF_UNIX socket which will receive the pty master fd"),
    Opt("--detach", "-d", help="detach from the container's process"),
    Opt("--pid-file", value="FILE", help="specify the file to write the process id to"),
    Opt("--no-pivot", help="do not use pivot root to jail process inside rootfs"),
    Opt("--no-new-keyring", help="do not create a new session keyring for the container"),
    Opt("--preserve-fds", value="N", default="0", help="pass N additional file descriptors to the container"),
    Opt("--keep", help="do not delete the container after it exits"),
)
NARGS = (1, 1)


def run(g, o, args):
    import os
    import signal
    import socket
    from ..container import delete, start
    from ..errors import StateError
    from ..launch import create
    from .create import create_options
    cid = args[0]
    co = create_options(o)
    console = None
    if not o["detach"] and not o["console_socket"]:
        # foreground: if the config asks for a terminal we hold the other end of the console socket ourselves
        console, co.console_fd = _console_pair()
    try:
        st = create(g, cid, co, subreaper=not o["detach"])
    except BaseException:
        if console is not None:
            console.close()
            os.close(co.console_fd)
        raise
    if co.console_fd is not None:
        os.close(co.console_fd)
    master = None
    if console is not None:
        console.setblocking(False)
        try:
            from ..linux.console import recv_master
            master = recv_master(console)
        except (BlockingIOError, OSError):
            master = None  # no terminal in config.json: nothing was sent
        console.close()
    st.lock()
    try:
        start(st, g.log)
    except BaseException:
        delete(st, g.log, force=True)
        raise
    st.release()
    if o["detach"]:
        return 0
    pid = st.pid
    forward = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
    for s in forward:
        signal.signal(s, lambda n, _f: _signal(pid, n))
    status = _wait(pid, master)
    for s in forward:
        signal.signal(s, signal.SIG_DFL)
    if not o["keep"]:
        try:
            st = type(st).load(g.root, cid, lock=True)
            delete(st, g.log, force=True)
        except StateError:
            pass
    return status


def _console_pair():
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a, b.detach()


def _signal(pid, n):
    import os
    try:
        os.kill(pid, n)
    except ProcessLookupError:
        pass


def _wait(pid, master) -> int:
    """Reap until init exits (we are its subreaper); proxy the terminal meanwhile. Returns the exit status."""
    import os
    if master is not None:
        from ..linux.ptyproxy import proxy
        proxy(master, pid)
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if wpid == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
