"""process.capabilities: the five sets. Names are checked against the capability table, numbers against the
running kernel (/proc/sys/kernel/cap_last_cap); sets are applied with capset(2), prctl(PR_CAPBSET_DROP) and
prctl(PR_CAP_AMBIENT).

Order (done by user.switch): drop_bounding -> keep-caps + setresuid -> apply_sets. Capabilities the kernel lacks
are skipped with a debug line; names that are no capability at all, and capabilities the runtime itself does not
hold, cannot be granted and are skipped with one warning each (config.md 1.3.0: "MUST be logged as a warning ...
SHOULD NOT fail"), as runc does.
"""
from . import syscalls as sc

# capabilities(7), by number
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

_nolog = lambda msg: None  # noqa: E731


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def unknown_names(caps) -> list:
    """The names, over all five sets, that are no capability (sorted, each once)."""
    if caps is None:
        return []
    return sorted({n for s in SETS for n in getattr(caps, s) or () if n not in NUMBERS})


def warn_unknown(caps, warn) -> None:
    """One warning naming every unknown capability (runc: "ignoring unknown or unavailable capabilities")."""
    names = unknown_names(caps)
    if names:
        warn(f"process.capabilities: ignoring unknown capabilities: {', '.join(names)}")


def mask(names, *, what="", debug=_nolog, top=None) -> int:
    """Bit mask of the named capabilities; names beyond the kernel's cap_last_cap are skipped (debug line), names
    that are no capability are skipped silently (warn_unknown reports them once)."""
    top = last_cap() if top is None else top
    bits, skipped = 0, []
    for name in names or ():
        n = NUMBERS.get(name)
        if n is None:
            continue
        if n > top:
            skipped.append(name)
        else:
            bits |= 1 << n
    if skipped:
        debug(f"ignoring capabilities unknown to this kernel{' in ' + what if what else ''}: {', '.join(skipped)}")
    return bits


def _names(bits) -> str:
    return ", ".join(NAMES[i] if i < len(NAMES) else str(i) for i in range(64) if bits >> i & 1)


def bounding_mask(top=None) -> int:
    top = last_cap() if top is None else top
    return sum(1 << n for n in range(top + 1) if sc.prctl(sc.PR_CAPBSET_READ, n) == 1)


def drop_bounding(caps, *, debug=_nolog) -> None:
    """Drop from the bounding set every capability not in caps.bounding (needs CAP_SETPCAP: do it before the
    uid change). caps None or bounding unset -> an empty bounding set, as runc."""
    top = last_cap()
    keep = mask(caps.bounding if caps else (), what="bounding", debug=debug, top=top)
    for n in range(top + 1):
        if not keep >> n & 1 and sc.prctl(sc.PR_CAPBSET_READ, n) == 1:
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, n)
            except OSError as e:
                raise sc.SyscallError("prctl PR_CAPBSET_DROP", NAMES[n] if n < len(NAMES) else str(n),
                                      e.errno) from None


def apply_sets(caps, *, debug=_nolog, warn=_nolog) -> None:
    """Set effective/permitted/inheritable with capset(2), then raise the ambient set.

    Unset sets are empty. What the process does not hold cannot be granted: permitted is limited to the current
    permitted set, inheritable to bounding|inheritable, effective to permitted, ambient to permitted&inheritable;
    each capability left out that way is reported through warn(), once: an ambient capability the config does not
    also put in permitted and inheritable gets its own reason (the kernel requires both), one the runtime lacks was
    already named for permitted/inheritable."""
    top = last_cap()
    want = {s: mask(getattr(caps, s) if caps else (), what=s, debug=debug, top=top) for s in SETS[1:]}
    _eff, cur_prm, cur_inh = sc.capget()
    prm = want["permitted"] & cur_prm
    inh = want["inheritable"] & (bounding_mask(top) | cur_inh)
    eff = want["effective"] & prm
    amb = want["ambient"] & prm & inh
    # each set's own limit, so the warning names the real reason: the runtime's permitted set, the bounding set
    # (the config's, already applied; an inheritable capability must be in it), or the config's permitted set
    why = {"permitted": "not held by the runtime",
           "inheritable": "not in the bounding set (process.capabilities.bounding)",
           "effective": "not in process.capabilities.permitted"}
    for set_name, got in (("permitted", prm), ("inheritable", inh), ("effective", eff)):
        if want[set_name] & ~got:
            reason = why[set_name]
            if set_name == "effective" and want["effective"] & want["permitted"] & ~got:
                reason = "not held by the runtime"     # in the config's permitted set, beyond the runtime's
            warn(f"process.capabilities.{set_name}: cannot grant {_names(want[set_name] & ~got)}: {reason}; ignored")
    unpaired = want["ambient"] & ~(want["permitted"] & want["inheritable"])
    if unpaired:                     # `runc spec`'s default bundle: ambient without inheritable
        warn(f"process.capabilities.ambient: not raising {_names(unpaired)}: an ambient capability must also be in "
             "process.capabilities.permitted and .inheritable")
    sc.capset(eff, prm, inh)
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for n in range(top + 1):
        if amb >> n & 1:
            try:
                sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, n)
            except OSError as e:
                raise sc.SyscallError("prctl PR_CAP_AMBIENT_RAISE", NAMES[n], e.errno) from None
