"""cgroup v1 driver: one directory per mounted hierarchy (cpu, memory, ..., name=systemd; the empty cgroup2 of
a hybrid host too, as runc does). Each linux.resources section is written by one small setter, in runc's order."""
import errno
from ... import fastos as os
import _signal as signal  # the C module: `signal` imports enum (~3 ms on every delete)

from .common import CgroupError, Dir, Manager, cgroup_mounts, clean_path, device_rules, hugepage_sizes, join, \
    own_cgroups, rmdir_tree, walk_procs

# ---------------------------------------------------------------------------------------------------------------
# setters: (Dir of the controller, the config section) -> writes. `what` strings are the config paths.


def _set_cpuset(d: Dir, cpu: dict):
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            d.write(name, cpu[key], f"linux.resources.cpu.{key}")


def _set_memory(d: Dir, m: dict):
    W = "linux.resources.memory."
    limit, swap = m.get("limit") or 0, m.get("swap") or 0
    if limit == -1 and swap == 0:
        swap = -1  # unlimited memory and no swap given: unlimited swap too (runc)

    def set_limit():
        try:
            d.write("memory.limit_in_bytes", limit, W + "limit")
        except CgroupError as e:
            if e.errno != errno.EBUSY:
                raise
            raise CgroupError(f"{W}limit: unable to set memory limit to {limit} (current usage: "
                              f"{d.read_int('memory.usage_in_bytes')}, peak usage: "
                              f"{d.read_int('memory.max_usage_in_bytes')})", e.errno) from None

    def set_swap():
        if not d.exists("memory.memsw.limit_in_bytes") and d:
            raise CgroupError(f"{W}swap: swap accounting is not enabled in this kernel "
                              f"(no memory.memsw.limit_in_bytes)")
        d.write("memory.memsw.limit_in_bytes", swap, W + "swap")

    # The kernel wants memory <= memory+swap at every step: order the two writes accordingly (runc).
    if limit and swap:
        cur = d.read_int("memory.limit_in_bytes") if d else 0
        order = (set_swap, set_limit) if swap == -1 or cur < swap else (set_limit, set_swap)
        for f in order:
            f()
    elif limit:
        set_limit()
    elif swap:
        set_swap()
    if m.get("reservation") is not None:
        d.write("memory.soft_limit_in_bytes", m["reservation"], W + "reservation")
    for key, name in (("kernel", "memory.kmem.limit_in_bytes"), ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
        if m.get(key) is not None:
            try:
                d.write_optional(name, m[key], W + key)
            except CgroupError as e:  # deprecated; newer kernels refuse it
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP):
                    raise
                d.debug(f"{W}{key}: kernel memory limits are not supported by this kernel, skipped")
    sw = m.get("swappiness")
    if sw is not None and sw != -1:
        if not 0 <= sw <= 100:
            raise CgroupError(f"{W}swappiness: invalid value {sw}: valid memory swappiness range is 0-100")
        d.write("memory.swappiness", sw, W + "swappiness")
    if m.get("disableOOMKiller"):
        d.write("memory.oom_control", 1, W + "disableOOMKiller")
    elif m.get("disableOOMKiller") is False and d:
        d.write("memory.oom_control", 0, W + "disableOOMKiller")
    if m.get("useHierarchy") is not None:
        try:
            d.write("memory.use_hierarchy", int(bool(m["useHierarchy"])), W + "useHierarchy")
        except CgroupError as e:
            if m["useHierarchy"] or e.errno != errno.EINVAL:
                raise
            d.debug(f"{W}useHierarchy: this kernel only supports hierarchical accounting, skipped")
    # checkBeforeUpdate: on v1 the kernel itself refuses a limit below the usage (EBUSY above)


