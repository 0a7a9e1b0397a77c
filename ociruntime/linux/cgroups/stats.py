"""Statistics in runc's `events --stats` shape (runc's types/events.go, Go's omitempty emulated), and OOM
notification sources for `events`. Imported only by `events`/`stats()`."""
import os

from .common import CgroupError, Dir

U64_MAX = (1 << 64) - 1


def _oe(d: dict, keep=()) -> dict:
    """Go's `omitempty`: drop zero values except the keys the struct does not mark omitempty."""
    return {k: v for k, v in d.items() if k in keep or v not in (0, None, [], {}, "")}


def _entry(limit=0, usage=0, mx=0, failcnt=0) -> dict:
    return _oe({"limit": limit, "usage": usage, "max": mx, "failcnt": failcnt}, keep=("limit", "failcnt"))


def _cpu(total=0, percpu=(), pk=(), pu=(), kernel=0, user=0, periods=0, throttled=0, ttime=0) -> dict:
    return {"usage": _oe({"total": total, "percpu": list(percpu), "percpu_kernel": list(pk), "percpu_user": list(pu),
                          "kernel": kernel, "user": user}, keep=("kernel", "user")),
            "throttling": _oe({"periods": periods, "throttledPeriods": throttled, "throttledTime": ttime})}


def _list(s: str) -> list[int]:
    """"0-2,5" -> [0, 1, 2, 5]."""
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def _cpuset(d: Dir, prefix: str) -> dict:
    def r(name):
        try:
            return d.read(prefix + name) if d else ""
        except OSError:
            return ""
    out = {"cpus": _list(r("cpus") or r("cpus.effective")), "mems": _list(r("mems") or r("mems.effective"))}
    for k in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
              "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level"):
        out[k] = d.read_int(prefix + k) if d else 0
    return _oe(out, keep=tuple(out)[2:])


def _hugetlb(d: Dir, v2: bool) -> dict:
    from .common import hugepage_sizes
    out = {}
    for size in hugepage_sizes():
        if not d or not d.exists(f"hugetlb.{size}.{'current' if v2 else 'usage_in_bytes'}"):
            continue
        if v2:
            out[size] = _oe({"usage": d.read_int(f"hugetlb.{size}.current"), "max": 0,
                             "failcnt": d.read_keyed(f"hugetlb.{size}.events").get("max", 0)}, keep=("failcnt",))
        else:
            out[size] = _oe({"usage": d.read_int(f"hugetlb.{size}.usage_in_bytes"),
                             "max": d.read_int(f"hugetlb.{size}.max_usage_in_bytes"),
                             "failcnt": d.read_int(f"hugetlb.{size}.failcnt")}, keep=("failcnt",))
    return out


def _stats(cpu, cpuset, memory, pids, blkio, hugetlb) -> dict:
    return {"cpu": cpu, "cpuset": cpuset, "memory": memory, "pids": pids, "blkio": blkio, "hugetlb": hugetlb,
            "intel_rdt": {}, "network_interfaces": None}


# -- v1 ---------------------------------------------------------------------------------------------------------

def _v1_blkio_entries(d: Dir, name: str) -> list:
    out = []
    try:
        text = d.read(name)
    except OSError:
        return out
    for line in text.splitlines():
        f = line.split()
        if len(f) != 3 or ":" not in f[0]:
            continue  # the trailing "Total N"
        major, minor = f[0].split(":")
        out.append(_oe({"major": int(major), "minor": int(minor), "op": f[1], "value": int(f[2])}))
    return out


def _v1_blkio(d: Dir) -> dict:
    if not d:
        return {}
    # CFQ's recursive stats, else BFQ's, else the throttling layer's (runc's order)
    for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
        if d.exists(prefix + "io_service_bytes_recursive"):
            sb = _v1_blkio_entries(d, prefix + "io_service_bytes_recursive")
            sv = _v1_blkio_entries(d, prefix + "io_serviced_recursive")
            if sb or sv or prefix == "blkio.throttle.":
                return _oe({"ioServiceBytesRecursive": sb, "ioServicedRecursive": sv})
    return {}


def v1_stats(paths: dict) -> dict:
    def D(c):
        return Dir(paths.get(c), c)
    acct, cpu, mem = D("cpuacct"), D("cpu"), D("memory")
    tick = os.sysconf("SC_CLK_TCK")
    percpu, pk, pu, kernel, user = [], [], [], 0, 0
    if acct:
        try:
            percpu = [int(x) for x in acct.read("cpuacct.usage_percpu").split()]
        except OSError:
            pass
        try:
            for line in acct.read("cpuacct.usage_all").splitlines()[1:]:
                _, u, s = line.split()
                pu.append(int(u))
                pk.append(int(s))
        except (OSError, ValueError):
            pass
        st = acct.read_keyed("cpuacct.stat")
        user, kernel = st.get("user", 0) * 10 ** 9 // tick, st.get("system", 0) * 10 ** 9 // tick
    cs = cpu.read_keyed("cpu.stat") if cpu else {}
    cpu_stats = _cpu(acct.read_int("cpuacct.usage") if acct else 0, percpu, pk, pu, kernel, user,
                     cs.get("nr_periods", 0), cs.get("nr_throttled", 0), cs.get("throttled_time", 0))

    def entry(prefix):
        return _entry(mem.read_int(prefix + "limit_in_bytes"), mem.read_int(prefix + "usage_in_bytes"),
                      mem.read_int(prefix + "max_usage_in_bytes"), mem.read_int(prefix + "failcnt"))
    if mem:
        raw = mem.read_keyed("memory.stat")
        memory = _oe({"cache": raw.get("cache", 0), "usage": entry("memory."), "swap": entry("memory.memsw."),
                      "kernel": entry("memory.kmem."), "kernelTCP": entry("memory.kmem.tcp."), "raw": raw},
                     keep=("usage", "swap", "kernel", "kernelTCP"))
    else:
        memory = {k: _entry() for k in ("usage", "swap", "kernel", "kernelTCP")}
    pd = D("pids")
    pids = _oe({"current": pd.read_int("pids.current"), "limit": pd.read_int("pids.max")}) if pd else {}
    cpuset = D("cpuset")
    return _stats(cpu_stats, _cpuset(cpuset, "cpuset.") if cpuset else {}, memory, pids, _v1_blkio(D("blkio")),
                  _hugetlb(D("hugetlb"), False))


