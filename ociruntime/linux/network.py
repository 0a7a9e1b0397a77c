"""Network: bring loopback up in a new network namespace (a plain ioctl; pyroute2 only for netDevices)."""
import _socket  # not `socket`: ~3 ms of imports on the create path
import fcntl
import struct

from .syscalls import SyscallError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            req = struct.pack("16sh", b"lo", 0)
            flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
        except OSError as e:
            raise SyscallError("ioctl SIOCSIFFLAGS", "lo up", e.errno) from None
    finally:
        s.close()
