"""--systemd-cgroup: runc's systemd cgroup driver (cgroup v2). linux.cgroupsPath is "slice:prefix:name"; the container
lives in the transient unit prefix-name.scope (a slice when name ends in ".slice"), made over D-Bus with
StartTransientUnit on org.freedesktop.systemd1: Delegate=yes, the init pid in PIDs, the resources as unit properties
(SetUnitProperties, also on `update`), then the same cgroupfs writes as the v2 driver for what systemd cannot express
(as runc does). `delete` stops the unit (StopUnit) and resets it if it failed; a failed create does the same.

The D-Bus client is jeepney (PyPI): pure Python (no C extension to build, unlike dbus-python), a blocking API, no
dependencies, small and maintained; its I/O module imports in ~13 ms, paid only by the commands that talk to systemd
(create, update, delete) with --systemd-cgroup. Everything else (exec, pause, resume, ps, events, kill --all, state)
works on the scope's cgroup files through the v2 driver, as runc does, so this module imports nothing heavy at the top.
As a non-root user the user's own manager is used ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus), as runc.
"""
import errno

from ... import fastos as os

from .common import CgroupError, SystemdCgroupUnavailable, cgroup_mounts, join, rmdir_tree
from .v2 import V2Manager, cpu_weight, io_weight

SYSTEMD = "org.freedesktop.systemd1"
SD_PATH = "/org/freedesktop/systemd1"
SD_MANAGER = "org.freedesktop.systemd1.Manager"
UINT64_MAX = (1 << 64) - 1          # systemd's "infinity"
JOB_TIMEOUT = 30.0                  # runc waits 30 s for a job too


def parse_path(cgroups_path: str | None, container_id: str) -> tuple[str, str, str]:
    """"slice:prefix:name" (runc's format) -> its three parts; none given -> ("", "runc", id)."""
    if not cgroups_path:
        return "", "runc", container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise SystemdCgroupUnavailable(f'linux.cgroupsPath: expected "slice:prefix:name" for systemd cgroups, '
                                       f'got {cgroups_path!r}')
    return parts[0], parts[1], parts[2]


def unit_name(prefix: str, name: str) -> str:
    """runc's getUnitName: a scope unless the name asks for a slice."""
    return name if name.endswith(".slice") else f"{prefix}-{name}.scope"


def expand_slice(slice_: str) -> str:
    """systemd's slice naming: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", "-.slice" -> "/"."""
    what = f"linux.cgroupsPath: invalid slice name {slice_!r}"
    if not slice_.endswith(".slice") or "/" in slice_:
        raise CgroupError(f"{what}: must end in .slice and have no '/'")
    if slice_ == "-.slice":
        return "/"
    base = slice_[:-len(".slice")]
    if not base or base.startswith("-") or base.endswith("-") or "--" in base:
        raise CgroupError(f"{what}: dashes separate its parent slices and cannot lead, trail or repeat")
    path, prefix = "", ""
    for part in base.split("-"):
        path += f"/{prefix}{part}.slice"
        prefix += part + "-"
    return path


# ---------------------------------------------------------------------------------------------------------------
# the bus

