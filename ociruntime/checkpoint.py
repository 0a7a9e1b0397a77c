"""`checkpoint` and `restore` (runc's): CRIU dumps a running container's process tree with its mounts and
namespaces into an image directory, and restores it as a new container, through linux/criu.py (RPC mode: why,
there).

checkpoint: only a running (or paused: runc allows it, criu keeps it frozen) container. criu freezes the tree
    through the freezer cgroup. Mounts whose source is outside the container are named to criu as external, by
    destination: bind mounts, the cgroup binds of a `cgroup` mount, /dev/null over masked files, device binds.
    Joined net/pid namespaces are external too. descriptors.json in the image records what init's stdio were,
    so restore can hand in new pipes for old ones (the containerd shim's). Without --leave-running (or with
    --pre-dump) criu kills the tree and the container is deleted, as runc does (poststop hooks included).
restore: a new container from --bundle, made like `create` makes one — state dir, cgroups created and their
    limits set, criu placed in them before it forks anything (so every restored task lands there) — then criu
    restores the tree as our children (rst_sibling), prestart/createRuntime hooks run when criu has made the
    namespaces (as runc), the pid file is written and the state is `running`. A terminal's new pty master goes
    to --console-socket. The rootfs is bound (private) on <state>/criu-root while criu runs (criu wants a mount
    point as root) and unmounted after, success or not.
"""
import json
import os

from .errors import RuntimeErr, StateError
from .errors import fault
from .linux import criu

DESCRIPTORS = "descriptors.json"       # runc's name and format: a JSON list of init's fd 0, 1, 2 link targets
NS_FLAGS = {"network": 0x40000000, "pid": 0x20000000, "ipc": 0x08000000, "uts": 0x04000000, "mount": 0x00020000,
            "user": 0x10000000, "cgroup": 0x02000000, "time": 0x00000080}
# the key criu knows a joined namespace by, at dump and restore (runc's: extRootNetNS...)
_EXT_NS_KEYS = {"network": ("net", "extRootNetNS"), "pid": ("pid", "extRootPidNS")}


class Options:
    """Flags of both commands (runc's names); unused ones stay at their defaults."""

    def __init__(self, **kw):
        self.image_path = kw.get("image_path") or os.path.join(os.getcwd(), "checkpoint")
        self.work_path = kw.get("work_path") or ""
        self.parent_path = kw.get("parent_path") or ""
        for flag in ("leave_running", "tcp_established", "ext_unix_sk", "shell_job", "file_locks", "pre_dump",
                     "auto_dedup", "lazy_pages", "detach", "no_subreaper", "no_pivot"):
            setattr(self, flag, bool(kw.get(flag)))
        self.manage_cgroups_mode = kw.get("manage_cgroups_mode") or ""
        if self.manage_cgroups_mode not in criu.CG_MODES:
            raise RuntimeErr(f"invalid --manage-cgroups-mode {self.manage_cgroups_mode!r}: use soft, full, strict "
                             "or ignore")
        self.empty_ns = NS_FLAGS["network"]      # runc: it manages no network devices, so never restores a netns
        for ns in kw.get("empty_ns") or ():
            if ns not in NS_FLAGS:
                raise RuntimeErr(f'--empty-ns: namespace "{ns}" is not supported (use one of '
                                 f'{", ".join(sorted(NS_FLAGS))})')
            self.empty_ns |= NS_FLAGS[ns]
        self.page_server = kw.get("page_server") or ""
        self.status_fd = int(kw.get("status_fd") if kw.get("status_fd") not in (None, "") else -1)
        self.bundle = kw.get("bundle") or "."
        self.pid_file = kw.get("pid_file")
        self.console_socket = kw.get("console_socket")
        self.lsm_profile = kw.get("lsm_profile") or ""


def _dirfd(path: str, what: str) -> int:
    try:
        os.makedirs(path, 0o700, exist_ok=True)
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeErr(f"{what} {path}: {e.strerror}") from None


def _common_opts(o: Options, cfg, log_file: str) -> tuple[dict, list, str]:
    """criu options both commands share; (opts, fds to close, the log's path)."""
    images = _dirfd(o.image_path, "--image-path")
    fds = [images]
    opts = {"images_dir_fd": images, "log_level": 4, "log_file": log_file, "manage_cgroups": True,
            "manage_cgroups_mode": criu.CG_MODES[o.manage_cgroups_mode], "notify_scripts": True,
            "shell_job": o.shell_job, "ext_unix_sk": o.ext_unix_sk, "tcp_established": o.tcp_established,
            "file_locks": o.file_locks, "empty_ns": o.empty_ns, "orphan_pts_master": True,
            "auto_dedup": o.auto_dedup, "lazy_pages": o.lazy_pages, "ext_mnt": []}
    log_dir = o.image_path
    if o.work_path:
        work = _dirfd(o.work_path, "--work-path")
        fds.append(work)
        opts["work_dir_fd"] = work
        log_dir = o.work_path
    # criu reads settings from a file as runc makes it: the annotation org.criu.config names it ("" for none)
    conf = (cfg.annotations or {}).get("org.criu.config", "/etc/criu/runc.conf")
    if conf:
        opts["config_file"] = conf
    return opts, fds, os.path.join(log_dir, log_file)


