"""process.rlimits: setrlimit(2) for every entry, by the getrlimit(2) table. Applied before the user switch
(raising a hard limit needs CAP_SYS_RESOURCE, which the switch may drop)."""
import errno
import resource

from ..errors import ConfigError, SyscallError

# getrlimit(2) resource numbers (Linux, every architecture but alpha/mips/sparc, which this runtime does not run on)
TABLE = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
_U64 = 1 << 64


def _to_c(v: int) -> int:
    """uint64 from config.json -> what the resource module passes through (RLIM_INFINITY = 2**64-1 -> -1)."""
    return v - _U64 if v >= 1 << 63 else v


def _from_c(v: int) -> int:
    return v % _U64


def _fmt(v: int) -> str:
    return "unlimited" if v == _U64 - 1 else str(v)


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return _U64 - 1


def _eperm_reason(r, res) -> str:
    if r.type == "RLIMIT_NOFILE" and r.hard > _nr_open():
        return f": above fs.nr_open ({_nr_open()})"
    cur = _from_c(resource.getrlimit(res)[1])
    return (f": raising the hard limit above the current {_fmt(cur)} needs CAP_SYS_RESOURCE,"
            " which this runtime does not hold")


def check(rlimits) -> None:
    """Types must be known and unique (config.md: duplicated types MUST be an error)."""
    seen = {}
    for i, r in enumerate(rlimits):
        if r.type not in TABLE:
            raise ConfigError(f"process.rlimits[{i}].type", f"unknown resource {r.type!r}")
        if r.type in seen:
            raise ConfigError(f"process.rlimits[{i}].type", f"{r.type} duplicates process.rlimits[{seen[r.type]}]")
        if r.soft > r.hard:
            raise ConfigError(f"process.rlimits[{i}]", f"{r.type} soft limit {r.soft} exceeds hard limit {r.hard}")
        seen[r.type] = i


def apply(rlimits) -> None:
    """setrlimit every entry; errors name process.rlimits[i]."""
    check(rlimits)
    for i, r in enumerate(rlimits):
        res = TABLE[r.type]
        try:
            # prlimit, not setrlimit: CPython's setrlimit turns EPERM into a ValueError
            resource.prlimit(0, res, (_to_c(r.soft), _to_c(r.hard)))
        except (OSError, ValueError) as e:
            err = getattr(e, "errno", None) or errno.EINVAL       # prlimit's ValueError is the kernel's EINVAL
            target = f"process.rlimits[{i}] {r.type} soft={_fmt(r.soft)} hard={_fmt(r.hard)}"
            if err == errno.EPERM:
                target += _eperm_reason(r, res)
            raise SyscallError("setrlimit", target, err) from None