def _set_cpu(d: Dir, cpu: dict):
    W = "linux.resources.cpu."
    shares = cpu.get("shares")
    if shares:
        d.write("cpu.shares", shares, W + "shares")
        got = d.read_int("cpu.shares")
        if got != shares:  # the kernel clamps silently: say so, as runc does
            edge = "maximum" if shares > got else "minimum"
            raise CgroupError(f"{W}shares: the {edge} allowed cpu-shares is {got}")
    quota, period, burst = cpu.get("quota") or 0, cpu.get("period") or 0, cpu.get("burst")
    # The period (or burst) may be refused (EINVAL) until the new quota is in place: retry them after it.
    retry = []
    for key, name, val in (("period", "cpu.cfs_period_us", period), ("burst", "cpu.cfs_burst_us", burst)):
        if val is None or (key == "period" and not val):
            continue
        try:
            if key == "burst":
                d.write_optional(name, val, W + key)
            else:
                d.write(name, val, W + key)
        except CgroupError as e:
            if e.errno != errno.EINVAL or not quota:
                raise
            retry.append((key, name, val))
    if quota:
        d.write("cpu.cfs_quota_us", quota, W + "quota")
        for key, name, val in retry:
            d.write(name, val, W + key)
    # realtime: period before runtime (runtime is checked against the period)
    if cpu.get("realtimePeriod"):
        d.write("cpu.rt_period_us", cpu["realtimePeriod"], W + "realtimePeriod")
    if cpu.get("realtimeRuntime"):
        d.write("cpu.rt_runtime_us", cpu["realtimeRuntime"], W + "realtimeRuntime")
    if cpu.get("idle") is not None:
        d.write_optional("cpu.idle", cpu["idle"], W + "idle")


def _set_pids(d: Dir, p: dict):
    limit = p.get("limit")
    if limit is not None:  # 0 is a real limit; negative means no limit
        d.write("pids.max", "max" if limit < 0 else limit, "linux.resources.pids.limit")


def _set_blkio(d: Dir, b: dict):
    W = "linux.resources.blockIO."
    # CFQ files where the kernel has them, else BFQ's (runc); leaf weights exist only with CFQ. With neither
    # (the none/mq-deadline/kyber schedulers, e.g. kernel 6.x without BFQ) a weight cannot be honoured: say so.
    weight = "blkio.weight" if d.exists("blkio.weight") or not d.exists("blkio.bfq.weight") else "blkio.bfq.weight"
    wdev = "blkio.weight_device" if weight == "blkio.weight" else "blkio.bfq.weight_device"

    def write_weight(name, value, what):
        if d.path is not None and not d.exists(name):
            raise CgroupError(f"{what}: cannot set a block I/O weight: neither blkio.weight nor blkio.bfq.weight "
                              f"exists in {d.path} (the kernel's I/O schedulers have no weights: CFQ or BFQ needed)")
        d.write(name, value, what)
    if b.get("weight"):
        write_weight(weight, b["weight"], W + "weight")
    if b.get("leafWeight"):
        d.write_optional("blkio.leaf_weight", b["leafWeight"], W + "leafWeight")
    for i, wd in enumerate(b.get("weightDevice") or ()):
        dev = f"{wd['major']}:{wd['minor']}"
        if wd.get("weight"):
            write_weight(wdev, f"{dev} {wd['weight']}", f"{W}weightDevice[{i}].weight")
        if wd.get("leafWeight"):
            d.write_optional("blkio.leaf_weight_device", f"{dev} {wd['leafWeight']}",
                             f"{W}weightDevice[{i}].leafWeight")
    for key, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                      ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                      ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                      ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for i, td in enumerate(b.get(key) or ()):
            d.write(name, f"{td['major']}:{td['minor']} {td['rate']}", f"{W}{key}[{i}]")


def _set_hugetlb(d: Dir, limits: list):
    for i, h in enumerate(limits):
        size, what = h["pageSize"], f"linux.resources.hugepageLimits[{i}]"
        if d and not d.exists(f"hugetlb.{size}.limit_in_bytes"):
            raise CgroupError(f"{what}.pageSize: hugepage size {size} is not supported "
                              f"(this kernel has {', '.join(hugepage_sizes()) or 'none'})")
        d.write(f"hugetlb.{size}.limit_in_bytes", h["limit"], what + ".limit")
        if d.exists(f"hugetlb.{size}.rsvd.limit_in_bytes"):  # reservation accounting, where the kernel has it
            d.write(f"hugetlb.{size}.rsvd.limit_in_bytes", h["limit"], what + ".limit")


def _set_net_cls(d: Dir, n: dict):
    if n.get("classID") is not None:
        d.write("net_cls.classid", n["classID"], "linux.resources.network.classID")


