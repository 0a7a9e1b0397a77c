"""process.rlimits, process.oomScoreAdj, noNewPrivileges, linux.personality, process.scheduler, ioPriority,
execCPUAffinity, linux.memoryPolicy and linux.sysctl: each applied in a forked child that reports what the kernel
then says (getrlimit, /proc/self/*, sched_getscheduler, ioprio_get, get_mempolicy ...) through a pipe."""
import ctypes
import errno
import os
import resource

import pytest

from ociruntime.config.model import Rlimit
from childproc import ChildError, in_child  # noqa: F401
from ociruntime.errors import ConfigError, SyscallError
from ociruntime.linux import arch, procattrs, rlimits, sysctl, syscalls

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
INF = (1 << 64) - 1
_libc = ctypes.CDLL(None, use_errno=True)


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()


def limits(name):
    with open("/proc/self/limits") as f:
        for line in f:
            if line.startswith(name):
                return line[26:].split()[:2]


# --- rlimits -------------------------------------------------------------------------------------------------

def test_rlimits_set_soft_and_hard_exactly():
    def child():
        rlimits.apply((Rlimit("RLIMIT_NOFILE", 512, 1024), Rlimit("RLIMIT_NPROC", 100, 200)))
        return resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_NPROC)

    assert in_child(child) == [[512, 1024], [100, 200]]


def test_rlimit_infinity_and_resources_python_has_no_constant_for():
    def child():
        rlimits.apply((Rlimit("RLIMIT_CORE", INF, INF), Rlimit("RLIMIT_LOCKS", 17, 34),
                       Rlimit("RLIMIT_RTTIME", 1000, 2000)))
        return limits("Max core file size"), limits("Max file locks"), limits("Max realtime timeout")

    assert in_child(child) == [["unlimited", "unlimited"], ["17", "34"], ["1000", "2000"]]


def test_every_rlimit_type_in_the_table_applies():
    def child():
        got = {}
        for name, num in rlimits.TABLE.items():
            soft, hard = resource.getrlimit(num)
            # a soft RLIMIT_CPU of 0 sends SIGXCPU at the next tick: use 1000 s for that one
            want = 1000 if name == "RLIMIT_CPU" else 0
            rlimits.apply((Rlimit(name, want, hard % (1 << 64)),))
            got[name] = resource.getrlimit(num)[0] == want
        return got

    got = in_child(child)
    assert got and all(got.values()), got


def test_raising_a_hard_limit_without_cap_sys_resource_says_so():
    def child():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 128))
        e, p, i = syscalls.capget()
        syscalls.capset(e & ~(1 << 24), p & ~(1 << 24), i)        # no CAP_SYS_RESOURCE, as on some hosts
        rlimits.apply((Rlimit("RLIMIT_MEMLOCK", 1, 1), Rlimit("RLIMIT_NOFILE", 64, 4096)))

    with pytest.raises(ChildError) as e:
        in_child(child)
    assert e.value.kind == "SyscallError"
    assert "process.rlimits[1] RLIMIT_NOFILE" in e.value.msg and "CAP_SYS_RESOURCE" in e.value.msg
    assert "current 128" in e.value.msg and e.value.msg.endswith("EPERM")


@pytest.mark.parametrize("items,path", [
    ((Rlimit("RLIMIT_BOGUS", 1, 1),), "process.rlimits[0].type"),
    ((Rlimit("RLIMIT_CORE", 1, 1), Rlimit("RLIMIT_CORE", 2, 2)), "process.rlimits[1].type"),
    ((Rlimit("RLIMIT_CORE", 5, 1),), "process.rlimits[0]"),
])
def test_bad_rlimits_are_config_errors_naming_the_entry(items, path):
    with pytest.raises(ConfigError) as e:
        rlimits.apply(items)
    assert e.value.path == path


# --- noNewPrivileges, oomScoreAdj --------------------------------------------------------------------------------

