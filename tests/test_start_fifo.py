"""container.start's read of the exec FIFO (_read_fifo): init opens its write end once `start` has opened the read
end, writes '1' and execs (the execve closes its end)."""
import os

import pytest

from ociruntime import container
from ociruntime.errors import StateError


class _Init:
    """A live init, as far as _read_fifo asks."""
    pid = 1

    def alive(self):
        return True


def _opened(tmp_path):
    fifo = str(tmp_path / "exec.fifo")
    os.mkfifo(fifo)
    return fifo, os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)


def test_a_report_written_between_starts_eof_and_its_fd_check_is_read_not_taken_for_a_stale_fifo(tmp_path,
                                                                                                     monkeypatch):
    # start reads EOF (init has not opened its end yet); before it looks at init's fds, init opens its end, writes
    # '1' and execs: init no longer holds the FIFO, but its '1' waits in the pipe (the flake 'cannot start an
    # already running container' on a loaded machine)
    fifo, fd = _opened(tmp_path)

    def init_runs_meanwhile(pid, st):
        w = os.open(fifo, os.O_WRONLY)
        os.write(w, b"1")
        os.close(w)
        return False
    monkeypatch.setattr(container, "_holds", init_runs_meanwhile)
    try:
        assert container._read_fifo(fd, _Init(), os.fstat(fd)) == b"1"
    finally:
        os.close(fd)


def test_a_fifo_no_init_holds_and_nothing_was_written_to_is_an_already_running_container(tmp_path, monkeypatch):
    _, fd = _opened(tmp_path)
    monkeypatch.setattr(container, "_holds", lambda pid, st: False)
    try:
        with pytest.raises(StateError, match="already running"):
            container._read_fifo(fd, _Init(), os.fstat(fd))
    finally:
        os.close(fd)
