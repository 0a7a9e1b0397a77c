"""The container's terminal: a pty made inside the container, its master sent over --console-socket (SCM_RIGHTS,
as runc does), its slave the process's stdio and controlling terminal, bind-mounted on /dev/console."""
import array
import fcntl
import os
import socket
import struct
import termios

from .syscalls import SyscallError

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty(console_size=None, clear_onlcr=False) -> tuple[int, str]:
    """Open a new pty from the container's /dev/ptmx. Returns (master fd, slave path). clear_onlcr: for our own
    foreground run/exec, as runc's: "\n" stays "\n" (set here, before the process can write anything)."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError("open", "/dev/ptmx", e.errno) from None
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = array.array("i", [0])
    fcntl.ioctl(master, TIOCGPTN, n, True)
    if console_size:
        h, w = console_size
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))
    if clear_onlcr:
        attrs = termios.tcgetattr(master)
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(master, termios.TCSANOW, attrs)
    return master, f"/dev/pts/{n[0]}"


def become_session_leader_on(slave_path: str) -> None:
    """setsid, make the slave our controlling terminal and our stdin/stdout/stderr."""
    fd = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    os.setsid()
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
    for i in (0, 1, 2):
        os.dup2(fd, i)
    if fd > 2:
        os.close(fd)


def send_master(sock_fd: int, master: int) -> None:
    """Send the pty master over the connected console socket, as runc's utils.SendFile does."""
    s = socket.socket(fileno=sock_fd)
    try:
        socket.send_fds(s, [b"/dev/ptmx"], [master])
    except OSError as e:
        raise SyscallError("sendmsg", "console socket", e.errno) from None
    finally:
        s.detach()


def connect(path: str) -> int:
    """Connect to --console-socket (done by the parent, so the path is the host's). Returns a CLOEXEC fd."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise SyscallError("connect console socket", path, e.errno) from None
    return s.detach()


def recv_master(sock: socket.socket) -> int:
    """Receive a pty master (the `run` foreground side of the console socket)."""
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise SyscallError("recvmsg", "console socket: no fd", 0)
    return fds[0]
