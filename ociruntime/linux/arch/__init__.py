"""What differs between CPU architectures: one table (a module of this package) per architecture, the running
machine's chosen once, from uname().machine, when this package is first imported.

Every table module defines (see x86_64.py, aarch64.py; a third architecture is a new module + a line in MACHINES):
  NAME           the table's name: the kernel's uname().machine ("x86_64", "aarch64")
  SECCOMP_ARCH   libseccomp's name of the native syscall ABI ("SCMP_ARCH_X86_64"), as in linux.seccomp.architectures
  SECCOMP_COMPAT the other ABIs the kernel can run here ("SCMP_ARCH_X86", "SCMP_ARCH_X32"; "SCMP_ARCH_ARM"), which
                 a filter must cover too (a 32-bit process sees other syscall numbers)
  AUDIT_ARCH     the AUDIT_ARCH_* value of native syscalls in seccomp_data.arch (raw BPF)
  NR             {syscall name: number} for every call linux/syscalls.py (or a test) makes by number (glibc 2.36
                 has no wrapper for them); tests/test_arch.py checks each table against libseccomp's numbers
  DMZ_*          the sealed exec program of linux/dmz.py: its machine code (assembled from the commented listing
                 beside it), ELF e_machine, where the report fd is patched in, where the code starts when the
                 chmod is left out. A table without DMZ_CODE has no sealed program: create and exec fail (dmz.py)

Use:
  from ociruntime.linux import arch
  arch.MACHINE       uname().machine
  arch.NATIVE        this machine's table, None where there is none
  arch.native()      this machine's table; raises Unsupported (one line naming the machine) where there is none
  arch.nr("setns")   a native syscall number; Unsupported where there is no table
  arch.table("aarch64")  a named table (tests, tools that reason about another architecture)

Imports nothing but posix (the hot path: see fastos.py) and this machine's table, at once: init uses it after
pivot_root, where nothing can be imported any more.
"""
import posix

from ...errors import RuntimeErr

# uname().machine -> table module; arm64 is what some kernels (and Apple's) call aarch64
MACHINES = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
MACHINE = posix.uname().machine


class Unsupported(RuntimeErr):
    """The running architecture has no table: what needs it cannot work here."""


def table(machine: str):
    """The table module of `machine` (a uname().machine value)."""
    name = MACHINES.get(machine)
    if name is None:
        raise Unsupported(f"architecture {machine} is not supported by ociruntime (supported: "
                          f"{', '.join(sorted(set(MACHINES.values())))}; see ociruntime/linux/arch/)")
    return __import__(f"{__name__}.{name}", fromlist=["NR"])


try:
    NATIVE = table(MACHINE)     # now: init needs it after pivot_root, where nothing can be imported any more
except Unsupported:
    NATIVE = None


def native():
    """This machine's table."""
    if NATIVE is None:
        table(MACHINE)          # raises the one-line error
    return NATIVE


def nr(call: str) -> int:
    """The native number of syscall `call` (a name in the tables' NR)."""
    try:
        return native().NR[call]
    except Unsupported as e:
        raise Unsupported(f"{call}: {e}") from None