def _external_mounts(cfg, cgroup_state, *, restore: bool) -> list:
    """ext_mnt entries: at dump {mount point: name in the image}, at restore {name in the image: host source}.
    Names are destinations (runc's convention), so either runtime restores the other's images."""
    from .linux import mounts as mnt
    out, seen = [], set()

    def add(dest, source):
        dest = "/" + os.path.normpath(dest).lstrip("/")
        if dest not in seen:
            seen.add(dest)
            out.append({"key": dest, "val": source if restore else dest})
    for m in cfg.mounts:
        if m.type == "bind" or mnt.parse_options(m.options).is_bind:
            src = m.source if os.path.isabs(m.source or "") else os.path.join(cfg.bundle, m.source or "")
            add(m.destination, src)
        elif m.type == "cgroup" and cgroup_state:
            for dest, src in _cgroup_binds(cfg, m.destination, cgroup_state):
                add(dest, src)
    masked_files = [p for p in cfg.linux.masked_paths if not os.path.isdir(os.path.join("/", p.lstrip("/")))]
    if masked_files:                     # /dev/null bound over each: one host source, named /dev/null
        if restore:
            add("/dev/null", "/dev/null")
        else:
            for p in masked_files:
                p = "/" + os.path.normpath(p).lstrip("/")
                if p not in seen:
                    seen.add(p)
                    out.append({"key": p, "val": "/dev/null"})
    from .linux.devices import all_devices
    for d in all_devices(cfg.linux.devices):     # bound from the host in a user namespace (devices.py)
        add(d.path, d.path)
    return out


def _cgroup_binds(cfg, dest, state):
    """(destination, host dir) of each bind a `cgroup` mount is made of (linux/cgroups/mount.py): v1 one per
    hierarchy unless the cgroup namespace is joined by path (then fresh mounts), v2 one unless cgroupns."""
    ns = cfg.linux.namespace("cgroup")
    if state.get("version") == "v1":
        if ns and ns.path:
            return []
        return [(f"{dest}/{os.path.basename(h['mnt'].rstrip('/'))}", h["dir"]) for h in state["hierarchies"]
                if h["ctrls"] != [""]]
    return [] if ns else [(dest, state["path"])] if state.get("path") else []


def _freezer_dir(cgroup_state) -> str | None:
    if not cgroup_state:
        return None
    if cgroup_state.get("version") == "v1":
        return next((h["dir"] for h in cgroup_state["hierarchies"] if "freezer" in h["ctrls"]), None)
    return cgroup_state.get("path")


def _check_features(criu_bin: str, o: Options) -> None:
    """Flags this machine cannot serve fail before anything is frozen, naming the kernel feature."""
    want = {}
    if o.pre_dump:
        want["mem_track"] = True
    if o.lazy_pages:
        want["lazy_pages"] = True
    if not want:
        return
    have = criu.feature_check(criu_bin, **want)
    if o.pre_dump and not have.get("mem_track"):
        raise RuntimeErr("checkpoint --pre-dump: criu cannot track memory changes on this kernel (no soft-dirty "
                         "page bits: CONFIG_MEM_SOFT_DIRTY); dump without --pre-dump")
    if o.lazy_pages and not have.get("lazy_pages"):
        raise RuntimeErr("--lazy-pages: criu cannot restore pages lazily on this kernel (userfaultfd with "
                         "UFFD_FEATURE_EVENT_FORK and friends is missing); leave out --lazy-pages")


# -- checkpoint -----------------------------------------------------------------------------------------------------

