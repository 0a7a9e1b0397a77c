"""What both drivers share: the error type, a cgroup directory's file I/O, /proc parsing, runc's default device
rules, recursive pid listing and removal. No driver logic here."""
import errno as _errno
from ... import fastos as os
import time

from ...errors import RuntimeErr


class CgroupError(RuntimeErr):
    """A cgroup operation failed; the message names the file (or the config path) involved."""

    def __init__(self, msg: str, err: int = 0):
        super().__init__(msg)
        self.errno = err


class SystemdCgroupUnavailable(CgroupError):
    """--systemd-cgroup was asked for but there is no systemd to talk to."""


# runc's specconv.AllowedDevices, appended after the config's rules (so they cannot be disabled, as in runc):
# (type, major, minor, access); -1 = wildcard.
DEFAULT_DEVICE_RULES = (
    ("c", -1, -1, "m"), ("b", -1, -1, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 136, -1, "rwm"), ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),      # tun/tap (runc 1.1.5's list; its devices.list matches ours with it)
)


def device_rules(devices, *, defaults: bool = True) -> list[tuple]:
    """linux.resources.devices -> [(allow, type, major, minor, access)], in order, runc's defaults appended.
    Evaluated on top of deny-all; a later rule overrides an earlier one."""
    rules = []
    for i, d in enumerate(devices or ()):
        t = d.get("type") or "a"
        if t not in ("a", "b", "c"):
            raise CgroupError(f"linux.resources.devices[{i}].type: {t!r} is not one of a, b, c")
        access = d.get("access") or "rwm"
        if not access or set(access) - set("rwm"):
            raise CgroupError(f"linux.resources.devices[{i}].access: {access!r} is not a combination of r, w, m")
        major = d.get("major")
        minor = d.get("minor")
        rules.append((bool(d.get("allow")), t, -1 if major is None else int(major),
                      -1 if minor is None else int(minor), access))
    if defaults:
        rules.extend((True,) + r for r in DEFAULT_DEVICE_RULES)
    return rules


class Dir:
    """One cgroup directory (or a controller that is not there: path None). Errors name the file."""

    __slots__ = ("path", "ctrl", "log")

    def __init__(self, path: str | None, ctrl: str = "", log=None):
        self.path, self.ctrl, self.log = path, ctrl, log

    def __bool__(self):
        return self.path is not None

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def exists(self, name: str) -> bool:
        return self.path is not None and os.path.exists(self.file(name))

    def write(self, name: str, value, what: str = ""):
        """Write value (str or int) to the file. `what` is the config path, for the error message."""
        if self.path is None:
            raise CgroupError(f"{what or name}: cannot set {name}: cgroup controller {self.ctrl} is not available")
        data = str(value).encode()
        path = self.file(name)
        try:
            os.write_file(path, data)
        except OSError as e:
            prefix = f"{what}: " if what else ""
            raise CgroupError(f"{prefix}write {data.decode()!r} to {path}: {e.strerror}", e.errno) from None

    def write_optional(self, name: str, value, what: str = "") -> bool:
        """Write if the kernel has the file; otherwise skip with a debug log. Returns whether it was written."""
        if not self.exists(name):
            self.debug(f"{what or name}: {name} not available on this kernel, skipped")
            return False
        self.write(name, value, what)
        return True

    def read(self, name: str) -> str:
        with open(self.file(name), "rb") as f:
            return f.read().decode().strip()

    def read_int(self, name: str, default: int = 0) -> int:
        try:
            v = self.read(name)
        except OSError:
            return default
        if v == "max":
            return 0
        try:
            return int(v)
        except ValueError:
            return default

    def read_keyed(self, name: str) -> dict:
        """A flat-keyed file ("key value" per line) -> {key: int}."""
        out = {}
        try:
            text = self.read(name)
        except OSError:
            return out
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            try:
                out[k] = int(v)
            except ValueError:
                pass
        return out

    def debug(self, msg: str):
        if self.log:
            self.log(msg)


def own_cgroups(proc_file: str = "/proc/self/cgroup") -> dict:
    """/proc/self/cgroup -> {controller: path}; named hierarchies as "name=systemd", the v2 one as ""."""
    out = {}
    with open(proc_file) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else ("",):
                out[c] = path
    return out


