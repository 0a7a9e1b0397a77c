"""Foreground `run` with a terminal: copy between our stdio and the container's pty master until it closes."""
import fcntl
import os
import select
import signal
import sys
import termios
import tty


def _copy_winsize(master):
    try:
        ws = fcntl.ioctl(sys.stdin.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
    except OSError:
        pass


def proxy(master: int, pid: int) -> None:
    stdin = sys.stdin.fileno()
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        # keep output processing, as runc's host console does: the container's pty clears onlcr (its "\n" stays
        # "\n", linux/console.py), so our terminal's own onlcr is what turns it into "\r\n" on the screen
        raw = termios.tcgetattr(stdin)
        raw[1] |= saved[1] & termios.OPOST
        termios.tcsetattr(stdin, termios.TCSANOW, raw)
        _copy_winsize(master)
        signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(master))
    fds = [master, stdin]
    try:
        while True:
            try:
                r, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if stdin in r:
                data = os.read(stdin, 65536)
                if not data:
                    fds.remove(stdin)
                    os.write(master, b"\x04")  # EOF on our stdin: ^D to the container's terminal
                else:
                    os.write(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(master)