def bus_address(user: bool) -> str:
    if not user:
        return os.getenv("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=/run/dbus/system_bus_socket"
    addr = os.getenv("DBUS_SESSION_BUS_ADDRESS")
    if addr:
        return addr
    xdg = os.getenv("XDG_RUNTIME_DIR")
    if xdg and os.path.exists(f"{xdg}/bus"):
        return f"unix:path={xdg}/bus"
    where = f"no bus at $XDG_RUNTIME_DIR/bus ({xdg}/bus)" if xdg else "$XDG_RUNTIME_DIR is not set either"
    raise SystemdCgroupUnavailable("--systemd-cgroup as a non-root user talks to the user's own systemd manager, and "
                                   f"there is none to reach: $DBUS_SESSION_BUS_ADDRESS is not set and {where} (a "
                                   "login starts user@UID.service, `loginctl enable-linger` keeps one; its bus needs "
                                   "dbus-user-session or dbus-broker), or run without --systemd-cgroup")


class Bus:
    """One connection to systemd's manager (system or user bus), for one command."""

    def __init__(self, user: bool = False):
        try:
            from jeepney.io.blocking import open_dbus_connection
        except ImportError:
            raise SystemdCgroupUnavailable("--systemd-cgroup needs the Python package jeepney (pip install jeepney)") \
                from None
        addr = bus_address(user)
        try:
            self.conn = open_dbus_connection(bus=addr)
        except (OSError, RuntimeError, ValueError) as e:
            raise SystemdCgroupUnavailable(f"--systemd-cgroup: cannot connect to the D-Bus {'user' if user else 'system'}"
                                           f" bus at {addr}: {e} (is systemd running?)") from None
        self.user = user
        self._version = None

    def close(self):
        self.conn.close()

    def call(self, method: str, signature: str = "", body=(), *, path: str = SD_PATH, iface: str = SD_MANAGER):
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import unwrap_msg
        msg = new_method_call(DBusAddress(path, bus_name=SYSTEMD, interface=iface), method, signature or None, body)
        return unwrap_msg(self.conn.send_and_get_reply(msg, timeout=JOB_TIMEOUT))

    def version(self) -> int:
        """systemd's version number (252 from "252.19-1~deb12u1")."""
        if self._version is None:
            v = self.call("Get", "ss", (SD_MANAGER, "Version"), iface="org.freedesktop.DBus.Properties")[0][1]
            digits = ""
            for ch in str(v).lstrip("v"):
                if not ch.isdigit():
                    break
                digits += ch
            self._version = int(digits or 0)
        return self._version

    def run_job(self, method: str, signature: str, body, what: str) -> str:
        """Call a method that queues a job, wait for its JobRemoved signal; return the job's result ("done"...)."""
        from collections import deque
        from jeepney import MatchRule, message_bus
        from jeepney.wrappers import unwrap_msg
        rule = MatchRule(type="signal", sender=SYSTEMD, interface=SD_MANAGER, member="JobRemoved", path=SD_PATH)
        unwrap_msg(self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=JOB_TIMEOUT))
        # the bus matches the well-known sender name; the signals come from systemd's unique name (":1.2"), so the
        # local filter leaves the sender out
        local = MatchRule(type="signal", interface=SD_MANAGER, member="JobRemoved", path=SD_PATH)
        queue = deque()
        with self.conn.filter(local, queue=queue):
            job = self.call(method, signature, body)[0]
            import time
            deadline = time.monotonic() + JOB_TIMEOUT
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CgroupError(f"timed out after {JOB_TIMEOUT:.0f} s waiting for systemd to {what}")
                try:
                    sig = self.conn.recv_until_filtered(queue, timeout=left)
                except TimeoutError:
                    continue
                _id, job_path, _unit, result = sig.body
                if job_path == job:
                    return result


def _dbus_error(e) -> tuple[str, str]:
    name = getattr(e, "name", "") or ""
    data = getattr(e, "data", ()) or ()
    return name, (data[0] if data and isinstance(data[0], str) else str(e))


# ---------------------------------------------------------------------------------------------------------------
# linux.resources -> unit properties (runc's genV2ResourcesProperties); each value is (D-Bus signature, value)

def _u64(v: int) -> int:
    return UINT64_MAX if v < 0 else v