def cgroup_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[tuple]:
    """Every cgroup/cgroup2 mount: (fstype, mountpoint, root, super options list). First mount of a hierarchy wins."""
    out, seen = [], set()
    with open(mountinfo) as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            fstype, _src, sopts = post.split(" ", 2)
            if fstype not in ("cgroup", "cgroup2") or fields[2] in seen:
                continue
            seen.add(fields[2])
            out.append((fstype, _unescape(fields[4]), _unescape(fields[3]), sopts.strip().split(",")))
    return out


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def clean_path(p: str) -> str:
    """runc's CleanPath: normalise, and keep a relative path from climbing above its base with '..'."""
    if not p:
        return ""
    if p.startswith("/"):
        return os.path.normpath(p)
    return os.path.normpath("/" + p).lstrip("/") or "."


def join(base: str, inner: str) -> str:
    """Join an absolute/relative cgroup path below a directory (never escaping it)."""
    inner = os.path.normpath("/" + inner).lstrip("/")
    return os.path.join(base, inner) if inner else base


def cgroup_dirs(path: str) -> list[str]:
    """path and every sub-cgroup below it, parents first (os.walk without importing os: hot path)."""
    out, todo = [], [path]
    while todo:
        d = todo.pop()
        out.append(d)
        try:
            with os.scandir(d) as it:
                todo.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return out


def walk_procs(path: str) -> list[int]:
    """Every pid in cgroup.procs of path and its descendants."""
    pids = []
    for d in cgroup_dirs(path):
        try:
            with open(os.path.join(d, "cgroup.procs"), "rb") as f:
                pids.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue
    return pids


def rmdir_tree(path: str, attempts: int = 50):
    """Remove a cgroup directory and its sub-cgroups, deepest first; retry while exiting tasks linger (EBUSY).
    A missing directory is fine."""
    try:
        os.rmdir(path)               # the usual case: no sub-cgroups, no lingering task
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    for d in reversed(cgroup_dirs(path)):
        delay = 0.002
        for i in range(attempts):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != _errno.EBUSY or i == attempts - 1:
                    raise CgroupError(f"remove cgroup {d}: {e.strerror}", e.errno) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


def parse_size(s: str) -> int:
    """"2MB" / "64KB" / "1GB" (base 1024) -> bytes, for hugepage sizes."""
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40, "PB": 1 << 50}
    return int(s[:-2]) * units[s[-2:]]


def hugepage_sizes() -> list[str]:
    """The kernel's hugepage sizes as cgroup file names use them ("2MB", "1GB")."""
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    out = []
    for n in names:  # hugepages-2048kB
        kb = int(n.split("-")[1][:-2])
        for unit, div in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % div == 0:
                out.append(f"{kb // div}{unit}")
                break
    return sorted(out, key=parse_size)


class Manager:
    """The driver interface (v1.V1Manager, v2.V2Manager). Typical use by `create`:
        m = manager_for(path, id); m.create(); m.set(resources, initial=True); m.apply(pid)
    and by later commands: m = manager_from_state(state["cgroup"]); m.freeze() / m.pids() / m.destroy()."""

    version = ""
    skip_devices = False     # rootless: no device policy (neither devices.allow nor a BPF program is allowed)

    def __init__(self, log=None):
        self.log = log

    def debug(self, msg: str):
        if self.log:
            self.log(msg)

    @property
    def paths(self) -> dict:
        """{controller: directory}; v2: {"": directory}."""
        raise NotImplementedError

    def to_state(self) -> dict:
        raise NotImplementedError

    def warm_up(self, pid: int):
        """Place a process that is about to fork the one apply() gets (see launch._warm_up); the systemd driver
        starts its unit with init's pid instead. True: `pid` is placed."""
        self.apply(pid)
        return True

    def check_usable(self):
        """runtime.md allows refusing an unfit cgroup: a frozen one would hang the container (runc refuses it);
        one that already has processes is only logged, as runc does."""
        if self.is_frozen():
            raise CgroupError(f"container's cgroup {next(iter(self.paths.values()))} is unexpectedly frozen")
        n = len(self.pids())
        if n:
            self.debug(f"container's cgroup is not empty: {n} process(es) found")

    def freeze_wait(self, read_state, want: str, write, timeout: float = 5.0):
        """Write the freeze request, then poll until the kernel reports `want` (tasks in D state may delay it)."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            write()
            if read_state() == want:
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"timed out waiting for the cgroup to become {want.lower()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def kill_all(self, sig: int):
        """Signal every process of the cgroup: frozen first so none can fork away in between (runc)."""
        try:
            self.freeze()
            frozen = True
        except CgroupError:
            frozen = False
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                self.thaw()