def checkpoint(g, st, o: Options, criu_path: str) -> None:
    """Dump the container `st` (locked) into o.image_path; unless --leave-running/--pre-dump, delete it."""
    status = st.status()
    if status not in ("running", "paused"):
        raise StateError(f"Container cannot be checkpointed in {status} state")
    from .config import model
    cfg, _ = model.load(st.facts["bundle"], validate=False, name=st.facts.get("config", "config.json"))
    criu_bin = criu.find(criu_path)
    _check_features(criu_bin, o)
    cg = st.facts.get("cgroup")
    opts, fds, log_path = _common_opts(o, cfg, "dump.log")
    try:
        opts.update(pid=st.pid, root=cfg.root_path, leave_running=o.leave_running,
                    freeze_cgroup=_freezer_dir(cg))
        if o.parent_path:
            opts.update(parent_img=o.parent_path, track_mem=True)
        if o.page_server:
            addr, _, port = o.page_server.rpartition(":")
            if not addr or not port.isdigit():
                raise RuntimeErr(f"--page-server {o.page_server!r}: expected ADDRESS:PORT")
            opts["ps"] = {"address": addr, "port": int(port)}
        ext = []
        for t, (name, key) in _EXT_NS_KEYS.items():
            ns = cfg.linux.namespace(t)
            if ns and ns.path:
                try:
                    ext.append(f"{name}[{os.stat(ns.path).st_ino}]:{key}")
                except OSError as e:
                    raise RuntimeErr(f"linux.namespaces: {t} path {ns.path}: {e.strerror}") from None
        opts["external"] = ext
        if not o.pre_dump:
            opts["ext_mnt"] = _external_mounts(cfg, cg, restore=False)
            _write_descriptors(st.pid, o.image_path)
        if o.lazy_pages and o.status_fd >= 0:
            opts["status_fd"] = o.status_fd

        def notify(script, _pid, _fds):
            if script == "status-ready" and o.status_fd >= 0:
                os.write(o.status_fd, b"\0")
        criu.swrk(criu_bin, criu.PRE_DUMP if o.pre_dump else criu.DUMP, opts, notify=notify, log_path=log_path)
    finally:
        criu.close_all(fds)
    if not (o.leave_running or o.pre_dump):
        from .container import delete
        delete(st, g.log, force=True)


def _write_descriptors(pid: int, image_dir: str) -> None:
    fds = []
    for i in (0, 1, 2):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{i}"))
        except OSError:
            fds.append("/dev/null")
    with open(os.path.join(image_dir, DESCRIPTORS), "w") as f:
        json.dump(fds, f)


# -- restore --------------------------------------------------------------------------------------------------------

def restore(g, cid: str, o: Options, criu_path: str, *, console_fd=None) -> "object":
    """Restore o.image_path as the new container `cid`; returns its (unlocked) state, `running`."""
    from . import launch
    from .config import model
    from .state import ContainerState, proc_start_time, write_atomic
    bundle = os.path.abspath(o.bundle)
    cfg, doc = model.load(bundle)
    launch._check_supported(cfg, g)
    if cfg.process.terminal and o.console_socket is None and console_fd is None:
        from .errors import ConfigError
        raise ConfigError("process.terminal",
                          "is true but no --console-socket was given: use --console-socket to receive the pty master")
    criu_bin = criu.find(criu_path)
    _check_features(criu_bin, o)
    try:
        with open(os.path.join(o.image_path, DESCRIPTORS)) as f:
            descriptors = json.load(f)
    except OSError as e:
        raise RuntimeErr(f"--image-path {o.image_path}: {e.strerror} ({DESCRIPTORS}: is it a checkpoint?)") from None
    st = ContainerState.new(g.root, cid, {
        "pid": 0, "creating": True, "bundle": bundle, "rootfs": cfg.root_path, "ociVersion": cfg.oci_version,
        "created": launch._rfc3339_now(), "annotations": cfg.annotations})
    undo = [st.remove]
    fds = []
    launch._interrupt_into_rollback()
    try:
        mgr = launch._cgroup_manager(g, cfg, cid)
        resources = cfg.linux.resources or {}
        if mgr is not None:
            undo.append(mgr.destroy)
            st.facts["cgroup"] = mgr.to_state()   # recorded before they exist, as create does: delete --force
            st.save()                             # after a crash from here on removes them
            mgr.create()
            fault("restore:cgroups-made")
            mgr.set_devices(resources.get("devices"))   # while the cgroups are empty, as create does
        st.save()
        opts, fds, log_path = _common_opts(o, cfg, "restore.log")
        crit_root = os.path.join(st.dir, "criu-root")
        os.mkdir(crit_root, 0o755)
        undo.append(lambda: os.rmdir(crit_root))
        undo.append(lambda: _umount(crit_root))     # before: _criu_root may fail after its first mount
        _criu_root(cfg, crit_root)
        opts.update(evasive_devices=True, rst_sibling=True, root=crit_root,
                    ext_mnt=_external_mounts(cfg, mgr.to_state() if mgr else None, restore=True),
                    inherit_fd=[{"key": s, "fd": i} for i, s in enumerate(descriptors[:3]) if "pipe:" in s])
        if o.lsm_profile:
            opts["lsm_profile"] = o.lsm_profile
        extra = _restore_namespaces(cfg, opts)
        fds += extra
        if not o.no_subreaper:
            from .linux import syscalls
            syscalls.set_child_subreaper()
        restored = {}

        def placed(criu_pid: int):
            """criu is running: put it in the container's cgroups (its children, the restored tasks, follow) and
            tell it where they are (cg_root), as runc does."""
            if mgr is None:
                return
            mgr.apply(criu_pid)
            mgr.set({k: v for k, v in resources.items() if k != "devices"})
            opts["cg_root"] = _cgroup_roots(criu_pid)

        def notify(script, pid, got):
            if script == "setup-namespaces" and (cfg.hooks.prestart or cfg.hooks.create_runtime):
                launch.creation_hooks(cfg, cid, pid, bundle)
            elif script == "post-restore":
                restored["pid"] = pid
                undo.append(lambda: launch._kill_and_reap(pid, 0))
            elif script == "orphan-pts-master" and got:
                _send_console(got[0], o.console_socket, console_fd)

        resp = criu.swrk(criu_bin, criu.RESTORE, opts, notify=notify, log_path=log_path, stdio=(0, 1, 2),
                         extra_fds=extra, on_started=placed)
        pid = resp.get("restore", {}).get("pid") or restored.get("pid")
        if not pid:
            raise RuntimeErr("criu restored no process (restore.log has the details)")
        if "pid" not in restored:
            undo.append(lambda: launch._kill_and_reap(pid, 0))
        _umount(crit_root)
        os.rmdir(crit_root)
        st.facts.update(pid=pid, start_time=proc_start_time(pid))
        st.facts.pop("creating", None)
        if doc.get("hooks"):
            st.facts["hooks"] = doc["hooks"]
        st.save()
        if o.pid_file:
            write_atomic(os.path.abspath(o.pid_file), str(pid).encode(), 0o644)
        st.release()
        return st
    except BaseException:
        launch.rollback(undo)
        raise
    finally:
        criu.close_all(fds)