def cpu_quota_props(quota: int, period: int, version) -> list:
    """CPUQuotaPerSecUSec (+ CPUQuotaPeriodUSec, systemd >= 242): quota/period in us per second, rounded up to
    10 ms (systemd keeps whole percents) so the cgroup's cpu.max can still be set to the exact quota (runc)."""
    props = []
    if period and version() >= 242:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = UINT64_MAX
        if quota > 0:
            per_sec = quota * 1_000_000 // (period or 100_000)
            if per_sec % 10_000:
                per_sec = (per_sec // 10_000 + 1) * 10_000
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props


def cpuset_mask(spec: str, what: str) -> bytes:
    """"0-2,5" -> the little-endian bitmask systemd takes for AllowedCPUs/AllowedMemoryNodes."""
    bits = 0
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise CgroupError(f"{what}: invalid cpuset list {spec!r}") from None
        if a > b:
            raise CgroupError(f"{what}: invalid range {part!r}")
        for i in range(a, b + 1):
            bits |= 1 << i
    return bits.to_bytes((bits.bit_length() + 7) // 8 or 1, "little")


def _swap_v2(m: dict) -> int:
    limit, swap = m.get("limit") or 0, m.get("swap") or 0
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0) or limit in (0, -1) or swap < limit:
        return swap if swap in (-1, 0) else 0    # invalid combinations: the cgroupfs write reports them
    return swap - limit


def resource_props(r: dict, version) -> list:
    """linux.resources -> [(property, (signature, value))]. version() is asked only when a property needs it."""
    props = []
    m = r.get("memory") or {}
    if m.get("limit"):
        props.append(("MemoryMax", ("t", _u64(m["limit"]))))
    if m.get("reservation"):
        props.append(("MemoryLow", ("t", _u64(m["reservation"]))))
    swap = _swap_v2(m) if m else 0
    if swap:
        props.append(("MemorySwapMax", ("t", _u64(swap))))
    c = r.get("cpu") or {}
    if c.get("shares"):
        props.append(("CPUWeight", ("t", cpu_weight(c["shares"]))))
    props += cpu_quota_props(c.get("quota") or 0, c.get("period") or 0, version)
    for key, prop in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
        if c.get(key) and version() >= 244:
            props.append((prop, ("ay", cpuset_mask(c[key], f"linux.resources.cpu.{key}"))))
    p = r.get("pids") or {}
    if p.get("limit") and (p["limit"] > 0 or p["limit"] == -1):
        props.append(("TasksMax", ("t", _u64(p["limit"]))))
    b = r.get("blockIO") or {}
    if b.get("weight"):
        props.append(("IOWeight", ("t", io_weight(b["weight"]))))
    for key, prop in (("memory.max", "MemoryMax"), ("memory.high", "MemoryHigh"), ("memory.low", "MemoryLow"),
                      ("memory.min", "MemoryMin"), ("memory.swap.max", "MemorySwapMax"), ("pids.max", "TasksMax")):
        v = (r.get("unified") or {}).get(key)
        if v is not None:
            v = str(v).strip()
            try:
                props.append((prop, ("t", UINT64_MAX if v == "max" else int(v))))
            except ValueError:
                pass                             # the cgroupfs write names the bad value
    return props


def device_props(devices) -> list:
    """linux.resources.devices (+ runc's defaults) -> DevicePolicy/DeviceAllow (runc's devices/systemd.go): an
    allow-list becomes DevicePolicy=strict and one DeviceAllow per rule; allow-all becomes char-*/block-* rwm. systemd
    has no deny-lists: such rules keep a deny-all policy in systemd; the eBPF program the v2 driver attaches after
    (it replaces systemd's, as runc's does) is the one that enforces the config's rules."""
    from .common import device_rules
    allow_all, allowed = False, {}
    for allow, t, major, minor, access in device_rules(devices):
        if t == "a" and major == -1 and minor == -1:     # resets: allow-all or deny-all (the emulator's modes)
            allow_all, allowed = allow and set(access) == set("rwm"), {}
            continue
        types = ("c", "b") if t == "a" else (t,)
        for ty in types:
            key = (ty, major, minor)
            have = set(allowed.get(key, ""))
            have = have | set(access) if allow else have - set(access)
            if have:
                allowed[key] = "".join(ch for ch in "rwm" if ch in have)
            else:
                allowed.pop(key, None)
    reset = [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    if allow_all:
        if allowed:
            pass    # a deny-list on top of allow-all: not expressible; deny-all in systemd, eBPF enforces
        return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", [("char-*", "rwm"), ("block-*", "rwm")]))]
    entries = []
    groups = None
    for (ty, major, minor), access in allowed.items():
        kind = "char" if ty == "c" else "block"
        if major == -1:
            path = f"{kind}-*"
        elif minor == -1:
            groups = groups if groups is not None else _device_groups()
            name = groups.get((kind, major))
            if not name:
                continue    # no such driver loaded: nothing to allow (runc skips it too)
            path = f"{kind}-{name}"
        else:
            path = f"/dev/{kind}/{major}:{minor}"
        entries.append((path, access))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", entries))] if entries else reset


def _device_groups() -> dict:
    """/proc/devices -> {("char"|"block", major): name}."""
    out, kind = {}, ""
    try:
        with open("/proc/devices") as f:
            for line in f:
                line = line.strip()
                if line.startswith("Character"):
                    kind = "char"
                elif line.startswith("Block"):
                    kind = "block"
                elif line and kind:
                    num, _, name = line.partition(" ")
                    if num.isdigit():
                        out[(kind, int(num))] = name
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------------------------------------------


class SystemdManager(V2Manager):
    """The v2 driver on the unit's cgroup, plus the unit: started on the first apply(pid), changed by set(), stopped
    by destroy()."""

    def __init__(self, path: str, mnt: str, unit: str, slice_: str, user: bool = False, started: bool = False,
                 log=None):
        super().__init__(path, mnt, log)
        self.unit, self.slice, self.user, self.started = unit, slice_, user, started
        self._devices = None     # set_devices() before the unit exists: (devices,), applied when it starts

    @classmethod
    def from_state(cls, d: dict, log=None) -> "SystemdManager":
        sd = d["systemd"]
        return cls(d["path"], d.get("mnt", "/sys/fs/cgroup"), sd["unit"], sd["slice"], sd.get("user", False),
                   True, log)

    def to_state(self) -> dict:
        d = super().to_state()
        d["systemd"] = {"unit": self.unit, "slice": self.slice, "user": self.user}
        return d

    def create(self):
        """Nothing yet: a scope needs a pid, so systemd makes the unit (and its cgroup) in apply()."""

    def warm_up(self, pid: int):
        if self.started:     # exec: the scope exists, join it early; create: the unit is started with init's pid
            self.apply(pid)
        return self.started

    def apply(self, pid: int):
        if self.started:
            try:
                return super().apply(pid)
            except CgroupError as e:
                # exec as a user from outside the user manager's tree: cgroup v2 moves a process only where the mover
                # can write cgroup.procs of the common ancestor. runc (rootless) ignores the failure and leaves the
                # process outside the scope, beyond its limits, pause and kill --all; we say why instead (a
                # deliberate difference: the container's limits are the point of its cgroup)
                if not self.user or e.errno != errno.EACCES:
                    raise
                raise CgroupError(f"{e}: as a non-root user a process can join the scope {self.unit} only from "
                                  "inside the user's systemd manager (e.g. `systemd-run --user --scope ociruntime "
                                  "exec ...`, or a session in the manager's app.slice)", e.errno) from None
        self._start(pid)
        self.started = True
        if self.unit.endswith(".slice"):     # a slice takes no PIDs: the pid goes into its cgroup directly (runc)
            os.makedirs(self.path, 0o755, exist_ok=True)
            super().apply(pid)
        super().create()                     # controllers systemd does not enable (hugetlb, rdma, misc), runc too
        if self._devices is not None:        # the unit has them as properties; the eBPF program replaces
            super().set_devices(self._devices[0])   # systemd's (as runc's does) before init is let go
            self._devices = None

    def set_devices(self, devices) -> None:
        """create calls this before any process is placed: systemd gets them with the unit (DevicePolicy,
        DeviceAllow), the eBPF program follows once the unit's cgroup exists."""
        if not self.started:
            self._devices = (devices,)
            return
        if self.skip_devices:
            return
        self._set_props(device_props(devices))
        super().set_devices(devices)

    def _start(self, pid: int):
        props = [("Description", ("s", f"ociruntime container {self.unit}"))]
        if self.unit.endswith(".slice"):
            props.append(("Wants", ("as", [self.slice])))
        else:
            props += [("Slice", ("s", self.slice)), ("Delegate", ("b", True)), ("PIDs", ("au", [pid]))]
        props += [("MemoryAccounting", ("b", True)), ("CPUAccounting", ("b", True)), ("IOAccounting", ("b", True)),
                  ("TasksAccounting", ("b", True)), ("DefaultDependencies", ("b", False))]
        if self._devices is not None and not self.skip_devices:
            props += device_props(self._devices[0])
        bus = Bus(self.user)
        try:
            for attempt in (0, 1):
                try:
                    result = bus.run_job("StartTransientUnit", "ssa(sv)a(sa(sv))",
                                         (self.unit, "replace", props, []), f"start {self.unit}")
                    break
                except Exception as e:  # noqa: BLE001 — jeepney's DBusErrorResponse
                    name, text = _dbus_error(e)
                    if name.endswith(".UnitExists") and attempt == 0:
                        self._reset_failed(bus)      # a failed leftover of an earlier container: gone after this
                        continue
                    if isinstance(e, CgroupError):
                        raise
                    raise CgroupError(f"systemd: start transient unit {self.unit}: {text}") from None
            if result != "done":
                raise CgroupError(f"systemd: start transient unit {self.unit}: job {result} "
                                  f"(journalctl -u {self.unit})")
        finally:
            bus.close()

    def set(self, resources: dict | None, *, initial: bool = False):
        r = resources or {}
        if initial or r.get("devices") is not None:
            self.set_devices(r.get("devices"))
        self._set_props(None, r)
        super().set({k: v for k, v in r.items() if k != "devices"})   # the same values, and what systemd cannot
        #                                                                express, in the files

    def _set_props(self, props, resources=None):
        """SetUnitProperties (runtime): the given properties, or those of the resources."""
        bus = Bus(self.user)
        try:
            if props is None:
                props = resource_props(resources or {}, bus.version)
            if props:
                try:
                    bus.call("SetUnitProperties", "sba(sv)", (self.unit, True, props))
                except Exception as e:  # noqa: BLE001
                    name, text = _dbus_error(e)
                    raise CgroupError(f"systemd: set properties of {self.unit} "
                                      f"({', '.join(p for p, _ in props)}): {text}") from None
        finally:
            bus.close()

    def destroy(self):
        """Stop the unit (its processes are killed, its cgroup removed by systemd) and forget a failed one."""
        try:
            bus = Bus(self.user)
        except SystemdCgroupUnavailable:
            if self.started:
                raise
            return
        try:
            try:
                result = bus.run_job("StopUnit", "ss", (self.unit, "replace"), f"stop {self.unit}")
                if result not in ("done", "canceled"):
                    self.debug(f"systemd: stop {self.unit}: job {result}")
            except Exception as e:  # noqa: BLE001
                name, text = _dbus_error(e)
                if not name.endswith(".NoSuchUnit"):
                    raise CgroupError(f"systemd: stop unit {self.unit}: {text}") from None
            self._reset_failed(bus)
        finally:
            bus.close()
        rmdir_tree(self.path)   # systemd removes it; what a delegated subtree left is ours

    def _reset_failed(self, bus):
        try:
            bus.call("ResetFailedUnit", "s", (self.unit,))
        except Exception:  # noqa: BLE001 — not failed / not loaded: nothing to reset
            pass


def manager_for(cgroups_path: str | None, container_id: str, log=None) -> SystemdManager:
    slice_, prefix, name = parse_path(cgroups_path, container_id)
    user = os.geteuid() != 0
    if not os.path.isdir("/run/systemd/system"):
        raise SystemdCgroupUnavailable("--systemd-cgroup: systemd is not running on this host (no "
                                       "/run/systemd/system); run without --systemd-cgroup to use the cgroupfs driver")
    from . import detect
    if detect() != "v2":
        raise SystemdCgroupUnavailable("--systemd-cgroup: this runtime's systemd driver needs cgroup v2 (this host has "
                                       "v1/hybrid cgroups); run without --systemd-cgroup to use the cgroupfs driver")
    if not name:
        raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r}: the name part is empty")
    slice_ = slice_ or ("user.slice" if user else "system.slice")
    unit = unit_name(prefix, name)
    mnt = next((m for fstype, m, _root, _ in cgroup_mounts() if fstype == "cgroup2"), "/sys/fs/cgroup")
    base = expand_slice(slice_)
    if user:
        base = _user_manager_cgroup() + base
    return SystemdManager(join(mnt, base + "/" + unit), mnt, unit, slice_, user, False, log)


def _user_manager_cgroup() -> str:
    """The user manager's own cgroup (/user.slice/user-1000.slice/user@1000.service): its slices live below it."""
    bus = Bus(user=True)
    try:
        v = bus.call("Get", "ss", (SD_MANAGER, "ControlGroup"), iface="org.freedesktop.DBus.Properties")[0][1]
    finally:
        bus.close()
    return str(v).rstrip("/")
