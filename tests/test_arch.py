"""linux/arch/: one table per architecture, this machine's chosen from uname().machine."""
import ctypes
import pathlib
import subprocess
import sys

import pytest

from ociruntime.linux import arch, syscalls

TABLES = sorted(set(arch.MACHINES.values()))
FIELDS = {"NAME": str, "SECCOMP_ARCH": str, "SECCOMP_COMPAT": tuple, "AUDIT_ARCH": int, "NR": dict,
          "DMZ_CODE": bytes, "DMZ_ERRFD_AT": tuple, "DMZ_SKIP_CHMOD": int, "DMZ_ELF_MACHINE": int}


def _libseccomp():
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("libseccomp.so.2 is not installed")
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    return lib


@pytest.mark.parametrize("machine", TABLES)
def test_every_table_defines_every_field_and_the_same_syscalls(machine):
    t = arch.table(machine)
    for field, kind in FIELDS.items():
        assert isinstance(getattr(t, field), kind), f"{machine}: {field}"
    assert t.NAME == machine
    assert set(t.NR) == set(arch.table("x86_64").NR)


@pytest.mark.parametrize("machine", TABLES)
def test_syscall_numbers_and_audit_arch_are_libseccomps_for_that_architecture(machine):
    # libseccomp carries the kernel's syscall tables of every architecture: a wrong number here would be another
    # call on that machine (x86-64's 308 setns is nothing on arm64, whose setns is 268)
    lib, t = _libseccomp(), arch.table(machine)
    token = lib.seccomp_arch_resolve_name(t.SECCOMP_ARCH.removeprefix("SCMP_ARCH_").lower().encode())
    assert token == t.AUDIT_ARCH
    assert {name: lib.seccomp_syscall_resolve_name_arch(token, name.encode()) for name in t.NR} == t.NR
    for compat in t.SECCOMP_COMPAT:
        assert lib.seccomp_arch_resolve_name(compat.removeprefix("SCMP_ARCH_").lower().encode()), compat


def test_this_machines_table_is_chosen_from_uname():
    import os
    machine = os.uname().machine
    if machine not in arch.MACHINES:
        assert arch.NATIVE is None
        return
    assert arch.MACHINE == machine and arch.native() is arch.NATIVE and arch.NATIVE.NAME == arch.MACHINES[machine]
    assert arch.nr("setns") == arch.NATIVE.NR["setns"]


def test_arm64_is_an_alias_of_aarch64():
    assert arch.table("arm64") is arch.table("aarch64")


def test_an_unknown_architecture_is_a_one_line_error_naming_it_and_the_supported_ones(monkeypatch):
    with pytest.raises(arch.Unsupported, match=r"architecture riscv64 is not supported by ociruntime "
                       r"\(supported: aarch64, x86_64; see ociruntime/linux/arch/\)"):
        arch.table("riscv64")
    monkeypatch.setattr(arch, "NATIVE", None)
    monkeypatch.setattr(arch, "MACHINE", "riscv64")
    with pytest.raises(arch.Unsupported, match=r"^setns: architecture riscv64 is not supported"):
        syscalls.setns(0)


def test_the_tables_module_imports_neither_os_nor_another_architectures_table():
    root = str(pathlib.Path(__file__).resolve().parents[1])
    code = (f"import sys; sys.path.insert(0, {root!r}); from ociruntime.linux import arch; "
            "print(sorted(m for m in sys.modules if m == 'os' or m.startswith('ociruntime.linux.arch.')))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True).stdout.strip()
    assert out == str([f"ociruntime.linux.arch.{arch.MACHINES[arch.MACHINE]}"] if arch.NATIVE else [])
