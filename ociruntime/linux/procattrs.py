"""Per-process attributes set in init before execve: noNewPrivileges, oomScoreAdj, linux.personality,
process.scheduler (sched_setattr), process.ioPriority, process.execCPUAffinity, linux.memoryPolicy.

Each takes the raw sub-document as config.json has it; errors name the field, and say when the kernel lacks it.
"""
import errno
from .. import fastos as os

from . import syscalls as sc
from ..errors import ConfigError, SyscallError
from ..fastos import write_file

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}      # PER_LINUX, PER_LINUX32
PERSONALITY_FLAGS: dict = {}                                     # config-linux.md: "no flag values are supported"

SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
               "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13

MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4,
              "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_NUMA_BALANCING": 1 << 13}
MPOL_NO_NODES = {"MPOL_DEFAULT", "MPOL_LOCAL"}                  # set_mempolicy(2): nodes must be empty


def _lookup(table, value, path):
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ConfigError(path, f"unknown value {value!r} (known: {', '.join(table) or 'none'})") from None


def _flags(table, names, path):
    bits = 0
    for i, name in enumerate(names or ()):
        bits |= _lookup(table, name, f"{path}[{i}]")
    return bits


def _reraise(e: OSError, call: str, field: str, what: str = ""):
    hint = {errno.ENOSYS: "not supported by this kernel", errno.EINVAL: "rejected by the kernel",
            errno.EPERM: "not permitted", errno.EACCES: "not permitted"}.get(e.errno, "")
    target = f"{field}{' ' + what if what else ''}{': ' + hint if hint else ''}"
    raise SyscallError(call, target, e.errno) from None


# above any kernel's CPU or NUMA node numbers (NR_CPUS is at most 8192, MAX_NUMNODES 1024): a list beyond it is
# refused before it is expanded number by number (youki's memory_policy test sends "0-9876543210")
LIST_LIMIT = 1 << 16


def parse_list(text: str, path: str) -> tuple:
    """'0-3,7' -> (0, 1, 2, 3, 7): the cpus/mems list format."""
    out = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi) if hi else int(lo)
            if lo < 0 or hi < lo:
                raise ValueError(part)
            if hi >= LIST_LIMIT:
                raise ConfigError(path, f"{hi} in {text!r} is beyond any CPU or NUMA node number")
            out.extend(range(lo, hi + 1))
    except ValueError:
        raise ConfigError(path, f"invalid list {text!r} (expected e.g. '0-3,7')") from None
    return tuple(out)


def apply_no_new_privileges(on: bool) -> None:
    """process.noNewPrivileges: prctl(PR_SET_NO_NEW_PRIVS). Irreversible; false leaves the bit alone."""
    if on:
        try:
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        except OSError as e:
            _reraise(e, "prctl PR_SET_NO_NEW_PRIVS", "process.noNewPrivileges")


def apply_oom_score_adj(v, proc_root: str = "/proc") -> None:
    """process.oomScoreAdj; None leaves oom_score_adj untouched (config.md: MUST NOT change it)."""
    if v is None:
        return
    path = f"{proc_root}/self/oom_score_adj"
    try:
        write_file(path, str(int(v)).encode())
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            try:
                with open(path, "rb") as f:
                    cur = int(f.read())
            except (OSError, ValueError):
                cur = None
            if cur is not None and int(v) < cur:     # the kernel's rule: raising is free, lowering is privileged
                raise SyscallError(f"write {path}", f"process.oomScoreAdj {v}: lowering it below the current {cur} "
                                   "needs CAP_SYS_RESOURCE, which this runtime does not hold", e.errno) from None
        _reraise(e, f"write {path}", "process.oomScoreAdj", str(v))


def apply_personality(d) -> None:
    """linux.personality: domain LINUX / LINUX32 (uname then reports a 32-bit machine)."""
    if not d:
        return
    persona = _lookup(PERSONALITY_DOMAINS, d.get("domain"), "linux.personality.domain")
    persona |= _flags(PERSONALITY_FLAGS, d.get("flags"), "linux.personality.flags")
    try:
        sc.personality(persona)
    except OSError as e:
        _reraise(e, "personality", "linux.personality", d.get("domain"))


def apply_scheduler(d) -> None:
    """process.scheduler through sched_setattr(2); unset numbers are 0 as config.md says."""
    if not d:
        return
    attr = sc.SchedAttr()
    attr.sched_policy = _lookup(SCHED_POLICIES, d.get("policy"), "process.scheduler.policy")
    attr.sched_flags = _flags(SCHED_FLAGS, d.get("flags"), "process.scheduler.flags")
    attr.sched_nice = d.get("nice", 0)
    attr.sched_priority = d.get("priority", 0)
    attr.sched_runtime = d.get("runtime", 0)
    attr.sched_deadline = d.get("deadline", 0)
    attr.sched_period = d.get("period", 0)
    try:
        sc.sched_setattr(0, attr)
    except OSError as e:
        _reraise(e, "sched_setattr", "process.scheduler", d.get("policy"))


def apply_io_priority(d) -> None:
    """process.ioPriority: ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority); children inherit it."""
    if not d:
        return
    cls = _lookup(IOPRIO_CLASSES, d.get("class"), "process.ioPriority.class")
    prio = d.get("priority", 0)
    if not isinstance(prio, int) or not 0 <= prio <= 7:
        raise ConfigError("process.ioPriority.priority", f"{prio!r} is not in 0..7")
    try:
        sc.ioprio_set(IOPRIO_WHO_PROCESS, 0, cls << IOPRIO_CLASS_SHIFT | prio)
    except OSError as e:
        _reraise(e, "ioprio_set", "process.ioPriority", f"{d.get('class')} {prio}")


def apply_cpu_affinity(d, phase: str) -> None:
    """process.execCPUAffinity.<phase>: 'initial' before the move into the container's cgroup, 'final' after it.
    Unset or empty: affinity left to the kernel."""
    if phase not in ("initial", "final"):
        raise ValueError(f"phase must be 'initial' or 'final', not {phase!r}")
    text = (d or {}).get(phase)
    if not text:
        return
    path = f"process.execCPUAffinity.{phase}"
    cpus = parse_list(text, path)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        _reraise(e, "sched_setaffinity", path, repr(text))


def apply_memory_policy(d) -> None:
    """linux.memoryPolicy: set_mempolicy(mode | flags, nodemask)."""
    if not d:
        return
    mode_name = d.get("mode")
    mode = _lookup(MPOL_MODES, mode_name, "linux.memoryPolicy.mode")
    mode |= _flags(MPOL_FLAGS, d.get("flags"), "linux.memoryPolicy.flags")
    nodes = parse_list(d.get("nodes") or "", "linux.memoryPolicy.nodes")
    if nodes and mode_name in MPOL_NO_NODES:
        raise ConfigError("linux.memoryPolicy.nodes", f"{mode_name} takes no nodes")
    try:
        sc.set_mempolicy(mode, nodes)
    except OSError as e:
        _reraise(e, "set_mempolicy", "linux.memoryPolicy", f"{mode_name} nodes={d.get('nodes') or ''!r}")
