from . import Opt

SUMMARY = "update container resource constraints"
USAGE = "[command options] <container-id>"
DESCRIPTION = """
The data can be given in a file (--resources FILE) or on standard input (--resources -), as the
linux.resources object of config.json:

{
  "memory": {"limit": 0, "reservation": 0, "swap": 0, "checkBeforeUpdate": true},
  "cpu": {"shares": 0, "quota": 0, "burst": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0,
          "cpus": "", "mems": "", "idle": 0},
  "blockIO": {"weight": 0},
  "pids": {"limit": 0},
  "unified": {"memory.high": "1G"}
}

Otherwise the single-value options below are used. Memory sizes take a unit suffix (512m, 1g)."""
OPTIONS = (
    Opt("--resources", "-r", value="FILE", help="path to the file containing the resources to update or '-' to "
                                                 "read from the standard input"),
    Opt("--blkio-weight", value="N", help="Specifies per cgroup weight, range is from 10 to 1000"),
    Opt("--cpu-period", value="N", help="CPU CFS period to be used for hardcapping (in usecs). 0 to use system "
                                         "default"),
    Opt("--cpu-quota", value="N", help="CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    Opt("--cpu-burst", value="N", help="CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time "
                                        "additionally for burst a given period"),
    Opt("--cpu-share", value="N", help="CPU shares (relative weight vs. other containers)"),
    Opt("--cpu-shares", value="N", help="alias of --cpu-share"),
    Opt("--cpu-rt-period", value="N", help="CPU realtime period to be used for hardcapping (in usecs). 0 to use "
                                            "system default"),
    Opt("--cpu-rt-runtime", value="N", help="CPU realtime hardcap limit (in usecs). Allowed cpu time in a given "
                                             "period"),
    Opt("--cpuset-cpus", value="LIST", help="CPU(s) to use"),
    Opt("--cpuset-mems", value="LIST", help="Memory node(s) to use"),
    Opt("--cpu-idle", value="N", help="set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
    Opt("--kernel-memory", value="SIZE", help="(obsoleted; do not use)"),
    Opt("--kernel-memory-tcp", value="SIZE", help="(obsoleted; do not use)"),
    Opt("--memory", value="SIZE", help="Memory limit (in bytes)"),
    Opt("--memory-reservation", value="SIZE", help="Memory reservation or soft_limit (in bytes)"),
    Opt("--memory-swap", value="SIZE", help="Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    Opt("--pids-limit", value="N", help="Maximum number of pids allowed in the container"),
    Opt("--l3-cache-schema", value="SCHEMA", help="The string of Intel RDT/CAT L3 cache schema (unsupported)"),
    Opt("--mem-bw-schema", value="SCHEMA", help="The string of Intel RDT/MBA memory bandwidth schema (unsupported)"),
)
NARGS = (1, 1)

# option -> (section, key, parser name)
FLAGS = (
    ("blkio_weight", "blockIO", "weight", "uint"),
    ("cpu_period", "cpu", "period", "uint"),
    ("cpu_quota", "cpu", "quota", "int"),
    ("cpu_burst", "cpu", "burst", "uint"),
    ("cpu_share", "cpu", "shares", "uint"),
    ("cpu_shares", "cpu", "shares", "uint"),
    ("cpu_rt_period", "cpu", "realtimePeriod", "uint"),
    ("cpu_rt_runtime", "cpu", "realtimeRuntime", "int"),
    ("cpuset_cpus", "cpu", "cpus", "str"),
    ("cpuset_mems", "cpu", "mems", "str"),
    ("cpu_idle", "cpu", "idle", "int"),
    ("kernel_memory", "memory", "kernel", "ram"),
    ("kernel_memory_tcp", "memory", "kernelTCP", "ram"),
    ("memory", "memory", "limit", "ram"),
    ("memory_reservation", "memory", "reservation", "ram"),
    ("memory_swap", "memory", "swap", "ram"),
    ("pids_limit", "pids", "limit", "int"),
)

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_ram(s: str) -> int:
    """docker/go-units RAMInBytes: `1024`, `512m`, `1.5g`, `2GiB`, `100 kb` (binary units); `-1` = unlimited."""
    import re
    if s == "-1":
        return -1
    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?", s)     # untrimmed, as go-units' regexp
    if not m:
        raise ValueError(f"invalid size: {s!r}")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def _parse(kind: str, flag: str, s: str):
    try:
        if kind == "ram":
            return parse_ram(s)
        if kind == "uint":
            v = int(s, 10)
            if v < 0:
                raise ValueError("must not be negative")
            return v
        if kind == "int":
            return int(s, 10)
        return s
    except ValueError as e:
        from . import UsageError
        raise UsageError(f"invalid value for {flag}: {e}") from None


def resources_from_flags(o: dict) -> dict:
    r = {}
    for key, section, field, kind in FLAGS:
        if o.get(key) not in (None, ""):
            r.setdefault(section, {})[field] = _parse(kind, "--" + key.replace("_", "-"), o[key])
    return r


def resources_from_file(path: str) -> dict:
    import json
    import sys
    from ..errors import RuntimeErr
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        r = json.loads(data)
    except OSError as e:
        raise RuntimeErr(f"open {path}: {e.strerror}") from None
    except ValueError as e:
        raise RuntimeErr(f"decode resources from {'stdin' if path == '-' else path}: {e}") from None
    if not isinstance(r, dict):
        raise RuntimeErr("decode resources: expected a JSON object (linux.resources)")
    return r


def run(g, o, args):
    from ..errors import RuntimeErr, StateError
    from ._cgroup import load
    if o.get("l3_cache_schema") or o.get("mem_bw_schema"):
        raise RuntimeErr("Intel RDT is not supported by this runtime")
    r = resources_from_file(o["resources"]) if o.get("resources") else resources_from_flags(o)
    if r.pop("devices", None) is not None:
        g.log.debug("update: linux.resources.devices cannot be updated (as in runc), ignored")
    mem = r.get("memory")
    if isinstance(mem, dict) and mem.get("limit") == -1 and mem.get("swap") is None:
        mem["swap"] = -1    # runc: unlimited memory without a swap value means unlimited swap too (not the old swap)
    st, mgr = load(g, args[0], lock=True)
    if st.status() not in ("created", "running", "paused"):
        raise StateError("container not running")
    merged = merge_resources(stored_resources(g, st), r)
    # each section the update touches is written whole, as runc writes its merged config: a driver converting one
    # value needs its siblings (v2 memory.swap.max is swap minus the limit set earlier)
    mgr.set({key: merged[key] for key in r if key in merged})
    st.facts["resources"] = merged   # only once the kernel took them: the next update merges on top of these
    st.save()
    return 0


def stored_resources(g, st) -> dict:
    """The resources in force: those a previous update stored, else linux.resources of the bundle's config.json."""
    import json
    import os
    if isinstance(st.facts.get("resources"), dict):
        return st.facts["resources"]
    path = os.path.join(st.facts.get("bundle") or "", st.facts.get("config", "config.json"))
    try:
        with open(path, "rb") as f:
            res = (json.loads(f.read()).get("linux") or {}).get("resources")
    except (OSError, ValueError, AttributeError) as e:
        g.log.debug(f"update: no resources from {path} to merge with: {e}")
        return {}
    return res if isinstance(res, dict) else {}


def merge_resources(old: dict, new: dict) -> dict:
    """new on top of old: objects merge key by key, anything else (numbers, strings, lists) replaces; a null
    value is one not given."""
    out = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_resources(out[key], value)
        elif value is not None:
            out[key] = value
    return out
