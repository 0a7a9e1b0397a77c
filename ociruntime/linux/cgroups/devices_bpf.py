"""cgroup v2 device policy: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, assembled here from the rule list,
loaded with bpf(BPF_PROG_LOAD) and attached to the container's cgroup with bpf(BPF_PROG_ATTACH).

The program sees struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;} with
access_type = (access << 16) | type. Rules are checked from the last to the first, the first match deciding — the
same outcome as writing them in order to v1's devices.allow/devices.deny on top of deny-all:
  allow rule: matches when the device matches and every requested access bit is in the rule;
  deny rule:  matches when the device matches and any requested access bit is in the rule.
No match: deny.
"""
import ctypes
import os
import struct

from .common import CgroupError, device_rules

# bpf(2) commands, program/attach types, flags
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 5, 8, 9, 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI, BPF_F_REPLACE = 2, 4

DEV_TYPE = {"b": 1, "c": 2}                 # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACC = {"m": 1, "r": 2, "w": 4}              # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

# opcodes used (class | op | source)
LDX_W = 0x61        # BPF_LDX | BPF_MEM | BPF_W
MOV32_X = 0xBC      # BPF_ALU | BPF_MOV | BPF_X
MOV64_K = 0xB7      # BPF_ALU64 | BPF_MOV | BPF_K
AND32_K = 0x54      # BPF_ALU | BPF_AND | BPF_K
RSH32_K = 0x74      # BPF_ALU | BPF_RSH | BPF_K
JNE_K = 0x55        # BPF_JMP | BPF_JNE | BPF_K
JEQ_K = 0x15        # BPF_JMP | BPF_JEQ | BPF_K
EXIT = 0x95         # BPF_JMP | BPF_EXIT


def insn(code, dst=0, src=0, off=0, imm=0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_bits(access: str) -> int:
    return sum(ACC[c] for c in set(access))


def _rule_block(allow: bool, t: str, major: int, minor: int, access: str) -> list[tuple]:
    """One rule as instructions; a jump whose offset is None means "to the next rule" (patched by the caller)."""
    out = []
    if t != "a":  # type a: every device, whatever major/minor (as v1's "a")
        out.append((JNE_K, 2, 0, None, DEV_TYPE[t]))
        if major >= 0:
            out.append((JNE_K, 4, 0, None, major))
        if minor >= 0:
            out.append((JNE_K, 5, 0, None, minor))
    bits = _access_bits(access)
    out.append((MOV32_X, 1, 3, 0, 0))
    if allow:
        out.append((AND32_K, 1, 0, 0, ~bits & 7))        # requested bits the rule does not grant
        out.append((JNE_K, 1, 0, None, 0))
    else:
        out.append((AND32_K, 1, 0, 0, bits))             # requested bits the rule denies
        out.append((JEQ_K, 1, 0, None, 0))
    out.append((MOV64_K, 0, 0, 0, 1 if allow else 0))
    out.append((EXIT, 0, 0, 0, 0))
    return out


def assemble(rules: list[tuple]) -> bytes:
    """[(allow, type, major, minor, access)] (in config order) -> program bytes."""
    prog = [insn(LDX_W, 2, 1, 0), insn(MOV32_X, 3, 2), insn(AND32_K, 2, imm=0xFFFF), insn(RSH32_K, 3, imm=16),
            insn(LDX_W, 4, 1, 4), insn(LDX_W, 5, 1, 8)]
    for rule in reversed(rules):
        block = _rule_block(*rule)
        for i, (code, dst, src, off, imm) in enumerate(block):
            prog.append(insn(code, dst, src, len(block) - i - 1 if off is None else off, imm))
    prog += [insn(MOV64_K, 0, imm=0), insn(EXIT)]
    return b"".join(prog)


# -- bpf(2) attribute layouts -----------------------------------------------------------------------------------

class _ProgLoad(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32)]


class _Attach(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("replace_bpf_fd", ctypes.c_uint32)]


class _Query(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32), ("query_flags", ctypes.c_uint32),
                ("attach_flags", ctypes.c_uint32), ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32)]


class _GetFd(ctypes.Structure):
    _fields_ = [("prog_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


def load(code: bytes) -> int:
    """BPF_PROG_LOAD; on a verifier refusal the error carries the verifier's last log line."""
    from .. import syscalls
    buf = ctypes.create_string_buffer(code)
    lic = ctypes.create_string_buffer(b"Apache")
    attr = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(code) // 8,
                     insns=ctypes.addressof(buf), license=ctypes.addressof(lic), prog_name=b"oci_devices")
    try:
        return syscalls.bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD cgroup device program")
    except OSError as e:
        log = ctypes.create_string_buffer(1 << 16)
        attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
        try:
            fd = syscalls.bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD cgroup device program")
        except OSError:
            lines = log.value.decode(errors="replace").strip().splitlines()
            raise CgroupError(f"{e}{': ' + lines[-1] if lines else ''}", e.errno) from None
        return fd


def attached(cgroup_fd: int) -> list[int]:
    """Ids of the device programs attached to the cgroup."""
    from .. import syscalls
    ids = (ctypes.c_uint32 * 64)()
    q = _Query(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE, prog_ids=ctypes.addressof(ids), prog_cnt=64)
    syscalls.bpf(BPF_PROG_QUERY, q, "BPF_PROG_QUERY")
    return list(ids[:q.prog_cnt])


def _fd_by_id(prog_id: int) -> int:
    from .. import syscalls
    return syscalls.bpf(BPF_PROG_GET_FD_BY_ID, _GetFd(prog_id=prog_id), f"BPF_PROG_GET_FD_BY_ID {prog_id}")


def apply_rules(cgroup_path: str, devices, *, defaults: bool = True):
    """Program linux.resources.devices (plus runc's defaults) into the cgroup, replacing the programs attached
    before: the new one is attached first, so there is no moment without a policy."""
    from .. import syscalls
    code = assemble(device_rules(devices, defaults=defaults))
    cg = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    prog = -1
    old_fds = []
    try:
        old_fds = [_fd_by_id(i) for i in attached(cg)]
        prog = load(code)
        if len(old_fds) == 1:  # swap atomically
            syscalls.bpf(BPF_PROG_ATTACH, _Attach(cg, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI | BPF_F_REPLACE,
                                                  old_fds[0]), f"BPF_PROG_ATTACH {cgroup_path}")
        else:
            syscalls.bpf(BPF_PROG_ATTACH, _Attach(cg, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI),
                         f"BPF_PROG_ATTACH {cgroup_path}")
            for fd in old_fds:
                syscalls.bpf(BPF_PROG_DETACH, _Attach(cg, fd, BPF_CGROUP_DEVICE), f"BPF_PROG_DETACH {cgroup_path}")
    except OSError as e:
        raise CgroupError(f"linux.resources.devices: {e}", e.errno) from None
    finally:
        for fd in old_fds + ([prog] if prog >= 0 else []) + [cg]:
            os.close(fd)
