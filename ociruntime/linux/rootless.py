"""Rootless containers (--rootless auto|true|false, as runc): what an unprivileged user can do instead of what it
cannot. Loaded only when the runtime runs rootless (auto: the effective uid is not 0), so root's hot path pays
nothing.

cgroups (cgroupfs driver): a cgroup the user cannot create is skipped when the config asks for no resources (runc,
when linux.cgroupsPath is not set); when it asks for some, create fails naming the resource. A writable (delegated)
cgroup, the usual case on cgroup v2 under systemd, is used as root uses it. Devices are not programmed (an
unprivileged user can neither write devices.allow nor load a BPF program; runc ignores them too).
id maps: one's own uid/gid is written to /proc/PID/{uid,gid}_map directly (setgroups denied first, as the kernel
requires); anything more goes through the setuid helpers newuidmap/newgidmap with the ranges of /etc/subuid and
/etc/subgid (Debian package uidmap).
"""
from .. import fastos as os
from ..errors import ConfigError


def enabled(g) -> bool:
    """--rootless: true/false as given; auto (runc's): not root, or root of a user namespace."""
    mode = (g.rootless or "auto").lower()
    if mode not in ("auto", "true", "false"):
        from ..cli import UsageError
        raise UsageError(f"invalid value for --rootless: {g.rootless!r} (use auto, true or false)")
    if mode != "auto":
        return mode == "true"
    from ..cli import in_user_namespace
    return os.geteuid() != 0 or in_user_namespace()   # runc: root of a user namespace (podman, rootlesskit) too


def check_config(cfg) -> None:
    """runc's rootless validation: a user namespace is required (nothing else can map the user to root)."""
    if not cfg.linux.namespace("user") and os.geteuid() != 0:   # root of a user namespace already is (podman)
        raise ConfigError("linux.namespaces", "rootless container requires user namespaces (add {\"type\": "
                                              "\"user\"} and uidMappings/gidMappings, as `spec --rootless` writes)")


def _asked_resources(res) -> list[str]:
    """The linux.resources sections that set something (devices excepted: ignored when rootless)."""
    out = []
    for key, value in (res or {}).items():
        if key == "devices" or value in (None, {}, [], 0, ""):
            continue
        if isinstance(value, dict) and not any(v not in (None, 0, "", False, []) for v in value.values()):
            continue
        out.append(key)
    return out


_CONTROLLER = {"blockIO": "blkio", "hugepageLimits": "hugetlb", "network": "net_cls"}


def _writable(d: str) -> bool:
    """Can this user create (or join) the cgroup directory d: d's nearest existing ancestor is writable."""
    while d and d != "/":
        if os.path.exists(d):
            return os.access(f"{d}/cgroup.procs" if os.path.isdir(d) else d, os.W_OK) and os.access(d, os.W_OK)
        d = os.path.dirname(d)
    return False


def cgroup_manager(mgr, cfg, log):
    """The cgroupfs manager to use when rootless, or None when cgroups are skipped."""
    from ..cli import in_user_namespace
    # runc skips devices in a user namespace only (nothing can program them there); real root with --rootless true
    # keeps the device policy, or the container would get every device
    mgr.skip_devices = os.geteuid() != 0 or in_user_namespace()
    dirs = sorted(set(mgr.paths.values()))
    blocked = [d for d in dirs if not _writable(d)]
    if not blocked:
        return mgr
    asked = _asked_resources(cfg.linux.resources)
    if asked:
        paths = mgr.paths
        where = paths.get(_CONTROLLER.get(asked[0], asked[0])) or paths.get("") or blocked[0]
        raise ConfigError(f"linux.resources.{asked[0]}", f"cannot be applied: running rootless (uid {os.geteuid()}),"
                                                         f" and the cgroup {where} is not writable by this user "
                                                         f"(remove the limits, or delegate the cgroup to the user)")
    if cfg.linux.cgroups_path:
        return mgr       # runc: an explicit path must be created (its error names the directory)
    log(f"rootless: cgroup {blocked[0]} is not writable and no resources are set: cgroups skipped")
    return None


def write_id_maps(pid: int, uid_mappings, gid_mappings) -> None:
    """Unprivileged id maps: own id alone directly, more through newuidmap/newgidmap."""
    from .namespaces import _write
    uid, gid = os.geteuid(), os.getegid()
    for kind, maps, own in (("uid", uid_mappings, uid), ("gid", gid_mappings, gid)):
        if not maps:
            continue
        if len(maps) == 1 and maps[0].host_id == own and maps[0].size == 1:
            if kind == "gid":
                _write(f"/proc/{pid}/setgroups", b"deny")
            _write(f"/proc/{pid}/{kind}_map", f"{maps[0].container_id} {own} 1\n".encode())
            continue
        _helper(f"new{kind}map", kind, pid, maps)


def _helper(tool: str, kind: str, pid: int, maps) -> None:
    import shutil
    import subprocess
    what = f"linux.{kind}Mappings"
    path = shutil.which(tool) or (f"/usr/bin/{tool}" if os.path.exists(f"/usr/bin/{tool}") else None)
    if path is None:
        raise ConfigError(what, f"maps more than your own {kind} ({os.geteuid() if kind == 'uid' else os.getegid()})"
                                f": that needs {tool} (Debian package uidmap) and a range in /etc/sub{kind}")
    args = [path, str(pid)]
    for m in maps:
        args += [str(m.container_id), str(m.host_id), str(m.size)]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        msg = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        raise ConfigError(what, f"{' '.join(args)}: {msg} (the ranges must be yours in /etc/sub{kind})")
