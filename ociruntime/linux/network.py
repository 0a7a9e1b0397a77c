"""Network: bring loopback up in a new network namespace (a plain ioctl; pyroute2 only for netDevices)."""
import fcntl
import socket
import struct

from .syscalls import SyscallError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            req = struct.pack("16sh", b"lo", 0)
            flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
        except OSError as e:
            raise SyscallError("ioctl SIOCSIFFLAGS", "lo up", e.errno) from None