def _set_net_prio(d: Dir, n: dict):
    for i, p in enumerate(n.get("priorities") or ()):
        d.write("net_prio.ifpriomap", f"{p['name']} {p['priority']}", f"linux.resources.network.priorities[{i}]")


def rdma_lines(rdma: dict) -> list[tuple]:
    out = []
    for dev, lim in rdma.items():
        h, o = lim.get("hcaHandles"), lim.get("hcaObjects")
        out.append((dev, f"{dev} hca_handle={'max' if h is None else h} hca_object={'max' if o is None else o}"))
    return out


def _set_rdma(d: Dir, rdma: dict):
    for dev, line in rdma_lines(rdma):
        d.write("rdma.max", line, f"linux.resources.rdma.{dev}")


def _set_devices(d: Dir, devices):
    """Default-deny, then the config's rules in order, then runc's always-allowed list."""
    rules = device_rules(devices)
    d.write("devices.deny", "a", "linux.resources.devices")
    for allow, t, major, minor, access in rules:
        line = "a" if t == "a" else f"{t} {'*' if major < 0 else major}:{'*' if minor < 0 else minor} {access}"
        d.write("devices.allow" if allow else "devices.deny", line, "linux.resources.devices")


# (controller, resources key, setter) in runc's subsystem order; devices are handled apart.
SETTERS = (
    ("cpuset", "cpu", _set_cpuset),
    ("memory", "memory", _set_memory),
    ("cpu", "cpu", _set_cpu),
    ("pids", "pids", _set_pids),
    ("blkio", "blockIO", _set_blkio),
    ("hugetlb", "hugepageLimits", _set_hugetlb),
    ("net_cls", "network", _set_net_cls),
    ("net_prio", "network", _set_net_prio),
    ("rdma", "rdma", _set_rdma),
)


# ---------------------------------------------------------------------------------------------------------------


