"""The container's program is exec'd through a tiny sealed in-memory program, never by the runtime itself
(CVE-2019-5736 class).

A script whose interpreter is `/proc/self/exe` (or an execveat of /proc/self/exe) is resolved by the kernel in the
process doing the execve. If that process were the runtime, the runtime's binary (here: the host's Python
interpreter) would start as a container process, dumpable again after execve, and the container could open its
/proc/<pid>/exe and, once nothing runs it, write to the host's interpreter. Non-dumpable cannot help: execve resets
it. So init (and exec) execve this program from a sealed memfd instead; it execs the container's program in turn,
and `/proc/self/exe` during that execve is the sealed copy: no host file.

The program is machine code, one per architecture, in the tables of linux/arch/ (DMZ_*), each beside the commented
assembly listing it was assembled from. It does, in this order: chmod("/proc/self/exe", 0) (left out under
seccomp, below); fcntl(report fd, F_SETFD, FD_CLOEXEC), failing closed (reported, no exec) if refused; execve of
argv[0] with argv[1:] and the environment; if that fails, writev of b"\\0" + errno byte + argv[0] to the report fd
and exit 127.

Under a seccomp filter (loaded before this program runs) the chmod is left out, as a filter may kill on it: a
`#!/proc/self/exe` script then re-execs itself in a loop inside its container, which is no escape; fcntl is needed
(fail closed if refused) and so is execve, which the container's program needs anyway: the program is started by
execve of /proc/self/fd/N first, execveat(AT_EMPTY_PATH) only without /proc. Exec failures come back on the report
fd as b"\\0" + errno byte + path, which failure_message() turns into the usual one-line error.

Not used (the runtime execs directly) with SELinux labels (the memfd is no entrypoint of the container's domain:
runc skips its own sealed binary there too). Where it cannot be made (vm.memfd_noexec=2 forbids executable
memfds; an architecture without a program in its table), create and exec fail: a direct exec would reopen the
hole. With AppArmor, the exec transition lands on this program: the profile must let it exec the container's
program (runtime/default profiles allow exec). A container holding CAP_SYS_PTRACE without a user namespace can
open /proc/<pid>/exe of a runtime process despite non-dumpable: for such a container the runtime's visible
processes run a read-only copy of the interpreter (linux/sealexe.py).
"""
from .. import fastos as os
import struct

from . import arch

_MFD_EXEC = 0x10                 # Linux 6.3: ask for an executable memfd explicitly (vm.memfd_noexec=1)
_BASE = 0x400000
_ALIGN = 0x10000                 # the largest page size of the architectures (arm64 kernels may use 64K pages)
_PT_LOAD, _PT_GNU_STACK = 1, 0x6474E551


def _table():
    """This machine's table, if it has the program (linux/arch/)."""
    return arch.NATIVE if getattr(arch.NATIVE, "DMZ_CODE", None) else None


def supported() -> bool:
    """This architecture has the program."""
    return _table() is not None


def image(err_fd: int, chmod: bool = True, table=None) -> bytes:
    """The ELF file: header, two program headers (one R+X load of the whole file, a non-executable stack), code.
    `table`: another architecture's (linux/arch/) instead of this machine's."""
    t = table or _table()
    if t is None:
        raise arch.Unsupported(f"the sealed exec program (linux/dmz.py) has no machine code for {arch.MACHINE}: "
                               "add DMZ_* to its table in ociruntime/linux/arch/")
    code = bytearray(t.DMZ_CODE)
    for at in t.DMZ_ERRFD_AT:
        struct.pack_into("<I", code, at, err_fd)
    off = 64 + 2 * 56
    size = off + len(code)
    entry = _BASE + off + (0 if chmod else t.DMZ_SKIP_CHMOD)
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, t.DMZ_ELF_MACHINE, 1, entry, 64, 0,
                       0, 64, 56, 2, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", _PT_LOAD, 5, 0, _BASE, _BASE, size, size, _ALIGN)
    stack = struct.pack("<IIQQQQQQ", _PT_GNU_STACK, 6, 0, 0, 0, 0, 0, 16)
    return ehdr + load + stack + bytes(code)


def executable_memfd(name: str, what: str) -> int:
    """A new memfd (close-on-exec, sealable) that execve may start, asked for as executable (MFD_EXEC: under
    vm.memfd_noexec=1 a memfd is not, unless asked). `what` names it in the error (vm.memfd_noexec=2 refuses)."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        try:
            return os.memfd_create(name, flags | _MFD_EXEC)
        except OSError as e:
            if e.errno != 22:        # EINVAL: a kernel before 6.3, without MFD_EXEC (and without memfd_noexec)
                raise
            return os.memfd_create(name, flags)
    except OSError as e:
        from ..errors import SyscallError
        why = "memfd_create (vm.memfd_noexec=2 forbids executable memfds)" if e.errno == 13 else "memfd_create"
        raise SyscallError(why, what, e.errno) from None


def seal(fd: int) -> None:
    """No write, resize or further seal of the memfd, ever."""
    import fcntl
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)


def prepare(err_fd: int, uid: int = 0, gid: int = 0, chmod: bool = True) -> int:
    """A sealed memfd holding the program (close-on-exec), owned by the user the program will run as so its
    chmod works. Call before seccomp is loaded (memfd_create may be filtered)."""
    data = image(err_fd, chmod)      # first: an architecture without the program fails here, before any fd
    fd = executable_memfd("ociruntime-exec", "the sealed exec program (linux/dmz.py)")
    try:
        os.write(fd, data)
        os.fchmod(fd, 0o555)
        os.fchown(fd, uid, gid)
        seal(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def execve(memfd: int, err_fd: int, path: str, args: list, env: dict):
    """Exec the program, which execs path with args. Returns only if the program itself could not be exec'd."""
    os.set_inheritable(err_fd, True)
    argv = [path, *args]
    try:
        os.execve(f"/proc/self/fd/{memfd}", argv, env)  # execve: what a seccomp filter must allow anyway
    except FileNotFoundError:
        os.execve(memfd, argv, env)                     # no /proc in the container: execveat(fd, "", AT_EMPTY_PATH)


def failure_message(data: bytes) -> str | None:
    """The one-line error for what the program wrote on a failed execve, or None if `data` is not such a report."""
    if len(data) < 2 or data[0] != 0:
        return None
    path = data[2:].decode(errors="replace")
    if data[1] & 0x80:
        return (f"exec {path}: the exec program could not close its report fd (seccomp?): "
                f"{os.strerror(data[1] & 0x7F).lower()}")
    return f"exec {path}: {os.strerror(data[1]).lower()}"
