"""The state store: one directory per container under --root.

    <root>/<id>/state        facts (pid, its /proc start time, bundle, created, annotations, cgroup, hooks...),
                             in marshal format: a builtin module (the `_json` extension costs a dlopen on every
                             start/kill/delete) for a file only this runtime reads, root-owned and 0600
    <root>/<id>/exec.fifo    exists while the container is `created`; `start` consumes it

Facts are stored, the status is derived each time from the live process (guarded against pid reuse by comparing the
/proc start time), the exec FIFO and the freezer. Writes are atomic (write a temp file, rename). A per-container lock
(flock on the directory) serialises commands that change one container.
"""
import fcntl
import marshal
from . import fastos as os

from .errors import StateError
from .errors import fault

# runc's validateID: ^[\w+-\.]+$ (the class's `+-\.` is the range + , - .), neither "." nor "..". One more rule
# of ours: not starting with "-", which every command line would read as a flag.
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+,-.")
STATE_FILE = "state"
_OLD_STATE_FILE = "state.json"   # before 0.1.0's marshal format: still read, so an upgrade loses no container
FIFO = "exec.fifo"


def check_id(cid: str):
    # without importing re (hot path)
    if not cid or len(cid) > 1024 or cid in (".", "..") or cid[0] == "-" or not _ID_CHARS.issuperset(cid):
        raise StateError(f"invalid container id {cid!r}: use letters, digits and _ + , - . (not starting with -)")


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat, or None if the process is gone (or a zombie: it has exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] == b"Z" or rest[0] == b"X":
        return None
    return int(rest[19])


def _load_old(path: str) -> dict:
    from . import fastjson
    with open(path, "rb") as f:
        return fastjson.loads(f.read())


def write_atomic(path: str, data: bytes, mode=0o600):
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _rfc3339nano(stamp: str) -> str:
    """Go's time.RFC3339Nano as runc prints `created`: the fraction without trailing zeros, none when it is zero
    (launch stores nine digits)."""
    head, dot, frac = stamp.partition(".")
    if not dot or not frac.endswith("Z"):
        return stamp
    frac = frac[:-1].rstrip("0")
    return f"{head}.{frac}Z" if frac else f"{head}Z"


