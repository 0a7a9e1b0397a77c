"""cgroups: one interface (common.Manager), two drivers (v1.py, v2.py), chosen at run time.

    detect() -> "v1" | "v2"
    manager_for(cgroups_path, container_id, systemd=False, log=None) -> Manager      (create)
    manager_from_state(d, log=None) -> Manager                                       (every later command)
    mount_cgroup(dest, read_only=..., cgroupns=..., manager_state=...)               (init: the `cgroup` mount)

Paths follow runc: an absolute cgroupsPath is taken from each hierarchy's root, a relative one from this process's
own cgroup (per hierarchy, /proc/self/cgroup), and without one the container id is used as a relative path.
Light on purpose: `state` imports this on every call, the drivers load only when a manager is made.
"""
from ... import fastos as os

from .common import CgroupError, SystemdCgroupUnavailable  # noqa: F401  (re-exported)

CGROUP2_SUPER_MAGIC = 0x63677270


def detect(root: str = "/sys/fs/cgroup") -> str:
    """"v2" when root is a cgroup2 mount (unified), else "v1" (legacy and hybrid). Only the root of a cgroup2
    hierarchy has cgroup.controllers; a v1 or hybrid root is a tmpfs. (statfs would need ctypes: ~2 ms.)"""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    if not os.path.isdir(root):
        raise CgroupError(f"statfs {root}: no cgroup filesystem mounted there", 2)
    return "v1"


def manager_for(cgroups_path: str | None, container_id: str, *, systemd: bool = False, log=None):
    """The manager for a new container's cgroup (nothing is created until .create())."""
    if systemd:
        from .systemd import manager_for as systemd_manager
        return systemd_manager(cgroups_path, container_id, log)
    from .common import clean_path
    inner = clean_path(cgroups_path) if cgroups_path else container_id
    if inner in ("", "/", "."):
        raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r} would put the container in a hierarchy's root")
    if detect() == "v2":
        from .v2 import V2Manager
        return V2Manager.for_path(inner, log)
    from .v1 import V1Manager
    return V1Manager.for_path(inner, log)


def manager_from_state(d: dict, log=None):
    """Rebuild a manager from Manager.to_state() (stored in the container's state)."""
    if d.get("systemd"):
        from .systemd import SystemdManager
        return SystemdManager.from_state(d, log)
    if d.get("version") == "v2":
        from .v2 import V2Manager
        return V2Manager.from_state(d, log)
    if d.get("version") == "v1":
        from .v1 import V1Manager
        return V1Manager.from_state(d, log)
    raise CgroupError(f"stored cgroup state has an unknown version {d.get('version')!r}")


def mount_cgroup(dest: str, *, read_only: bool, cgroupns: bool, manager_state: dict, flags: int = 0,
                 joined_ns: bool = False) -> None:
    """Mount the OCI `cgroup` filesystem at dest (a host-view path such as /proc/self/fd/N), showing the container's
    own cgroup. Called by init in the container's mount namespace, after it joined its cgroup (and, with cgroupns,
    after unsharing the cgroup namespace so the namespace root is that cgroup)."""
    from .mount import mount_cgroup as impl
    impl(dest, read_only=read_only, cgroupns=cgroupns, manager_state=manager_state, flags=flags, joined_ns=joined_ns)