def _restore_namespaces(cfg, opts) -> list:
    """Namespaces given by path: net and pid were external at dump (criu takes them as inherited fds, from 4 on);
    the others are joined (join_ns). A cgroup namespace by path is something criu cannot do (runc refuses too)."""
    extra = []
    opts["join_ns"] = []
    for ns in cfg.linux.namespaces:
        if not ns.path:
            continue
        if ns.type in _EXT_NS_KEYS:
            try:
                extra.append(os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC))
            except OSError as e:
                criu.close_all(extra)
                raise RuntimeErr(f"linux.namespaces: {ns.type} path {ns.path}: {e.strerror}") from None
            opts["inherit_fd"].append({"key": _EXT_NS_KEYS[ns.type][1], "fd": 3 + len(extra)})
        elif ns.type == "cgroup":
            raise RuntimeErr("restore: a cgroup namespace given by path (linux.namespaces) cannot be restored by criu")
        else:
            opts["join_ns"].append({"ns": {"mount": "mnt"}.get(ns.type, ns.type), "ns_file": ns.path})
    return extra


def _cgroup_roots(pid: int) -> list:
    """cg_root entries from /proc/PID/cgroup: each controller's cgroup, as criu (in our cgroup namespace) sees it."""
    out = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(","):
                if c:                    # the hybrid host's empty cgroup2 line: criu's own default root
                    out.append({"ctrl": c, "path": path})
    return out


def _criu_root(cfg, crit_root: str) -> None:
    """The rootfs bound on crit_root (criu wants a mount point as its root; runc does the same, in the caller's
    mount namespace: criu opens the image and work directories through our fds, in our namespace), and the
    mount points of mounts[] made as create makes them (those on a tmpfs come back with its contents)."""
    from .linux import syscalls as sc
    from .linux.paths import open_in_root
    sc.mount(cfg.root_path, crit_root, None, sc.MS_BIND | sc.MS_REC)
    fault("restore:root-bound")
    sc.mount(None, crit_root, None, sc.MS_REC | sc.MS_PRIVATE)     # nothing of it propagates elsewhere
    tmpfs = [m.destination.rstrip("/") for m in cfg.mounts if m.type == "tmpfs"]
    from .linux import mounts as mnt
    for m in cfg.mounts:
        dest = "/" + m.destination.strip("/")
        if m.type == "cgroup" or any(dest.startswith(t + "/") for t in tmpfs):
            continue
        kind = "dir"
        if m.type == "bind" or mnt.parse_options(m.options).is_bind:
            src = m.source if os.path.isabs(m.source or "") else os.path.join(cfg.bundle, m.source or "")
            kind = "dir" if os.path.isdir(src) else "file"
        try:
            os.close(open_in_root(crit_root, dest, create=kind))
        except OSError:
            pass                         # criu names the mount it cannot restore


def _umount(path: str) -> None:
    from .linux import syscalls as sc
    try:
        sc.umount2(path, sc.MNT_DETACH)
    except OSError:
        pass


def _send_console(master: int, console_socket, console_fd) -> None:
    from .linux import console
    fd = console_fd if console_fd is not None else console.connect(console_socket)
    try:
        console.send_master(fd, master)
    finally:
        if console_fd is None:
            os.close(fd)
