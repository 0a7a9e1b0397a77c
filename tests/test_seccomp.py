"""linux.seccomp through libseccomp: each profile is loaded in a forked child, which then tries the filtered
syscall and reports the errno it got (or is killed by the filter) back through a pipe."""
import ctypes
import errno
import json
import os
import signal
import socket
import struct
import threading

import pytest
from childproc import run_forked

from ociruntime.errors import ConfigError, RuntimeErr
from ociruntime.linux import seccomp

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def run(cfg, probe, **kw):
    """Fork; the child loads cfg then runs probe() and writes its JSON result. Returns (result or None, status)."""
    def child():
        seccomp.load(cfg, **kw)
        return probe()
    return run_forked(child)


def errno_of(fn):
    """The errno fn() fails with, 0 when it succeeds."""
    def probe():
        try:
            fn()
            return 0
        except OSError as e:
            return e.errno
    return probe


def mkdir_probe(tmp_path):
    return errno_of(lambda: os.mkdir(tmp_path / "d"))


def status_field(name):
    with open("/proc/self/status") as f:
        return next(line.split(":")[1].strip() for line in f if line.startswith(name + ":"))


ALLOW = "SCMP_ACT_ALLOW"


def deny(names, action="SCMP_ACT_ERRNO", **extra):
    return {"defaultAction": ALLOW, "syscalls": [{"names": names, "action": action, **extra}]}


def test_errno_action_returns_the_configured_errno(tmp_path):
    res, _ = run(deny(["mkdir", "mkdirat"], errnoRet=errno.EROFS), mkdir_probe(tmp_path))
    assert res == {"ok": errno.EROFS}
    assert not (tmp_path / "d").exists()


def test_errno_action_defaults_to_eperm(tmp_path):
    res, _ = run(deny(["mkdir", "mkdirat"]), mkdir_probe(tmp_path))
    assert res == {"ok": errno.EPERM}


def test_default_errno_action_with_default_errno_ret_and_an_allow_list(tmp_path):
    needed = ["write", "exit_group", "exit", "brk", "mmap", "munmap", "mremap", "madvise", "rt_sigprocmask",
              "rt_sigaction", "futex", "close", "getpid", "gettid"]
    cfg = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EXDEV,
           "syscalls": [{"names": needed, "action": ALLOW}]}
    res, _ = run(cfg, mkdir_probe(tmp_path))
    assert res == {"ok": errno.EXDEV}


def test_seccomp_mode_is_filter_and_no_new_privs_is_not_forced():
    res, _ = run(deny(["swapon"]), lambda: [status_field("Seccomp"), status_field("NoNewPrivs")])
    assert res == {"ok": ["2", "0"]}


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_actions_end_the_process_with_sigsys(action):
    res, st = run(deny(["getppid"], action), lambda: os.getppid())
    assert res is None
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGSYS


def test_trap_delivers_sigsys_to_a_handler():
    def probe():
        got = []
        signal.signal(signal.SIGSYS, lambda *a: got.append("SIGSYS"))
        r = os.getppid()
        return got, r

    res, _ = run(deny(["getppid"], "SCMP_ACT_TRAP"), probe)
    assert res["ok"][0] == ["SIGSYS"]


def test_log_action_lets_the_syscall_through(tmp_path):
    res, _ = run(deny(["mkdir", "mkdirat"], "SCMP_ACT_LOG"), mkdir_probe(tmp_path))
    assert res == {"ok": 0}


def test_trace_action_without_a_tracer_fails_with_enosys(tmp_path):
    res, _ = run(deny(["mkdir", "mkdirat"], "SCMP_ACT_TRACE", errnoRet=7), mkdir_probe(tmp_path))
    assert res == {"ok": errno.ENOSYS}


def test_allow_rule_under_a_stricter_default(tmp_path):
    cfg = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
                        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}]}   # same as default: skipped
    res, _ = run(cfg, mkdir_probe(tmp_path))
    assert res == {"ok": errno.EACCES}


# --- argument filters: lseek(fd, offset, whence) has three plain integer arguments ---------------------------

def lseeks(calls):
    def probe():
        fd = os.open("/dev/zero", os.O_RDONLY)
        out = []
        for off, whence in calls:
            try:
                os.lseek(fd, off, whence)
                out.append(0)
            except OSError as e:
                out.append(e.errno)
        return out
    return probe


