"""The parent/child channel of `create` (and `exec`): a SOCK_SEQPACKET socketpair, one message per packet.

A message is `TAG` or `TAG payload` (UTF-8). The sequence, child side first:

    child  -> parent   MAPS                 a new user namespace exists: write uid_map/gid_map for me
    parent -> child    GO                   maps written (or: placed in cgroup, hooks done — every ack is GO)
    child  -> parent   FDS                  user and mount namespaces exist: open the bind sources in mine
    parent -> child    FDS <i,j,...>        O_PATH fds of mounts[i], mounts[j]... (SCM_RIGHTS), opened with the
                                            host's rights by a helper that joined the child's mount namespace
    child  -> parent   PID <host pid>       init's pid as the runtime sees it (sent by the intermediate after fork)
    child  -> parent   HOOKS                namespaces and mounts are ready: run prestart + createRuntime hooks
    parent -> child    GO
    child  -> parent   LOG <level> <msg>    a debug or warning line for --log (sent just before READY); level
                                            `step`: <process>\t<step>\t<ms>\t<cpu ms>, a line of --debug's
                                            step trace
    child  -> parent   READY                setup done, blocking on the exec FIFO now
    child  -> parent   ERR <message>        any failure; the child then exits. `create` prints the message.

The parent always answers a request before the child goes on, so every step is ordered.
"""
import sys
import _socket  # the C module: `import socket` costs ~3 ms that every create would pay

from . import fastos as _os
from .errors import InitError

MAPS, GO, PID, HOOKS, READY, ERR, LOG, FDS = "MAPS", "GO", "PID", "HOOKS", "READY", "ERR", "LOG", "FDS"


def pair():
    """(parent_end, child_end); both close-on-exec, so neither reaches the container's process."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)


def send(sock, tag: str, payload: str = ""):
    sock.send((tag + (" " + payload if payload else "")).encode())


def _recv(sock, flags: int = 0) -> bytes:
    """One packet. A peer that exits with our messages still unread in its queue sets ECONNRESET on our end, and
    the kernel reports that error before the packets already queued for us (SOCK_SEQPACKET goes through the
    datagram receive path): the child's last word, its ERR, is still there, so read again (the error is cleared)."""
    try:
        return sock.recv(65536, flags)
    except ConnectionResetError:
        return sock.recv(65536, flags)


def recv(sock) -> tuple[str, str]:
    """Next message; EOF (peer died without a word) becomes an InitError."""
    data = _recv(sock)
    if not data:
        raise InitError("container init exited without reporting (see its stderr)")
    tag, _, payload = data.decode(errors="replace").partition(" ")
    return tag, payload


def expect(sock, *tags: str) -> tuple[str, str]:
    tag, payload = recv(sock)
    if tag == ERR:
        raise InitError(payload)
    if tag not in tags:
        raise InitError(f"sync: expected {'/'.join(tags)}, got {tag}")
    return tag, payload


def send_fds(sock, fds: dict) -> None:
    """FDS <indexes> with the fds {index: fd} attached (SCM_RIGHTS)."""
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds.values()))]
    sock.sendmsg([(FDS + " " + ",".join(map(str, fds))).encode()], anc if fds else [])


def recv_fds(sock) -> dict:
    """The answer to FDS: {index: fd}, the fds close-on-exec."""
    data, anc, _, _ = sock.recvmsg(65536, _socket.CMSG_SPACE(4 * 1024), _socket.MSG_CMSG_CLOEXEC)
    fds = [int.from_bytes(d[k:k + 4], sys.byteorder) for lvl, typ, d in anc
           if (lvl, typ) == (_socket.SOL_SOCKET, _socket.SCM_RIGHTS) for k in range(0, len(d) - 3, 4)]
    tag, _, payload = data.decode(errors="replace").partition(" ")
    if tag != FDS:
        for fd in fds:
            _os.close(fd)
        raise InitError(payload if tag == ERR else f"sync: expected {FDS}, got {tag}")
    return dict(zip((int(i) for i in payload.split(",") if i), fds))


def recv_or_eof(sock) -> tuple[str, str]:
    """Like recv, but EOF is a normal answer (tag ""): the peer exec'd and its CLOEXEC end closed."""
    data = _recv(sock)
    if not data:
        return "", ""
    if data[:1] == b"\0":             # the sealed exec program's report of a failed execve (linux/dmz.py)
        from .linux import dmz
        return ERR, dmz.failure_message(data) or "exec failed"
    tag, _, payload = data.decode(errors="replace").partition(" ")
    return tag, payload


def log_line(log, payload: str) -> None:
    """Write a child's LOG message to the runtime's log (debug lines only with --debug)."""
    level, _, msg = payload.partition(" ")
    if level == "step":
        who, name, ms, cpu_ms = msg.split("\t")
        log.step(who, name, float(ms), float(cpu_ms))
        return
    (log.warn if level == "warning" else log.debug)(msg)


def step_note(notes: list):
    """Steps' emit for a forked child: the trace lines travel to the parent as LOG step messages."""
    return lambda who, name, ms, cpu_ms: notes.append(f"step {who}\t{name}\t{ms:.3f}\t{cpu_ms:.3f}")


def raise_pending_error(sock) -> None:
    """If the child already reported an error (without waiting for us), raise it; otherwise return."""
    try:
        data = _recv(sock, _socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return
    tag, _, payload = data.decode(errors="replace").partition(" ")
    if tag == ERR:
        raise InitError(payload)