class ContainerState:
    """One container's stored facts plus the derived status."""

    __slots__ = ("root", "id", "dir", "facts", "_lockfd")

    def __init__(self, root: str, cid: str, facts: dict):
        self.root, self.id, self.dir, self.facts = root, cid, os.path.join(root, cid), facts
        self._lockfd = -1

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def new(cls, root: str, cid: str, facts: dict) -> "ContainerState":
        """Reserve the id: mkdir is the atomic test-and-set; the lock is held until release(). Nothing is written
        yet (create saves the facts once its child is forked): until then `state` reads the directory alone as
        `creating`."""
        check_id(cid)
        st = cls(root, cid, facts)
        try:
            try:
                os.mkdir(st.dir, 0o711)
            except FileNotFoundError:
                os.makedirs(root, mode=0o700, exist_ok=True)   # runc: the root 0700, each container 0711
                os.mkdir(st.dir, 0o711)
        except FileExistsError:
            raise StateError(f"container with id exists: {cid}") from None
        st.lock()
        return st

    @classmethod
    def load(cls, root: str, cid: str, lock: bool = False) -> "ContainerState":
        check_id(cid)
        st = cls(root, cid, {})
        if lock:
            st.lock()
        try:
            with open(os.path.join(st.dir, STATE_FILE), "rb") as f:
                st.facts = marshal.loads(f.read())
        except FileNotFoundError:
            if os.path.exists(os.path.join(st.dir, _OLD_STATE_FILE)):
                st.facts = _load_old(os.path.join(st.dir, _OLD_STATE_FILE))
                return st
            st.release()
            if os.path.isdir(st.dir):
                # the id is reserved but create has not written its facts yet
                st.facts = {"pid": 0, "creating": True}
                return st
            raise StateError(f"container does not exist: {cid}") from None
        return st

    @staticmethod
    def ids(root: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, STATE_FILE)) or
                          os.path.isfile(os.path.join(root, n, _OLD_STATE_FILE)))
        except FileNotFoundError:
            return []

    # -- lock ---------------------------------------------------------------------------------------------------
    def lock(self):
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StateError(f"container does not exist: {self.id}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not os.path.isdir(self.dir):  # deleted while we waited
            os.close(fd)
            raise StateError(f"container does not exist: {self.id}")
        self._lockfd = fd

    def release(self):
        if self._lockfd >= 0:
            os.close(self._lockfd)
            self._lockfd = -1

    # -- facts --------------------------------------------------------------------------------------------------
    def save(self):
        write_atomic(os.path.join(self.dir, STATE_FILE), marshal.dumps(self.facts))

    @property
    def pid(self) -> int:
        return self.facts.get("pid", 0)

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, FIFO)

    def alive(self) -> bool:
        """The init process still runs and is the one we started (start time matches)."""
        pid = self.pid
        return pid > 0 and proc_start_time(pid) == self.facts.get("start_time")

    def status(self) -> str:
        if self.facts.get("creating") or not self.pid:
            return "creating"
        if not self.alive():
            return "stopped"
        # the freezer before the exec FIFO, as runc's refreshState: a `created` container can be paused (runc
        # allows it), and it must then say `paused` so that `resume` thaws it and `start`/`delete` refuse it
        # (`start` of a frozen init would block on the FIFO forever)
        if self.frozen():
            return "paused"
        if os.path.exists(self.fifo):
            return "created"
        return "running"

    def frozen(self) -> bool:
        """The container's cgroup is frozen (paused). Reads the freezer files named by the stored cgroup facts
        itself (v2 cgroup.freeze, v1 freezer.state and freezer.self_freezing): loading the cgroup drivers would add
        ~2 ms to every `start`, which asks for the status of a created container."""
        cg = self.facts.get("cgroup")
        if not cg:
            return False
        if cg.get("version") == "v2" and cg.get("path"):
            path, frozen = cg["path"] + "/cgroup.freeze", b"1"
        elif cg.get("version") == "v1":
            dirs = [h["dir"] for h in cg.get("hierarchies", ()) if "freezer" in h.get("ctrls", ())]
            if not dirs:
                return False
            path, frozen = dirs[0] + "/freezer.state", b"FROZEN"
        else:
            from .linux import cgroups
            try:
                return cgroups.manager_from_state(cg).is_frozen()
            except OSError:
                return False
        try:
            with open(path, "rb") as f:
                if f.read(len(frozen)) != frozen:
                    return False
        except OSError:
            return False
        if frozen == b"FROZEN":
            # v1: every descendant of a frozen cgroup reads FROZEN; as runc's freezer GetState, only a cgroup frozen
            # itself (freezer.self_freezing 1; a kernel without that file: FROZEN is all we know) is paused
            try:
                with open(path.rpartition("/")[0] + "/freezer.self_freezing", "rb") as f:
                    return f.read(1) != b"0"
            except OSError:
                return True
        return True

    def oci_state(self) -> dict:
        """The runtime-spec state document (runtime.md "State")."""
        status = self.status()
        # runc's field order and extras (rootfs, created, owner) so go-runc's State parses it unchanged
        # ociVersion: the spec version we implement, as runc and crun report theirs (not the config's); pid 0 once
        # stopped, as runc's `state` prints it (hooks get no pid then: hooks.state_doc)
        from . import SPEC_VERSION
        st = {"ociVersion": SPEC_VERSION, "id": self.id,
              "pid": self.pid if status in ("created", "running", "paused") else 0, "status": status,
              "bundle": self.facts.get("bundle", ""), "rootfs": self.facts.get("rootfs", ""),
              "created": _rfc3339nano(self.facts.get("created", ""))}
        if self.facts.get("annotations"):
            st["annotations"] = self.facts["annotations"]
        st["owner"] = ""
        return st

    def remove(self):
        for name in (STATE_FILE, FIFO):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
            fault(f"remove:{name}-unlinked")
        for name in os.listdir(self.dir) if os.path.isdir(self.dir) else ():
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
        self.release()
