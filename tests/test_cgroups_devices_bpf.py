"""The cgroup v2 device program: its meaning checked with a small interpreter of the instructions it uses, and the
real thing (load, attach, replace, enforce) on a cgroup2 hierarchy when one is mounted (the empty cgroup2 of a
hybrid host is enough: device programs need no controller)."""
import os
import struct
import uuid

import pytest

from ociruntime.linux.cgroups import common, devices_bpf as bpf

R, W, M = 2, 4, 1
CHR, BLK = 2, 1


def run(code: bytes, dev_type: int, major: int, minor: int, access: int) -> int:
    """Interpret the subset of eBPF the assembler emits. Returns r0."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack("<BBhi", code[i:i + 8]) for i in range(0, len(code), 8)]
    for _ in range(10000):
        op, regbits, off, imm = insns[pc]
        dst, src = regbits & 0xF, regbits >> 4
        pc += 1
        if op == bpf.LDX_W:
            assert src == 1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == bpf.MOV32_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif op == bpf.MOV64_K:
            regs[dst] = imm
        elif op == bpf.AND32_K:
            regs[dst] = regs[dst] & imm & 0xFFFFFFFF
        elif op == bpf.RSH32_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif op == bpf.JNE_K:
            pc += off if regs[dst] != imm else 0
        elif op == bpf.JEQ_K:
            pc += off if regs[dst] == imm else 0
        elif op == bpf.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("no exit")


def prog(devices, defaults=False):
    return bpf.assemble(common.device_rules(devices, defaults=defaults))


def test_default_is_deny():
    code = prog([])
    assert run(code, CHR, 1, 3, R) == 0


def test_runc_defaults_allow_null_and_pts_and_mknod():
    code = prog([{"allow": False, "access": "rwm"}], defaults=True)
    assert run(code, CHR, 1, 3, R | W) == 1
    assert run(code, CHR, 136, 7, R | W) == 1
    assert run(code, BLK, 8, 0, M) == 1
    assert run(code, BLK, 8, 0, R) == 0
    assert run(code, CHR, 1, 1, R) == 0


def test_allow_needs_every_requested_access():
    code = prog([{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}])
    assert run(code, CHR, 10, 229, R) == 1
    assert run(code, CHR, 10, 229, R | W) == 0
    assert run(code, CHR, 10, 228, R) == 0
    assert run(code, BLK, 10, 229, R) == 0


def test_later_rule_overrides_earlier_and_deny_takes_any_overlap():
    code = prog([{"allow": True, "access": "rwm"},
                 {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}])
    assert run(code, CHR, 1, 3, R) == 1
    assert run(code, CHR, 1, 3, W) == 0
    assert run(code, CHR, 1, 3, R | W) == 0
    assert run(code, BLK, 7, 0, R | W) == 1


def test_wildcard_major_and_minor():
    code = prog([{"allow": True, "type": "c", "major": 136, "access": "rw"},
                 {"allow": True, "type": "b", "minor": 0, "access": "r"}])
    assert run(code, CHR, 136, 99, W) == 1
    assert run(code, BLK, 8, 0, R) == 1
    assert run(code, BLK, 8, 1, R) == 0


def test_bad_rule_is_a_config_error():
    with pytest.raises(common.CgroupError, match=r"devices\[0\].type"):
        common.device_rules([{"allow": True, "type": "x", "access": "r"}])
    with pytest.raises(common.CgroupError, match=r"devices\[0\].access"):
        common.device_rules([{"allow": True, "access": "rx"}])


# -- real kernel -------------------------------------------------------------------------------------------------

def _cgroup2_root():
    for fstype, mnt, _, _ in common.cgroup_mounts():
        if fstype == "cgroup2":
            return mnt
    return None


@pytest.fixture
def v2cg():
    if "1" not in (os.environ.get("OCIRUNTIME_CONFINED"), os.environ.get("CGROUP2_VM")) or os.geteuid() != 0:
        pytest.skip("creates cgroups: run as root under spec-tests/confine.sh (or in the cgroup2 VM with CGROUP2_VM=1)")
    root = _cgroup2_root()
    if root is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    from ociruntime.linux.cgroups.v2 import V2Manager
    m = V2Manager(os.path.join(root, f"test-bpf-{uuid.uuid4().hex[:8]}"), root, controllers=())
    m.create()
    yield m
    m.destroy()
    assert not os.path.exists(m.path)


def _probe(paths):
    out = 0
    for bit, (path, flags) in enumerate(paths):
        try:
            os.close(os.open(path, flags))
        except PermissionError:
            out |= 1 << bit
        except OSError:
            pass  # allowed by the cgroup, refused by the driver (e.g. ENXIO: no /dev/mem in this kernel)
    return out


def _in_cgroup(m, fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.read(r, 1)
            os._exit(fn())
        except BaseException:
            os._exit(99)
    m.apply(pid)
    os.write(w, b"x")
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_program_is_enforced_and_replaced_not_stacked(v2cg, tmp_path):
    mem = str(tmp_path / "mem")
    os.mknod(mem, 0o600 | 0o020000, os.makedev(1, 1))
    v2cg.set({"devices": [{"allow": False, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]}, initial=True)
    probes = (("/dev/null", os.O_RDWR), ("/dev/kmsg", os.O_RDONLY), ("/dev/kmsg", os.O_WRONLY), (mem, os.O_RDONLY))
    assert _in_cgroup(v2cg, lambda: _probe(probes)) == 0b1100
    fd = os.open(v2cg.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        first = bpf.attached(fd)
        # an update replaces the program: now everything is allowed
        v2cg.set({"devices": [{"allow": True, "access": "rwm"}]})
        second = bpf.attached(fd)
    finally:
        os.close(fd)
    assert len(first) == 1 and len(second) == 1 and first != second
    assert _in_cgroup(v2cg, lambda: _probe(probes)) == 0
