"""cgroup v2 driver: one directory in the unified hierarchy. Controllers are enabled in cgroup.subtree_control up the
path; each linux.resources section is written by one small setter; devices go through an eBPF program."""
import errno
from ... import fastos as os
import _signal as signal  # the C module: `signal` imports enum (~3 ms on every delete)

from .common import CgroupError, Dir, Manager, cgroup_mounts, join, own_cgroups, rmdir_tree, walk_procs


class V2Dir(Dir):
    """A v2 directory whose write errors say when the file is missing because its controller is not enabled."""

    __slots__ = ()

    def write(self, name, value, what=""):
        try:
            super().write(name, value, what)
        except CgroupError as e:
            ctrl = name.split(".", 1)[0]
            if e.errno == errno.ENOENT and ctrl != "cgroup" and ctrl not in self.controllers():
                raise CgroupError(f"{what or name}: cgroup controller {ctrl} is not available in {self.path} "
                                  f"(not enabled in the parent's cgroup.subtree_control)", e.errno) from None
            raise

    def controllers(self) -> list[str]:
        try:
            return self.read("cgroup.controllers").split()
        except OSError:
            return []


def _max(v: int) -> str:
    return "max" if v == -1 else str(v)


def cpu_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000] (runc's linear conversion)."""
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(blkio: int) -> int:
    """blkio weight [10, 1000] -> io.weight [1, 10000] (runc)."""
    return 1 + (blkio - 10) * 9999 // 990


# ---------------------------------------------------------------------------------------------------------------
# setters: (V2Dir, the config section)

def _set_cpuset(d: V2Dir, cpu: dict):
    for key in ("cpus", "mems"):
        if cpu.get(key):
            d.write(f"cpuset.{key}", cpu[key], f"linux.resources.cpu.{key}")


def _set_memory(d: V2Dir, m: dict):
    W = "linux.resources.memory."
    limit, swap = m.get("limit") or 0, m.get("swap") or 0
    # memory+swap (the spec's, v1's) -> swap alone (runc's ConvertMemorySwapToCgroupV2Value)
    if limit == -1 and swap == 0:
        swap_v2 = -1
    elif swap in (-1, 0):
        swap_v2 = swap
    elif limit in (0, -1):
        raise CgroupError(f"{W}swap: unable to set swap limit without memory limit")
    elif swap < limit:
        raise CgroupError(f"{W}swap: memory+swap limit ({swap}) should be >= memory limit ({limit})")
    else:
        swap_v2 = swap - limit
    if limit > 0 and m.get("checkBeforeUpdate"):
        usage = d.read_int("memory.current")
        if limit < usage:
            raise CgroupError(f"{W}limit: rejecting memory limit {limit} below current usage {usage}")
    if swap_v2 or swap > 0:     # memory+swap equal to the limit: no swap at all, "0" (runc)
        if d.exists("memory.swap.max"):
            d.write("memory.swap.max", _max(swap_v2), W + "swap")
        elif swap_v2 not in (-1, 0):  # no swap in this kernel: unlimited or none is what it already has
            raise CgroupError(f"{W}swap: swap accounting is not available (no memory.swap.max in {d.path})")
    if limit:
        d.write("memory.max", _max(limit), W + "limit")
    if m.get("reservation") is not None:
        d.write("memory.low", _max(m["reservation"]), W + "reservation")
    for key, why in (("kernel", "kernel memory limits do not exist in cgroup v2"),
                     ("kernelTCP", "kernel TCP memory limits do not exist in cgroup v2"),
                     ("swappiness", "swappiness is not a cgroup v2 setting"),
                     ("disableOOMKiller", "the OOM killer cannot be disabled in cgroup v2"),
                     ("useHierarchy", "cgroup v2 accounting is always hierarchical")):
        if m.get(key) not in (None, False, -1):
            d.debug(f"{W}{key}: {why}, skipped")


def _set_cpu(d: V2Dir, cpu: dict):
    W = "linux.resources.cpu."
    if cpu.get("shares"):
        d.write("cpu.weight", cpu_weight(cpu["shares"]), W + "shares")
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if quota or period:
        if quota:
            value = str(quota) if quota > 0 else "max"
        else:  # a period alone keeps the current quota (cpu.max takes both)
            value = d.read("cpu.max").split()[0] if d.exists("cpu.max") else "max"
        if period:
            value += f" {period}"
        d.write("cpu.max", value, W + "quota")
    if cpu.get("burst") is not None:
        d.write("cpu.max.burst", cpu["burst"], W + "burst")
    if cpu.get("idle") is not None:
        d.write("cpu.idle", cpu["idle"], W + "idle")
    for key in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(key):
            raise CgroupError(f"{W}{key}: realtime scheduling limits are not supported by cgroup v2")


def _set_pids(d: V2Dir, p: dict):
    if p.get("limit") is not None:
        d.write("pids.max", "max" if p["limit"] < 0 else p["limit"], "linux.resources.pids.limit")


def _set_io(d: V2Dir, b: dict):
    W = "linux.resources.blockIO."
    bfq = d.exists("io.bfq.weight")
    if b.get("weight"):
        if bfq:
            d.write("io.bfq.weight", b["weight"], W + "weight")
        else:
            d.write("io.weight", io_weight(b["weight"]), W + "weight")
    if b.get("leafWeight"):
        d.debug(f"{W}leafWeight: cgroup v2 has no leaf weights, skipped")
    for i, wd in enumerate(b.get("weightDevice") or ()):
        dev = f"{wd['major']}:{wd['minor']}"
        if wd.get("weight"):
            if bfq:
                d.write("io.bfq.weight", f"{dev} {wd['weight']}", f"{W}weightDevice[{i}].weight")
            else:
                d.write("io.weight", f"{dev} {io_weight(wd['weight'])}", f"{W}weightDevice[{i}].weight")
        if wd.get("leafWeight"):
            d.debug(f"{W}weightDevice[{i}].leafWeight: cgroup v2 has no leaf weights, skipped")
    for key, knob in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                      ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for i, td in enumerate(b.get(key) or ()):
            d.write("io.max", f"{td['major']}:{td['minor']} {knob}={td['rate'] or 'max'}", f"{W}{key}[{i}]")


def _set_hugetlb(d: V2Dir, limits: list):
    for i, h in enumerate(limits):
        size, what = h["pageSize"], f"linux.resources.hugepageLimits[{i}]"
        if "hugetlb" in d.controllers() and not d.exists(f"hugetlb.{size}.max"):
            from .common import hugepage_sizes
            raise CgroupError(f"{what}.pageSize: hugepage size {size} is not supported "
                              f"(this kernel has {', '.join(hugepage_sizes()) or 'none'})")
        d.write(f"hugetlb.{size}.max", h["limit"], what + ".limit")
        if d.exists(f"hugetlb.{size}.rsvd.max"):
            d.write(f"hugetlb.{size}.rsvd.max", h["limit"], what + ".limit")


def _set_rdma(d: V2Dir, rdma: dict):
    from .v1 import rdma_lines
    for dev, line in rdma_lines(rdma):
        d.write("rdma.max", line, f"linux.resources.rdma.{dev}")


def _set_network(d: V2Dir, n: dict):
    d.debug("linux.resources.network: net_cls/net_prio do not exist in cgroup v2, skipped")


def _set_unified(d: V2Dir, unified: dict):
    for key, value in unified.items():
        if "/" in key or key in (".", ".."):
            raise CgroupError(f"linux.resources.unified.{key}: not a file name")
        d.write(key, value, f"linux.resources.unified.{key}")


SETTERS = (
    ("cpu", _set_cpuset), ("memory", _set_memory), ("cpu", _set_cpu), ("pids", _set_pids), ("blockIO", _set_io),
    ("hugepageLimits", _set_hugetlb), ("rdma", _set_rdma), ("network", _set_network),
    ("unified", _set_unified),  # last: raw keys override the converted ones (runc)
)


# ---------------------------------------------------------------------------------------------------------------


class V2Manager(Manager):
    version = "v2"

    def __init__(self, path: str, mnt: str = "/sys/fs/cgroup", log=None, controllers=None):
        """controllers: which to enable in subtree_control up the path (None: every available one)."""
        super().__init__(log)
        self.path, self.mnt, self.controllers = path, mnt, controllers

    @classmethod
    def for_path(cls, inner: str, log=None) -> "V2Manager":
        mnt, root = "/sys/fs/cgroup", "/"
        for fstype, mountpoint, mroot, _ in cgroup_mounts():
            if fstype == "cgroup2":
                mnt, root = mountpoint, mroot
                break
        if inner.startswith("/"):
            base = mnt
        else:
            mine = own_cgroups().get("", "/")
            base = join(mnt, mine[len(root):] if (mine + "/").startswith(root.rstrip("/") + "/") else "")
        return cls(join(base, inner), mnt, log)

    @classmethod
    def from_state(cls, d: dict, log=None) -> "V2Manager":
        return cls(d["path"], d.get("mnt", "/sys/fs/cgroup"), log)

    def to_state(self) -> dict:
        return {"version": "v2", "path": self.path, "mnt": self.mnt}

    @property
    def paths(self) -> dict:
        return {"": self.path}

    def _dir(self) -> V2Dir:
        return V2Dir(self.path, "", self.log)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def create(self):
        try:
            os.makedirs(self.path, 0o755, exist_ok=True)
        except OSError as e:
            raise CgroupError(f"create cgroup {self.path}: {e.strerror}", e.errno) from None
        # enable controllers from the mount root down to the parent (best effort, as runc: a controller that
        # cannot be enabled shows up as a clear error when a resource needs it)
        rel = os.path.relpath(os.path.dirname(self.path), self.mnt)
        level = self.mnt
        for part in [""] + ([] if rel in (".", "") else rel.split("/")):
            level = os.path.join(level, part) if part else level
            self._enable(level)
        self.check_usable()

    def _enable(self, level: str):
        d = V2Dir(level)
        try:
            avail = d.read("cgroup.controllers").split()
            on = d.read("cgroup.subtree_control").split()
        except OSError:
            return
        want = [c for c in avail if c not in on and (self.controllers is None or c in self.controllers)]
        if not want:
            return
        try:
            d.write("cgroup.subtree_control", " ".join("+" + c for c in want))
        except CgroupError:
            for c in want:
                try:
                    d.write("cgroup.subtree_control", "+" + c)
                except CgroupError as e:
                    self.debug(f"enable {c} in {level}: {e}")

    def apply(self, pid: int):
        self._dir().write("cgroup.procs", pid)

    def set(self, resources: dict | None, *, initial: bool = False):
        r = resources or {}
        d = self._dir()
        if initial or r.get("devices") is not None:
            self.set_devices(r.get("devices"))
        for key, setter in SETTERS:
            if r.get(key):
                setter(d, r[key])

    def set_devices(self, devices) -> None:
        """The device policy: an eBPF program swapped in atomically (devices_bpf), never a moment without one."""
        if self.skip_devices:
            return
        from .devices_bpf import apply_rules
        apply_rules(self.path, devices)

    def destroy(self):
        rmdir_tree(self.path)

    # -- freezer ----------------------------------------------------------------------------------------------
    def _freeze(self, want: str):
        d = self._dir()
        if not d.exists("cgroup.freeze"):
            raise CgroupError(f"cgroup v2: {self.path}/cgroup.freeze is missing (kernel older than 5.2?)")
        self.freeze_wait(lambda: str(d.read_keyed("cgroup.events").get("frozen", 0)), want,
                         lambda: d.write("cgroup.freeze", want))

    def freeze(self):
        self._freeze("1")

    def thaw(self):
        self._freeze("0")

    def is_frozen(self) -> bool:
        try:
            with open(self.path + "/cgroup.freeze", "rb") as f:
                return f.read(1) == b"1"
        except FileNotFoundError:
            return False

    def kill_all(self, sig: int):
        if sig == signal.SIGKILL and os.path.exists(self.path + "/cgroup.kill"):
            self._dir().write("cgroup.kill", 1)
            return
        super().kill_all(sig)

    # -- inspection -------------------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        return walk_procs(self.path)

    def stats(self) -> dict:
        from .stats import v2_stats
        return v2_stats(self.path)

    def oom_notifier(self):
        from .stats import V2OomNotifier
        return V2OomNotifier(self.path)
