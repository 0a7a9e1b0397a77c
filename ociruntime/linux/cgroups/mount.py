"""The OCI `cgroup` mount type: show the container's own cgroup at its /sys/fs/cgroup.

v1: a tmpfs, then one directory per hierarchy (co-mounted controllers get symlinks, `cpu -> cpu,cpuacct`), each
    a bind of the container's cgroup directory. With a new cgroup namespace that is what a fresh mount in it would
    give: the same superblock and root dentry, and mountinfo shows cgroup paths relative to the reader's namespace
    either way. A bind needs only the directory to exist, so init does it before its cgroup placement is done.
    In a cgroup namespace joined by path the root is that namespace's: a fresh mount.
    v2: one `cgroup2` mount (cgroupns: after placement) or a bind of the container's directory.

`dest` may be a /proc/self/fd/N magic link. A walk through such a link lands on the directory *under* anything
mounted on it later, so after the tmpfs is mounted we reach it again from the parent directory by name."""
from ... import fastos as os

from .. import syscalls as sc
from .common import CgroupError

DEFAULT_FLAGS = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


def _bind(src: str, target: str, flags: int, read_only: bool):
    sc.mount(src, target, None, sc.MS_BIND | sc.MS_REC)
    extra = flags | (sc.MS_RDONLY if read_only else 0)
    if extra:  # bind mounts take their flags only on a remount, of the bind itself (not what it covers)
        top, parent = _reopen_on_top(target)
        try:
            sc.mount(None, top, None, sc.MS_BIND | sc.MS_REMOUNT | extra)
        finally:
            if parent >= 0:
                os.close(parent)


def _reopen_on_top(dest: str) -> tuple[str, int]:
    """A path that resolves to what is mounted on dest now (and an fd to close), for a /proc/self/fd/N dest."""
    try:
        real = os.readlink(dest)
    except OSError:
        return dest, -1  # an ordinary path: lookups through it already cross mounts
    parent = os.open(dest + "/..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{parent}/{os.path.basename(real)}", parent


def _v1(dest: str, read_only: bool, cgroupns: bool, state: dict, flags: int, joined_ns: bool):
    sc.mount("tmpfs", dest, "tmpfs", flags, "mode=755")
    top, parent = _reopen_on_top(dest)
    try:
        if parent >= 0 and os.stat(top).st_dev == os.stat(dest).st_dev:
            raise CgroupError(f"mount cgroup {dest}: cannot reach the tmpfs just mounted")
        for h in state["hierarchies"]:
            if h["ctrls"] == [""]:
                continue  # a hybrid host's empty cgroup2: not shown to v1 containers (runc)
            name = os.path.basename(h["mnt"].rstrip("/"))
            target = f"{top}/{name}"
            os.mkdir(target, 0o755)
            if joined_ns:
                sc.mount("cgroup", target, "cgroup", flags | (sc.MS_RDONLY if read_only else 0), h["opts"])
            else:
                _bind(h["dir"], target, flags, read_only)
            for c in h["ctrls"]:
                if c != name and not c.startswith("name="):
                    os.symlink(name, f"{top}/{c}")
        if read_only:
            sc.mount(None, top, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | flags)
    finally:
        if parent >= 0:
            os.close(parent)


def _v2(dest: str, read_only: bool, cgroupns: bool, state: dict, flags: int, joined_ns: bool):
    if cgroupns:
        try:
            sc.mount("cgroup2", dest, "cgroup2", flags | (sc.MS_RDONLY if read_only else 0))
            return
        except OSError as e:     # rootless: the kernel may refuse a fresh cgroup2 mount in a user namespace
            if e.errno not in (1, 16):       # (EPERM, EBUSY); runc binds the container's cgroup then, so do we
                raise
    _bind(state["path"], dest, flags, read_only)


def mount_cgroup(dest: str, *, read_only: bool, cgroupns: bool, manager_state: dict, flags: int = 0,
                 joined_ns: bool = False) -> None:
    impl = _v2 if manager_state.get("version") == "v2" else _v1
    impl(dest, read_only, cgroupns, manager_state, flags or DEFAULT_FLAGS, joined_ns)