# -- v2 ---------------------------------------------------------------------------------------------------------

def _max(d: Dir, name: str) -> int:
    try:
        v = d.read(name)
    except OSError:
        return 0
    return U64_MAX if v == "max" else int(v)


def _v2_blkio(d: Dir) -> dict:
    sb, sv = [], []
    try:
        text = d.read("io.stat")
    except OSError:
        return {}
    for line in text.splitlines():
        f = line.split()
        major, minor = (int(x) for x in f[0].split(":"))
        kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
        for key, op, lst in (("rbytes", "Read", sb), ("wbytes", "Write", sb), ("rios", "Read", sv),
                             ("wios", "Write", sv)):
            if key in kv:
                lst.append(_oe({"major": major, "minor": minor, "op": op, "value": int(kv[key])}))
    return _oe({"ioServiceBytesRecursive": sb, "ioServicedRecursive": sv})


def v2_stats(path: str) -> dict:
    d = Dir(path)
    cs = d.read_keyed("cpu.stat")
    cpu = _cpu(cs.get("usage_usec", 0) * 1000, (), (), (), cs.get("system_usec", 0) * 1000,
               cs.get("user_usec", 0) * 1000, cs.get("nr_periods", 0), cs.get("nr_throttled", 0),
               cs.get("throttled_usec", 0) * 1000)
    raw = d.read_keyed("memory.stat")
    usage = _entry(_max(d, "memory.max"), d.read_int("memory.current"), d.read_int("memory.peak"),
                   d.read_keyed("memory.events").get("max", 0))
    # runc reports swap as memory+swap, as v1 did
    swap_limit = _max(d, "memory.swap.max")
    swap = _entry(U64_MAX if U64_MAX in (swap_limit, usage["limit"]) else swap_limit + usage["limit"],
                  d.read_int("memory.swap.current") + usage.get("usage", 0))
    memory = _oe({"cache": raw.get("file", 0), "usage": usage, "swap": swap, "kernel": _entry(),
                  "kernelTCP": _entry(), "raw": raw}, keep=("usage", "swap", "kernel", "kernelTCP"))
    pids = _oe({"current": d.read_int("pids.current"), "limit": d.read_int("pids.max")})
    cpuset = _cpuset(d, "cpuset.") if d.exists("cpuset.cpus.effective") else {}
    return _stats(cpu, cpuset, memory, pids, _v2_blkio(d), _hugetlb(d, True))


# -- OOM notifications ------------------------------------------------------------------------------------------

class V1OomNotifier:
    """memory.oom_control registered on an eventfd through cgroup.event_control. Select on fileno();
    read() -> number of OOM events since the last read (the eventfd also fires when the cgroup is removed:
    then `gone` is set)."""

    def __init__(self, memdir: str):
        self.dir, self.gone = memdir, False
        self.fd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            self._ofd = os.open(memdir + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            Dir(memdir, "memory").write("cgroup.event_control", f"{self.fd} {self._ofd}")
        except (OSError, CgroupError) as e:
            os.close(self.fd)
            raise CgroupError(f"register OOM notification on {memdir}: {e}") from None

    def fileno(self) -> int:
        return self.fd

    def read(self) -> int:
        n = os.eventfd_read(self.fd)
        if not os.path.exists(self.dir + "/cgroup.event_control"):
            self.gone = True
            return 0
        return n

    def close(self):
        for fd in (self.fd, self._ofd):
            try:
                os.close(fd)
            except OSError:
                pass


class V2OomNotifier:
    """inotify on memory.events; read() -> how much the `oom` counter grew; `gone` once the cgroup is empty/removed."""

    def __init__(self, path: str):
        from .. import syscalls
        self.dir, self.gone = path, False
        self.fd = syscalls.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            syscalls.inotify_add_watch(self.fd, path + "/memory.events", 0x2)  # IN_MODIFY
            syscalls.inotify_add_watch(self.fd, path + "/cgroup.events", 0x2)
        except OSError as e:
            os.close(self.fd)
            raise CgroupError(f"register OOM notification on {path}: {e}") from None
        self.count = Dir(path).read_keyed("memory.events").get("oom", 0)

    def fileno(self) -> int:
        return self.fd

    def read(self) -> int:
        try:
            os.read(self.fd, 65536)
        except BlockingIOError:
            pass
        d = Dir(self.dir)
        if not os.path.isdir(self.dir) or d.read_keyed("cgroup.events").get("populated", 1) == 0:
            self.gone = True
        now = d.read_keyed("memory.events").get("oom", self.count)
        grew, self.count = max(0, now - self.count), now
        return grew

    def close(self):
        os.close(self.fd)