def test_no_new_privileges_sets_the_bit_and_false_leaves_it():
    def child():
        procattrs.apply_no_new_privileges(False)
        before = status("NoNewPrivs")
        procattrs.apply_no_new_privileges(True)
        return before, status("NoNewPrivs")

    assert in_child(child) == ["0", "1"]


def test_oom_score_adj_is_written_and_unset_leaves_it_alone():
    def child():
        with open("/proc/self/oom_score_adj") as f:
            before = f.read().strip()
        procattrs.apply_oom_score_adj(None)
        with open("/proc/self/oom_score_adj") as f:
            unchanged = f.read().strip()
        procattrs.apply_oom_score_adj(-17 if before == "123" else 123)
        with open("/proc/self/oom_score_adj") as f:
            return before, unchanged, f.read().strip()

    before, unchanged, after = in_child(child)
    assert unchanged == before and after == ("-17" if before == "123" else "123")


def test_out_of_range_oom_score_adj_names_the_field():
    with pytest.raises(ChildError) as e:
        in_child(lambda: procattrs.apply_oom_score_adj(5000))
    assert "process.oomScoreAdj" in e.value.msg and "EINVAL" in e.value.msg


# --- personality -----------------------------------------------------------------------------------------------

def test_personality_linux32_makes_uname_report_a_32_bit_machine():
    def child():
        procattrs.apply_personality({"domain": "LINUX32"})
        return os.uname().machine

    assert in_child(child) in ("i686", "i386", "armv8l", "armv7l", "s390", "ppc", "mips")


def test_personality_linux_keeps_the_native_machine():
    assert in_child(lambda: (procattrs.apply_personality({"domain": "LINUX"}), os.uname().machine)[1]) \
        == os.uname().machine


@pytest.mark.parametrize("doc,path", [({"domain": "BSD"}, "linux.personality.domain"),
                                      ({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]},
                                       "linux.personality.flags[0]")])
def test_personality_unknown_domain_or_any_flag_is_refused(doc, path):
    with pytest.raises(ConfigError) as e:
        procattrs.apply_personality(doc)
    assert e.value.path == path


# --- scheduler ---------------------------------------------------------------------------------------------------

def test_scheduler_batch_with_nice():
    def child():
        procattrs.apply_scheduler({"policy": "SCHED_BATCH", "nice": 7})
        return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)

    assert in_child(child) == [os.SCHED_BATCH, 7]


def test_scheduler_idle_and_reset_on_fork_flag():
    def child():
        procattrs.apply_scheduler({"policy": "SCHED_IDLE", "flags": ["SCHED_FLAG_RESET_ON_FORK"]})
        return os.sched_getscheduler(0)

    assert in_child(child) == os.SCHED_IDLE | os.SCHED_RESET_ON_FORK


def test_scheduler_the_kernel_rejects_names_the_field():
    # SCHED_ISO is in the spec's list but Linux has never implemented it
    with pytest.raises(ChildError) as e:
        in_child(lambda: procattrs.apply_scheduler({"policy": "SCHED_ISO"}))
    assert e.value.kind == "SyscallError" and "process.scheduler SCHED_ISO" in e.value.msg


def test_scheduler_unknown_policy_or_flag_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        procattrs.apply_scheduler({"policy": "SCHED_FAST"})
    assert e.value.path == "process.scheduler.policy"
    with pytest.raises(ConfigError) as e:
        procattrs.apply_scheduler({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]})
    assert e.value.path == "process.scheduler.flags[0]"


# --- ioPriority --------------------------------------------------------------------------------------------------

def _ioprio_get():
    ret = _libc.syscall(arch.nr("ioprio_get"), 1, 0)  # ioprio_get(IOPRIO_WHO_PROCESS, self)
    assert ret >= 0, os.strerror(ctypes.get_errno())
    return ret >> 13, ret & 0xFF


