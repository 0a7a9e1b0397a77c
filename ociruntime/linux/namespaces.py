"""Namespaces: the table of types, joining existing ones by path (setns) and creating new ones (unshare)."""
from .. import fastos as os

from . import syscalls as sc
from ..fastos import write_file

# type -> (clone flag, /proc/<pid>/ns name). Order = setns order: user first (it grants the rights the others
# need when joining from a less privileged position), mnt last among the ones that change paths we still need to
# open... all fds are opened before the first setns, so path changes cannot hurt.
TABLE = {
    "user": (sc.CLONE_NEWUSER, "user"),
    "ipc": (sc.CLONE_NEWIPC, "ipc"),
    "uts": (sc.CLONE_NEWUTS, "uts"),
    "network": (sc.CLONE_NEWNET, "net"),
    "pid": (sc.CLONE_NEWPID, "pid"),
    "cgroup": (sc.CLONE_NEWCGROUP, "cgroup"),
    "time": (sc.CLONE_NEWTIME, "time"),
    "mount": (sc.CLONE_NEWNS, "mnt"),
}


def join(namespaces) -> None:
    """setns into every namespace given by path. Opens all first (paths may vanish once mnt is joined)."""
    fds = []
    try:
        for ns in sorted((n for n in namespaces if n.path), key=lambda n: list(TABLE).index(n.type)):
            try:
                fds.append((ns, os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as e:
                raise sc.SyscallError(f"open {ns.type} namespace", ns.path, e.errno) from None
        for ns, fd in fds:
            sc.setns(fd, TABLE[ns.type][0], f"{ns.type} namespace {ns.path}")
    finally:
        for _, fd in fds:
            os.close(fd)


def new_flags(namespaces, exclude=("user",)) -> int:
    """Clone flags of the namespaces to create (no path), except those in `exclude`."""
    flags = 0
    for ns in namespaces:
        if not ns.path and ns.type not in exclude:
            flags |= TABLE[ns.type][0]
    return flags


def write_id_maps(pid: int, uid_mappings, gid_mappings, deny_setgroups: bool = False) -> None:
    """Parent side: write /proc/<pid>/{uid,gid}_map for a child that made a new user namespace."""
    if os.geteuid() != 0:            # rootless: own ids directly, more through newuidmap/newgidmap
        from . import rootless
        return rootless.write_id_maps(pid, uid_mappings, gid_mappings)

    def fmt(maps):
        return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps).encode()
    if deny_setgroups:
        _write(f"/proc/{pid}/setgroups", b"deny")
    if uid_mappings:
        _write(f"/proc/{pid}/uid_map", fmt(uid_mappings))
    if gid_mappings:
        _write(f"/proc/{pid}/gid_map", fmt(gid_mappings))


def write_time_offsets(offsets: dict) -> None:
    """After unshare(CLONE_NEWTIME), before the first child: /proc/self/timens_offsets."""
    lines = []
    for clock, o in offsets.items():
        lines.append(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n")
    _write("/proc/self/timens_offsets", "".join(lines).encode())


def _write(path: str, data: bytes):
    try:
        write_file(path, data)
    except OSError as e:
        raise sc.SyscallError("write", path, e.errno) from None
