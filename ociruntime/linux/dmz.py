"""The container's program is exec'd through a tiny sealed in-memory program, never by the runtime itself
(CVE-2019-5736 class).

A script whose interpreter is `/proc/self/exe` (or an execveat of /proc/self/exe) is resolved by the kernel in the
process doing the execve. If that process were the runtime, the runtime's binary (here: the host's Python
interpreter) would start as a container process, dumpable again after execve, and the container could open its
/proc/<pid>/exe and, once nothing runs it, write to the host's interpreter. Non-dumpable cannot help: execve resets
it. So init (and exec) execve this program from a sealed memfd instead; it execs the container's program in turn,
and `/proc/self/exe` during that execve is the sealed copy: no host file.

The program (x86-64, 181 bytes, assembled from the source below; the two 0x7eadbeef immediates are patched with
the report fd, and with a seccomp filter the first four instructions become NOPs):

        lea rdi, [rip + exe_path]   ; chmod("/proc/self/exe", 0): a script whose interpreter is /proc/self/exe
        xor esi, esi                ;   finds us not executable (EACCES) instead of re-exec'ing itself forever
        mov eax, 90
        syscall
        mov edi, ERRFD              ; fcntl(ERRFD, F_SETFD, FD_CLOEXEC): the report fd never reaches the program
        mov esi, 2
        mov edx, 1
        mov eax, 72
        syscall
        test eax, eax               ; refused (by a filter): report it, never exec with ERRFD open
        js 5f
        mov rdx, [rsp]              ; execve(argv[0], &argv[1], envp)
        lea rsi, [rsp + 16]
        lea rdx, [rsp + rdx*8 + 16]
        mov rdi, [rsp + 8]
        mov eax, 59
        syscall
        neg eax                     ; execve failed: errno
        jmp 4f
    5:  neg eax                     ; fcntl failed: errno | 0x80
        or al, 0x80
    4:  mov byte [rsp - 2], 0       ; writev(ERRFD, [{"\\0", errno}, {argv[0], strlen}]), exit_group(127)
        mov byte [rsp - 1], al
        mov rsi, [rsp + 8]
        xor edx, edx
    1:  cmp byte [rsi + rdx], 0
        je 2f
        inc rdx
        jmp 1b
    2:  lea rax, [rsp - 2]
        mov [rsp - 40], rax
        mov qword [rsp - 32], 2
        mov [rsp - 24], rsi
        mov [rsp - 16], rdx
        mov edi, ERRFD
        lea rsi, [rsp - 40]
        mov edx, 2
        mov eax, 20
        syscall
        mov edi, 127
        mov eax, 231
        syscall
    exe_path: .asciz "/proc/self/exe"

Under a seccomp filter (loaded before this program runs) the chmod is left out, as a filter may kill on it: a
`#!/proc/self/exe` script then re-execs itself in a loop inside its container, which is no escape; fcntl is needed
(fail closed if refused) and so is execve, which the container's program needs anyway: the program is started by
execve of /proc/self/fd/N first, execveat(AT_EMPTY_PATH) only without /proc. Exec failures come back on the report
fd as b"\\0" + errno byte + path, which failure_message() turns into the usual one-line error.

Not used (the runtime execs directly) where it cannot work: not x86-64; SELinux labels (the memfd is no
entrypoint of the container's domain: runc skips its own sealed binary there too). Where it should work but
cannot be made (vm.memfd_noexec=2 forbids executable memfds), create and exec fail: a direct exec would reopen
the hole. With AppArmor, the exec transition lands on this program: the
profile must let it exec the container's program (runtime/default profiles allow exec). A container holding
CAP_SYS_PTRACE without a user namespace can open /proc/<pid>/exe of a runtime process despite non-dumpable: that
is no more protected here than in runc without its sealed binary.
"""
import os
import struct

_CODE = bytes.fromhex(
    "488d3d9f00000031f6b85a0000000f05bfefbead7ebe02000000ba01000000b8480000000f0585c0781e488b1424488d742410488d54"
    "d410488b7c2408b83b0000000f05f7d8eb04f7d80c80c64424fe00884424ff488b74240831d2803c1600740548ffc2ebf5488d4424fe"
    "48894424d848c74424e00200000048897424e848895424f0bfefbead7e488d7424d8ba02000000b8140000000f05bf7f000000b8e700"
    "00000f052f70726f632f73656c662f65786500")
_ERRFD_AT = (0x11, 0x85)
_CHMOD = slice(0x00, 0x10)       # lea, xor, mov, syscall
_MFD_EXEC = 0x10                 # Linux 6.3: ask for an executable memfd explicitly (vm.memfd_noexec=1)
_BASE = 0x400000
_PT_LOAD, _PT_GNU_STACK = 1, 0x6474E551


def supported() -> bool:
    return os.uname().machine == "x86_64"


def image(err_fd: int, chmod: bool = True) -> bytes:
    """The ELF file: header, two program headers (one R+X load of the whole file, a non-executable stack), code."""
    code = bytearray(_CODE)
    for at in _ERRFD_AT:
        struct.pack_into("<I", code, at, err_fd)
    if not chmod:
        code[_CHMOD] = b"\x90" * (_CHMOD.stop - _CHMOD.start)
    off = 64 + 2 * 56
    size = off + len(code)
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, 0x3E, 1, _BASE + off, 64, 0, 0,
                       64, 56, 2, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", _PT_LOAD, 5, 0, _BASE, _BASE, size, size, 0x1000)
    stack = struct.pack("<IIQQQQQQ", _PT_GNU_STACK, 6, 0, 0, 0, 0, 0, 16)
    return ehdr + load + stack + bytes(code)


def prepare(err_fd: int, uid: int = 0, gid: int = 0, chmod: bool = True) -> int:
    """A sealed memfd holding the program (close-on-exec), owned by the user the program will run as so its
    chmod works. Call before seccomp is loaded (memfd_create may be filtered)."""
    import fcntl
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        try:
            fd = os.memfd_create("ociruntime-exec", flags | _MFD_EXEC)
        except OSError as e:
            if e.errno != 22:        # EINVAL: a kernel before 6.3, without MFD_EXEC (and without memfd_noexec)
                raise
            fd = os.memfd_create("ociruntime-exec", flags)
    except OSError as e:
        from ..errors import SyscallError
        why = "memfd_create (vm.memfd_noexec=2 forbids executable memfds)" if e.errno == 13 else "memfd_create"
        raise SyscallError(why, "the sealed exec program (linux/dmz.py)", e.errno) from None
    try:
        os.write(fd, image(err_fd, chmod))
        os.fchmod(fd, 0o555)
        os.fchown(fd, uid, gid)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW |
                    fcntl.F_SEAL_WRITE)
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