@pytest.mark.parametrize("cls,num,prio", [("IOPRIO_CLASS_IDLE", 3, 0), ("IOPRIO_CLASS_BE", 2, 6),
                                          ("IOPRIO_CLASS_RT", 1, 3)])
def test_io_priority_class_and_level(cls, num, prio):
    def child():
        procattrs.apply_io_priority({"class": cls, "priority": prio})
        return _ioprio_get()

    assert in_child(child) == [num, prio]


def test_io_priority_out_of_range_is_refused():
    with pytest.raises(ConfigError) as e:
        procattrs.apply_io_priority({"class": "IOPRIO_CLASS_BE", "priority": 8})
    assert e.value.path == "process.ioPriority.priority"


# --- execCPUAffinity ----------------------------------------------------------------------------------------------

def test_cpu_list_parsing():
    assert procattrs.parse_list("0-3,7", "x") == (0, 1, 2, 3, 7)
    assert procattrs.parse_list(" 2 ", "x") == (2,)
    with pytest.raises(ConfigError) as e:
        procattrs.parse_list("3-1", "process.execCPUAffinity.final")
    assert e.value.path == "process.execCPUAffinity.final"


def test_parse_list_refuses_numbers_beyond_any_cpu_or_node_before_expanding_them():
    with pytest.raises(ConfigError) as e:
        procattrs.parse_list("0-9876543210", "process.execCPUAffinity.initial")
    assert "9876543210" in str(e.value)
    assert len(procattrs.parse_list(f"0-{procattrs.LIST_LIMIT - 1}", "x")) == procattrs.LIST_LIMIT


def test_cpu_affinity_initial_then_final():
    cpus = sorted(os.sched_getaffinity(0))

    def child():
        d = {"initial": str(cpus[0]), "final": f"{cpus[0]}-{cpus[-1]}"}
        procattrs.apply_cpu_affinity(d, "initial")
        first = sorted(os.sched_getaffinity(0))
        procattrs.apply_cpu_affinity(d, "final")
        return first, sorted(os.sched_getaffinity(0))

    first, final = in_child(child)
    assert first == [cpus[0]]
    assert final == list(range(cpus[0], cpus[-1] + 1))


def test_cpu_affinity_unset_phase_leaves_affinity_alone_and_bad_cpu_names_the_field():
    def child():
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        procattrs.apply_cpu_affinity({"initial": "0"}, "final")
        procattrs.apply_cpu_affinity(None, "initial")
        return len(os.sched_getaffinity(0))

    assert in_child(child) == 1
    with pytest.raises(ChildError) as e:
        in_child(lambda: procattrs.apply_cpu_affinity({"final": "4000"}, "final"))
    assert "process.execCPUAffinity.final" in e.value.msg and "EINVAL" in e.value.msg


# --- memoryPolicy ------------------------------------------------------------------------------------------------

def _get_mempolicy():
    mode, mask = ctypes.c_int(), (ctypes.c_ulong * 16)()
    ret = _libc.syscall(arch.nr("get_mempolicy"), ctypes.byref(mode), mask, ctypes.c_ulong(16 * 64), None,
                        ctypes.c_ulong(0))
    assert ret == 0, os.strerror(ctypes.get_errno())
    return mode.value, [i for i in range(64) if mask[0] >> i & 1]


def test_memory_policy_bind_to_a_node():
    def child():
        procattrs.apply_memory_policy({"mode": "MPOL_BIND", "nodes": "0"})
        return _get_mempolicy()

    assert in_child(child) == [procattrs.MPOL_MODES["MPOL_BIND"], [0]]


def test_memory_policy_mode_flags_are_applied():
    def child():
        procattrs.apply_memory_policy({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]})
        return _get_mempolicy()[0]

    assert in_child(child) == procattrs.MPOL_MODES["MPOL_INTERLEAVE"] | procattrs.MPOL_FLAGS["MPOL_F_STATIC_NODES"]