class V1Manager(Manager):
    """hierarchies: [{"ctrls": [...], "opts": "cpu,cpuacct", "mnt": mountpoint, "dir": the container's dir}]."""

    version = "v1"

    def __init__(self, hierarchies: list, log=None):
        super().__init__(log)
        self.hierarchies = hierarchies

    @classmethod
    def for_path(cls, inner: str, log=None) -> "V1Manager":
        """Absolute inner path: below each hierarchy's mount point; relative: below this process's own cgroup."""
        own = own_cgroups()
        hs = []
        for fstype, mnt, root, sopts in cgroup_mounts():
            # super options name the hierarchy's controllers (and flags like xattr: not in /proc/self/cgroup)
            ctrls = [""] if fstype == "cgroup2" else [o for o in sopts if o in own and o]
            if not ctrls or ctrls[0] not in own:
                continue
            if inner.startswith("/"):
                base = mnt
            else:
                mine = own[ctrls[0]]
                rel = mine[len(root):] if (mine + "/").startswith(root.rstrip("/") + "/") else ""
                base = join(mnt, rel)
            hs.append({"ctrls": ctrls, "opts": ",".join(ctrls), "mnt": mnt, "dir": join(base, inner)})
        if not any("devices" in h["ctrls"] for h in hs):
            # like runc: running without the devices controller would silently drop the device policy
            raise CgroupError("cgroup v1: the devices controller is not mounted")
        return cls(hs, log)

    @classmethod
    def from_state(cls, d: dict, log=None) -> "V1Manager":
        return cls(d["hierarchies"], log)

    def to_state(self) -> dict:
        return {"version": "v1", "hierarchies": self.hierarchies}

    @property
    def paths(self) -> dict:
        return {c: h["dir"] for h in self.hierarchies for c in h["ctrls"]}

    def _dir(self, ctrl: str) -> Dir:
        return Dir(self.paths.get(ctrl), ctrl, self.log)

    def _unique_dirs(self):
        seen = []
        for h in self.hierarchies:
            if h["dir"] not in seen:
                seen.append(h["dir"])
        return seen

    # -- lifecycle --------------------------------------------------------------------------------------------
    def create(self):
        for h in self.hierarchies:
            try:
                os.makedirs(h["dir"], 0o755, exist_ok=True)
            except OSError as e:
                raise CgroupError(f"create cgroup {h['dir']}: {e.strerror}", e.errno) from None
            if "cpuset" in h["ctrls"]:
                _cpuset_fill(h["mnt"], h["dir"])
        self.check_usable()

    def apply(self, pid: int):
        for d in self._unique_dirs():
            Dir(d).write("cgroup.procs", pid, "")

    def set(self, resources: dict | None, *, initial: bool = False):
        """Write linux.resources. initial=True (create): the device policy is always programmed; on update only
        when `devices` is given."""
        r = resources or {}
        if r.get("unified"):
            raise CgroupError("linux.resources.unified: cgroup v1 does not support unified resources")
        if initial or r.get("devices") is not None:
            self.set_devices(r.get("devices"))
        for ctrl, key, setter in SETTERS:
            section = r.get(key)
            if section:
                setter(self._dir(ctrl), section)

    def set_devices(self, devices) -> None:
        """The device policy. v1 has no atomic swap: the rules are rewritten from `deny a`, and a process of the
        cgroup that opens a device meanwhile gets EPERM (create's init opening /dev/ptmx did). So create calls
        this while the cgroup is still empty; `update` leaves devices alone, as runc does."""
        if self.skip_devices:
            return
        _set_devices(self._dir("devices"), devices)

    def destroy(self):
        for d in self._unique_dirs():
            rmdir_tree(d)

    def kill_all(self, sig: int):
        """SIGKILL through the hybrid cgroup2 directory's cgroup.kill where there is one (runc); frozen v1 tasks
        die only once thawed."""
        unified = self.paths.get("")
        if sig == signal.SIGKILL and unified and os.path.exists(unified + "/cgroup.kill"):
            Dir(unified).write("cgroup.kill", 1)
            if self.is_frozen():
                self.thaw()
            return
        super().kill_all(sig)

    # -- freezer ----------------------------------------------------------------------------------------------
    def _freezer(self) -> Dir:
        d = self._dir("freezer")
        if not d:
            raise CgroupError("cgroup v1: the freezer controller is not mounted")
        return d

    def freeze(self):
        d = self._freezer()
        self.freeze_wait(lambda: d.read("freezer.state"), "FROZEN", lambda: d.write("freezer.state", "FROZEN"))

    def thaw(self):
        d = self._freezer()
        self.freeze_wait(lambda: d.read("freezer.state"), "THAWED", lambda: d.write("freezer.state", "THAWED"))

    def is_frozen(self) -> bool:
        p = self.paths.get("freezer")
        if not p:
            return False
        try:
            with open(p + "/freezer.state", "rb") as f:
                return f.read().startswith(b"FROZEN")
        except FileNotFoundError:
            return False

    # -- inspection -------------------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        p = self.paths
        for ctrl in ("freezer", "pids", "devices", "memory"):
            if ctrl in p:
                return walk_procs(p[ctrl])
        return walk_procs(next(iter(p.values()))) if p else []

    def stats(self) -> dict:
        from .stats import v1_stats
        return v1_stats(self.paths)

    def oom_notifier(self):
        from .stats import V1OomNotifier
        d = self._dir("memory")
        if not d:
            raise CgroupError("cgroup v1: the memory controller is not mounted: no OOM notifications")
        return V1OomNotifier(d.path)


def _cpuset_fill(mnt: str, leaf: str):
    """A new v1 cpuset cgroup starts with empty cpus/mems and cannot take tasks: copy them down from the parent,
    level by level from the mount point to the leaf."""
    rel = os.path.normpath(leaf)[len(os.path.normpath(mnt)):].strip("/")   # leaf is below mnt
    cur = mnt
    for part in ([] if not rel else rel.split("/")):
        parent, cur = cur, os.path.join(cur, part)
        for name in ("cpuset.cpus", "cpuset.mems"):
            d = Dir(cur, "cpuset")
            if not d.read(name):
                d.write(name, Dir(parent).read(name) or "\n")


def inner_path(cgroups_path: str | None, container_id: str) -> str:
    """runc: cgroupsPath cleaned, or the container id (relative) when none is given."""
    return clean_path(cgroups_path) if cgroups_path else container_id
