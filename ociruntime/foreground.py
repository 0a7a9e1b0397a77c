"""What `run` and `exec` do when not detached: own the console socket's other end, proxy the pty, forward
signals to the container's process, reap it as its subreaper and turn its end into an exit status."""
import _signal  # the C modules: `signal` and `socket` import enum, selectors... (~4 ms of every `exec`)
import _socket

from . import fastos as os

FORWARDED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2)


def console_pair():
    """(our end, the fd to hand to init as its connected console socket)."""
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return a, b.detach()


def take_master(ours) -> int | None:
    """The pty master init sent during setup, or None when the process has no terminal."""
    ours.setblocking(False)
    try:
        from .linux.console import recv_master
        return recv_master(ours)
    except OSError:
        return None
    finally:
        ours.close()


def wait(pid: int, master: int | None) -> int:
    """Forward signals, proxy the terminal, reap until `pid` exits; its exit status (128+N if killed by N)."""
    def forward(n, _frame):
        try:
            os.kill(pid, n)
        except ProcessLookupError:
            pass
    for s in FORWARDED:
        _signal.signal(s, forward)
    try:
        if master is not None:
            from .linux.ptyproxy import proxy
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
    finally:
        for s in FORWARDED:
            _signal.signal(s, _signal.SIG_DFL)
