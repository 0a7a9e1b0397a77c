from . import Opt

SUMMARY = "display container events such as OOM notifications, cpu, memory, and IO usage statistics"
USAGE = "[command options] <container-id>"
DESCRIPTION = """
The events command displays information about the container. By default the information is displayed once
every 5 seconds, and OOM notifications as they happen; each event is one JSON object per line."""
OPTIONS = (
    Opt("--interval", value="DURATION", default="5s", help="set the stats collection interval"),
    Opt("--stats", help="display the container's stats then exit"),
)
NARGS = (1, 1)


def parse_duration(s: str) -> float:
    """Go's time.ParseDuration subset: `5s`, `500ms`, `1m30s`, `1.5h`, `100us` -> seconds."""
    import re
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        if s == "0":
            return 0.0
        from ..errors import RuntimeErr
        raise RuntimeErr(f'invalid value "{s}" for flag -interval: parse error')
    return sum(float(n) * units[u] for n, u in parts)


def _emit(kind: str, cid: str, data=None):
    import json
    from . import out
    ev = {"type": kind, "id": cid}
    if data is not None:
        ev["data"] = _runc_order(data)
    out(json.dumps(ev, separators=(",", ":")) + "\n")


# runc's types.CpusetStats field order (its JSON is the struct's order, not alphabetical)
_CPUSET_ORDER = ("cpus", "cpu_exclusive", "mems")


def _runc_order(data: dict) -> dict:
    """The stats keys in the order runc's JSON has them: Go writes a struct's fields in declaration order and a
    map's keys sorted (memory.raw, hugetlb)."""
    cpuset = data.get("cpuset")
    if isinstance(cpuset, dict):
        data["cpuset"] = {**{k: cpuset[k] for k in _CPUSET_ORDER if k in cpuset}, **cpuset}
    mem = data.get("memory")
    if isinstance(mem, dict) and isinstance(mem.get("raw"), dict):
        mem["raw"] = dict(sorted(mem["raw"].items()))
    if isinstance(data.get("hugetlb"), dict):
        data["hugetlb"] = dict(sorted(data["hugetlb"].items()))
    return data


def run(g, o, args):
    import gc
    gc.enable()             # may run as long as the container: collect as usual (the launcher disables it)
    import os
    import select
    import time
    from ..errors import RuntimeErr, StateError
    from ..linux.cgroups import CgroupError
    from ._cgroup import load
    interval = parse_duration(o["interval"])
    if interval <= 0:
        raise RuntimeErr("duration interval must be greater than 0")
    st, mgr = load(g, args[0])
    if st.status() == "stopped":
        raise StateError(f"container with id {st.id} is not running")
    if o["stats"]:
        _emit("stats", st.id, mgr.stats())
        return 0
    try:
        oom = mgr.oom_notifier()
    except CgroupError as e:
        g.log.warn(f"events: no OOM notifications: {e}")
        oom = None
    cgdir = next(iter(mgr.paths.values()))
    tick = time.monotonic() + interval
    try:
        while True:
            ready, _, _ = select.select([oom] if oom else [], [], [], max(0.0, tick - time.monotonic()))
            if ready:
                for _ in range(oom.read()):
                    _emit("oom", st.id)
                if oom.gone:
                    return 0
                continue
            tick += interval
            if not os.path.isdir(cgdir):
                return 0  # the container was deleted
            try:
                _emit("stats", st.id, mgr.stats())
            except OSError as e:
                g.log.error(f"events: stats: {e}")
    except (KeyboardInterrupt, BrokenPipeError):
        return 0
    finally:
        if oom:
            oom.close()