def test_memory_policy_local_takes_no_nodes_and_missing_nodes_name_the_field():
    with pytest.raises(ConfigError) as e:
        procattrs.apply_memory_policy({"mode": "MPOL_LOCAL", "nodes": "0"})
    assert e.value.path == "linux.memoryPolicy.nodes"
    assert in_child(lambda: (procattrs.apply_memory_policy({"mode": "MPOL_LOCAL"}), _get_mempolicy()[0])[1]) \
        == procattrs.MPOL_MODES["MPOL_LOCAL"]
    with pytest.raises(ChildError) as e:
        in_child(lambda: procattrs.apply_memory_policy({"mode": "MPOL_BIND", "nodes": "63"}))
    assert e.value.kind == "SyscallError" and "linux.memoryPolicy MPOL_BIND" in e.value.msg


# --- sysctl ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,ns", [("net.ipv4.ip_forward", "network"), ("kernel.shmmax", "ipc"),
                                    ("fs.mqueue.msg_max", "ipc"), ("kernel.domainname", "uts"),
                                    ("net/ipv4/conf/eth0.100/forwarding", "network")])
def test_sysctl_namespaced_keys_need_their_namespace(key, ns):
    sysctl.check({key: "1"}, {ns})
    with pytest.raises(ConfigError) as e:
        sysctl.check({key: "1"}, {"pid", "mount"})
    assert e.value.path == f"linux.sysctl.{key}" and f"needs a {ns} namespace" in str(e.value)


@pytest.mark.parametrize("key", ["kernel.pid_max", "vm.swappiness", "fs.file-max", "kernel/../../etc", "net..x"])
def test_sysctl_host_wide_or_malformed_keys_are_refused(key):
    with pytest.raises(ConfigError) as e:
        sysctl.check({key: "1"}, {"network", "ipc", "uts", "pid", "mount", "user"})
    assert e.value.path == f"linux.sysctl.{key}"


def test_sysctl_net_key_refused_when_the_joined_network_namespace_is_the_hosts():
    with pytest.raises(ConfigError) as e:
        sysctl.check({"net.ipv4.ip_forward": "1"}, {"network"}, net_path="/proc/self/ns/net")
    assert "is the host's" in str(e.value)


def test_sysctl_apply_writes_inside_the_new_namespaces_only():
    with open("/proc/sys/kernel/msgmax") as f:
        host_msgmax = f.read().strip()
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_fwd = f.read().strip()
    want_fwd = "0" if host_fwd == "1" else "1"

    def child():
        syscalls.unshare(syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWNET)
        sysctl.check({"kernel.msgmax": "4242", "net.ipv4.ip_forward": want_fwd}, {"ipc", "network"})
        sysctl.apply({"kernel.msgmax": "4242", "net.ipv4.ip_forward": want_fwd})
        with open("/proc/sys/kernel/msgmax") as a, open("/proc/sys/net/ipv4/ip_forward") as b:
            return a.read().strip(), b.read().strip()

    assert in_child(child) == ["4242", want_fwd]
    with open("/proc/sys/kernel/msgmax") as a, open("/proc/sys/net/ipv4/ip_forward") as b:
        assert (a.read().strip(), b.read().strip()) == (host_msgmax, host_fwd)


def test_sysctl_apply_error_names_the_key(tmp_path):
    with pytest.raises(SyscallError) as e:
        sysctl.apply({"net.ipv4.nosuchthing": "1"}, proc_root=str(tmp_path))
    assert "linux.sysctl.net.ipv4.nosuchthing" in str(e.value) and e.value.err == errno.ENOENT


def test_sysctl_apply_refuses_host_wide_keys_even_without_check(tmp_path):
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "sys" / "kernel" / "pid_max").write_text("32768")
    with pytest.raises(ConfigError) as e:
        sysctl.apply({"kernel.pid_max": "1000"}, proc_root=str(tmp_path))
    assert e.value.path == "linux.sysctl.kernel.pid_max"
    assert (tmp_path / "sys" / "kernel" / "pid_max").read_text() == "32768"