@pytest.mark.parametrize("op,value,blocked", [
    ("SCMP_CMP_EQ", 16, [16]), ("SCMP_CMP_NE", 16, [0, 8, 32]), ("SCMP_CMP_LT", 16, [0, 8]),
    ("SCMP_CMP_LE", 16, [0, 8, 16]), ("SCMP_CMP_GT", 16, [32]), ("SCMP_CMP_GE", 16, [16, 32])])
def test_argument_operators(op, value, blocked):
    offsets = [0, 8, 16, 32]
    cfg = deny(["lseek"], errnoRet=errno.EDOM, args=[{"index": 1, "op": op, "value": value}])
    res, _ = run(cfg, lseeks([(o, 0) for o in offsets]))
    assert res == {"ok": [errno.EDOM if o in blocked else 0 for o in offsets]}


def test_masked_eq_compares_the_masked_argument_with_value_two():
    cfg = deny(["lseek"], errnoRet=errno.EDOM,
               args=[{"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 0xF0, "valueTwo": 0x10}])
    res, _ = run(cfg, lseeks([(0x13, 0), (0x23, 0), (0x1F, 0), (0x03, 0)]))
    assert res == {"ok": [errno.EDOM, 0, errno.EDOM, 0]}


def test_args_on_different_indexes_must_all_match():
    cfg = deny(["lseek"], errnoRet=errno.EDOM, args=[{"index": 1, "op": "SCMP_CMP_EQ", "value": 5},
                                                     {"index": 2, "op": "SCMP_CMP_EQ", "value": os.SEEK_CUR}])
    res, _ = run(cfg, lseeks([(5, os.SEEK_CUR), (5, os.SEEK_SET), (6, os.SEEK_CUR)]))
    assert res == {"ok": [errno.EDOM, 0, 0]}


def test_args_on_the_same_index_match_either_like_runc():
    cfg = deny(["lseek"], errnoRet=errno.EDOM, args=[{"index": 2, "op": "SCMP_CMP_EQ", "value": os.SEEK_CUR},
                                                     {"index": 2, "op": "SCMP_CMP_EQ", "value": os.SEEK_END}])
    res, _ = run(cfg, lseeks([(0, os.SEEK_SET), (0, os.SEEK_CUR), (0, os.SEEK_END)]))
    assert res == {"ok": [0, errno.EDOM, errno.EDOM]}


# --- names, architectures, flags -------------------------------------------------------------------------------

def test_unknown_syscall_names_are_skipped_and_reported_via_debug(tmp_path):
    seen = []
    ctx = seccomp.build(deny(["mkdir", "no_such_syscall_xyz"]), debug=seen.append)
    seccomp._lib().seccomp_release(ctx)
    assert len(seen) == 1 and "no_such_syscall_xyz" in seen[0] and "syscalls[0].names[1]" in seen[0]
    res, _ = run(deny(["no_such_syscall_xyz", "mkdir", "mkdirat"]), mkdir_probe(tmp_path))
    assert res == {"ok": errno.EPERM}


def test_syscalls_of_other_architectures_only_are_accepted(tmp_path):
    cfg = deny(["socketcall", "mkdir", "mkdirat"])
    cfg["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    res, _ = run(cfg, mkdir_probe(tmp_path))
    assert res == {"ok": errno.EPERM}


@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                  "SECCOMP_FILTER_FLAG_TSYNC"])
def test_filter_flags_load(flag, tmp_path):
    cfg = deny(["mkdir", "mkdirat"])
    cfg["flags"] = [flag]
    res, _ = run(cfg, mkdir_probe(tmp_path))
    assert res == {"ok": errno.EPERM}


def test_wait_killable_recv_loads_or_says_libseccomp_lacks_it(tmp_path):
    cfg = deny(["mkdir", "mkdirat"])
    cfg["flags"] = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    res, _ = run(cfg, mkdir_probe(tmp_path))
    assert res == {"ok": errno.EPERM} or (
        res["err"] == "RuntimeErr" and "linux.seccomp.flags[0]" in res["msg"] and "libseccomp" in res["msg"])


@pytest.mark.parametrize("cfg,path", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": ALLOW, "defaultErrnoRet": 1}, "linux.seccomp.defaultErrnoRet"),
    (deny(["mkdir"], ALLOW, errnoRet=1) | {"defaultAction": "SCMP_ACT_ERRNO"}, "linux.seccomp.syscalls[0].errnoRet"),
    (deny(["mkdir"], "SCMP_ACT_BOGUS"), "linux.seccomp.syscalls[0].action"),
    (deny(["lseek"], args=[{"index": 6, "op": "SCMP_CMP_EQ", "value": 1}]),
     "linux.seccomp.syscalls[0].args[0].index"),
    (deny(["lseek"], args=[{"index": 0, "op": "SCMP_CMP_ABOUT", "value": 1}]),
     "linux.seccomp.syscalls[0].args[0].op"),
    ({"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_PDP11"]}, "linux.seccomp.architectures[0]"),
    ({"defaultAction": ALLOW, "flags": ["SECCOMP_FILTER_FLAG_FAST"]}, "linux.seccomp.flags[0]"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}, "linux.seccomp.defaultAction"),
    (deny(["mkdir"], "SCMP_ACT_NOTIFY"), "linux.seccomp.listenerPath"),
    (deny(["close", "write"], "SCMP_ACT_NOTIFY") | {"listenerPath": "/x"}, "linux.seccomp.syscalls[0].names[1]"),
])
def test_invalid_profiles_are_config_errors_naming_the_field(cfg, path):
    with pytest.raises(ConfigError) as e:
        seccomp.build(cfg)
    assert e.value.path == path


def test_load_failure_leaves_the_process_unfiltered():
    res, _ = run({"defaultAction": ALLOW, "flags": ["SECCOMP_FILTER_FLAG_FAST"]}, lambda: None)
    assert res["err"] == "ConfigError"
    with pytest.raises(RuntimeErr):
        seccomp.load({"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_PDP11"]})
    assert status_field("Seccomp") == "0"


# --- SCMP_ACT_NOTIFY: the fd goes to the agent at listenerPath with the container process state ------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
_libc = ctypes.CDLL(None, use_errno=True)


def agent(sock_path, answer_errno, out):
    """A minimal seccomp agent: accept one connection, take the fd, answer one notification with an errno."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(10)
    out["ready"].set()
    conn, _ = srv.accept()
    conn.settimeout(10)
    msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
    while not conn.recv(4096) == b"":               # the runtime closes the connection after one message
        pass
    out["state"], out["nfds"] = json.loads(msg), len(fds)
    nfd = fds[0]
    req = ctypes.create_string_buffer(80)
    if _libc.ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, req) == 0:
        nid, pid, _flags, nr = struct.unpack_from("QIIi", req.raw)
        out["nr"] = nr
        resp = ctypes.create_string_buffer(struct.pack("QqiI", nid, 0, -answer_errno, 0), 24)
        _libc.ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, resp)
    os.close(nfd)
    conn.close()
    srv.close()


def test_notify_sends_the_fd_and_state_to_the_listener_and_the_agent_decides(tmp_path):
    path = str(tmp_path / "agent.sock")
    out = {"ready": threading.Event()}
    t = threading.Thread(target=agent, args=(path, errno.EROFS, out), daemon=True)
    t.start()
    out["ready"].wait(5)
    cfg = {"defaultAction": ALLOW, "listenerPath": path, "listenerMetadata": "MKNOD=/dev/null",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 4242, "bundle": "/b",
             "annotations": {"k": "v"}}
    res, _ = run(cfg, mkdir_probe(tmp_path), state=state)
    t.join(10)
    assert res == {"ok": errno.EROFS}                         # the agent's answer reached the container
    mkdir_nrs = {seccomp._lib().seccomp_syscall_resolve_name(n) for n in (b"mkdir", b"mkdirat")}   # this machine's
    assert out["nfds"] == 1 and out["nr"] in mkdir_nrs
    assert out["state"] == {"ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": 4242,
                            "metadata": "MKNOD=/dev/null", "state": state}


def test_notify_with_an_unreachable_listener_fails_before_filtering(tmp_path):
    cfg = {"defaultAction": ALLOW, "listenerPath": str(tmp_path / "nobody.sock"),
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    res, _ = run(cfg, lambda: status_field("Seccomp"))
    assert res["err"] == "SyscallError" and "linux.seccomp.listenerPath" in res["msg"]


def test_notify_fd_can_be_handed_to_a_callable_instead(tmp_path):
    cfg = {"defaultAction": ALLOW, "listenerPath": "/unused",
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    got = []

    def probe():
        return got

    def listener(fd):
        got.append(os.readlink(f"/proc/self/fd/{fd}"))

    res, _ = run(cfg, probe, listener=listener)
    assert res["ok"] == ["anon_inode:seccomp notify"]


# --- ENOSYS for syscalls newer than the profile (runc's patchbpf stub) ------------------------------------------

X86_64_ONLY = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers below are x86_64's")
CLONE3, CLOSE_RANGE, MKDIR = 435, 436, 83


def names_up_to(last, but=()):
    """Every x86_64 syscall name libseccomp knows numbered 0..last (a default-deny profile python can live under)."""
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p      # malloc'd; a few bytes leak in the test
    lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    out = []
    for nr in range(last + 1):
        p = lib.seccomp_syscall_resolve_num_arch(0xC000003E, nr)
        if p and ctypes.string_at(p).decode() not in but:
            out.append(ctypes.string_at(p).decode())
    return out


def raw_errnos(*nrs):
    def probe():
        libc = ctypes.CDLL(None, use_errno=True)
        out = []
        for nr in nrs:
            # all-zero arguments: clone3(NULL, 0) and close_range(0, 0, 0) would fail with EINVAL if they ran
            ret = libc.syscall(ctypes.c_long(nr), ctypes.c_long(-1), ctypes.c_long(0), ctypes.c_long(0))
            out.append(ctypes.get_errno() if ret < 0 else 0)
        return out
    return probe


def allow_up_to(last, default="SCMP_ACT_ERRNO", arches=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
                **extra):
    return {"defaultAction": default, "architectures": list(arches), **extra,
            "syscalls": [{"names": names_up_to(last, but=("mkdir", "mkdirat")), "action": ALLOW}]}


@X86_64_ONLY
def test_a_syscall_newer_than_every_named_one_gets_enosys_not_the_default_action():
    # runc: glibc falls back from clone3 (and friends) only on ENOSYS; an older unnamed syscall keeps the default
    res, _ = run(allow_up_to(434), raw_errnos(CLONE3, CLOSE_RANGE, MKDIR))
    assert res == {"ok": [errno.ENOSYS, errno.ENOSYS, errno.EPERM]}


@X86_64_ONLY
def test_the_last_named_syscall_is_the_bound_whatever_its_action_and_errno_ret():
    cfg = allow_up_to(434, defaultErrnoRet=errno.EXDEV)
    cfg["syscalls"].append({"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS})
    res, _ = run(cfg, raw_errnos(CLONE3, CLOSE_RANGE, 437, MKDIR))
    assert res == {"ok": [errno.EXDEV, errno.EROFS, errno.ENOSYS, errno.EXDEV]}


@X86_64_ONLY
def test_a_kill_default_answers_enosys_for_a_newer_syscall_instead_of_killing():
    res, st = run(allow_up_to(434, default="SCMP_ACT_KILL_PROCESS"), raw_errnos(CLONE3))
    assert res == {"ok": [errno.ENOSYS]}, st


@X86_64_ONLY
@pytest.mark.parametrize("cfg", [
    allow_up_to(434, default="SCMP_ACT_LOG"),                      # permissive defaults: no stub (runc)
    allow_up_to(434, arches=()),                                   # no architectures listed: none either (runc)
    allow_up_to(434, defaultErrnoRet=errno.ENOSYS),                # already ENOSYS
])
def test_no_stub_where_runc_adds_none(cfg):
    assert seccomp.enosys_stub(seccomp._lib(), cfg) == []


@X86_64_ONLY
def test_the_stub_covers_x86_and_x32_with_their_own_last_numbers():
    # x32 runs as AUDIT_ARCH_X86_64 with bit 30 set in the number: its own bound under the same arch value
    lasts = seccomp.last_syscalls(seccomp._lib(), allow_up_to(300))
    assert set(lasts) == {0xC000003E, 0x40000003}                  # AUDIT_ARCH_X86_64, AUDIT_ARCH_I386
    assert lasts[0xC000003E][0xC000003E] == 300
    assert lasts[0xC000003E][0x4000003E] & 0x40000000 and lasts[0x40000003][0x40000003] > 0


@X86_64_ONLY
def test_notify_still_hands_over_its_fd_under_the_stub():
    cfg = allow_up_to(434, listenerPath="/unused")
    cfg["syscalls"].append({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"})
    got = []

    def listener(fd):
        got.append(os.readlink(f"/proc/self/fd/{fd}"))

    res, _ = run(cfg, lambda: [got, raw_errnos(CLONE3)()], listener=listener)
    assert res["ok"] == [["anon_inode:seccomp notify"], [errno.ENOSYS]]
