"""The parent side of `create`: validate, reserve the id, fork init, answer its sync requests (id maps, cgroups,
hooks), record the state and the pid file. Every step that can fail registers its undo, so a failed create leaves
no state dir, cgroup or process behind (mounts live in the container's mount namespace and die with it; without
one, below a self-bind of the rootfs that rollback and `delete` detach).
"""
from . import fastos as os
import sys
import time

from . import initargs, sync
from .errors import ConfigError, RuntimeErr
from .errors import fault
from .state import ContainerState, proc_start_time, write_atomic


class CreateOptions:
    __slots__ = ("bundle", "pid_file", "console_socket", "console_fd", "no_pivot", "no_new_keyring", "preserve_fds",
                 "config")

    def __init__(self, bundle=".", pid_file=None, console_socket=None, console_fd=None, no_pivot=False,
                 no_new_keyring=False, preserve_fds=0, config="config.json"):
        self.bundle, self.pid_file, self.console_socket, self.console_fd = bundle, pid_file, console_socket, console_fd
        self.no_pivot, self.no_new_keyring, self.preserve_fds = no_pivot, no_new_keyring, preserve_fds
        self.config = config


def _rfc3339_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


def _preserved_fds(n: int) -> int:
    """--preserve-fds N, plus systemd socket activation's LISTEN_FDS (passed on as runc does)."""
    try:
        listen = int(os.getenv("LISTEN_FDS", "0"))
    except ValueError:
        listen = 0
    return max(n, listen)


def _check_not_host_root(path: str) -> None:
    """root.path that is the host's / (a symlink to it, a bind of it) is refused up front, by name: otherwise only
    a side effect stops it later (a cgroup mount's ENOENT, pivot_root's EBUSY)."""
    try:
        ours, host = os.stat(path), os.stat("/")
    except OSError:
        return                       # a missing root.path is the validator's to report
    if (ours.st_dev, ours.st_ino) == (host.st_dev, host.st_ino):
        raise ConfigError("root.path", f"{path} is the host's / (a container needs its own root filesystem)")


def _check_supported(cfg, g):
    lx = cfg.linux
    if cfg.process is None:
        raise ConfigError("process", "is required to create a container")
    _check_not_host_root(cfg.root_path)
    if lx.sysctl:
        from .linux import sysctl
        sysctl.check(lx.sysctl, {n.type for n in lx.namespaces})
    if cfg.process.apparmor_profile or cfg.process.selinux_label or lx.mount_label:
        from .linux import lsm
        lsm.check(cfg.process, lx.mount_label)
    if lx.net_devices:               # the devices exist here, before anything is created
        from .linux import netdevices
        net = lx.namespace("network")
        netdevices.check(lx.net_devices, net.path if net else None)
    if lx.intel_rdt is not None:     # resctrl is mounted
        from .linux import intelrdt
        intelrdt.check()


def create(g, cid: str, o: CreateOptions, *, subreaper: bool = False) -> ContainerState:
    """Create the container `cid` from the bundle; return its (unlocked) state. Raises with rollback done."""
    step = g.log.steps("create")
    from .config import model
    bundle = os.path.abspath(o.bundle)
    cfg, doc = model.load(bundle, name=o.config)
    step("config.json loaded and validated")
    _check_supported(cfg, g)
    if cfg.process.terminal and o.console_socket is None and o.console_fd is None:
        raise ConfigError("process.terminal",
                          "is true but no --console-socket was given: use --console-socket to receive the pty master")
    if not cfg.process.terminal and o.console_socket is not None:       # runc's checkTerminal
        raise ConfigError("process.terminal", "is false: --console-socket cannot be used without a terminal")
    st = ContainerState.new(g.root, cid, {
        "pid": 0, "creating": True, "bundle": bundle, "rootfs": cfg.root_path, "ociVersion": cfg.oci_version,
        "created": _rfc3339_now(), "annotations": cfg.annotations})
    if o.config != "config.json":    # --config: what exec, update and checkpoint read again later
        st.facts["config"] = o.config
    undo = [st.remove]
    step("id reserved (state dir, lock)")
    pid = init_pid = 0
    _interrupt_into_rollback()
    try:
        fault("create:reserved")
        os.mkfifo(st.fifo, 0o622)
        os.chmod(st.fifo, 0o622)     # not umask'd: init may already be a non-root user when it opens it
        mgr = _cgroup_manager(g, cfg, cid)
        resources = cfg.linux.resources or {}
        if mgr is not None:
            # recorded BEFORE it is made: whenever create dies from here on (SIGKILL included), `delete --force`
            # finds in the state what may exist outside the state dir and removes whatever of it does
            st.facts["cgroup"] = mgr.to_state()
        st.save()                    # also the `creating` facts (bundle...) for state/list
        step("creating state saved")
        fault("create:recorded")
        if mgr is not None:          # made now, so the placement below starts right after fork
            undo.append(mgr.destroy)
            mgr.create()
            # the device policy while the cgroups are empty: a v1 rewrite starts from `deny a`, and init, placed
            # below, runs on (it opens /dev/ptmx, mknods /dev) while the other resources are written
            mgr.set_devices(resources.get("devices"))
            step("cgroups made")
            fault("create:cgroups-made")
        console_fd = o.console_fd
        if cfg.process.terminal and console_fd is None:
            from .linux import console
            console_fd = console.connect(o.console_socket)
            undo.append(lambda: os.close(console_fd))
        parent_sock, child_sock = sync.pair()
        undo.append(parent_sock.close)
        if subreaper:
            from .linux import syscalls
            syscalls.set_child_subreaper()
        args = initargs.InitArgs(cfg=cfg, cid=cid, sock=child_sock, fifo=st.fifo, console_fd=console_fd,
                                 console_ours=o.console_fd is not None,
                             no_pivot=o.no_pivot, no_new_keyring=o.no_new_keyring,
                             preserve_fds=_preserved_fds(o.preserve_fds or 0),
                             cgroup_state=mgr.to_state() if mgr else None, debug=g.debug)
        if not cfg.linux.namespace("mount"):
            undo.append(_host_mount_undo(st, cfg.root_path))
        step("ready to fork")
        pidns = cfg.linux.namespace("pid")
        fork = _fork_for(st.facts.get("cgroup"))
        # then the child re-execs first, outside the pid namespace
        args.seal = needs_sealed_interpreter(cfg, pidns=pidns.path if pidns and pidns.path else None)
        pid, args.in_pidns = _fork_in_pidns("new" if pidns and not pidns.path and not cfg.linux.namespace("user")
                                            and not cfg.linux.namespace("time") and not args.seal else None, fork)
        if pid == 0:
            args.self_placed = fork.child_placed
            parent_sock.close()
            st.release()             # the flock lives on the shared open file: the child must not keep it
            initargs.run_child("main", args)   # never returns
        child_sock.close()
        step(fork.describe(pid))
        reaped = []
        undo.append(lambda: reaped or _kill_and_reap(pid, 0))
        fault("create:forked")
        warm = False
        if mgr is not None and not (fork.placed or fork.self_placing):  # while the child unshares (and forks init)
            warm = _warm_up(mgr, pid)
            step("child placed in the cgroups (warm-up)")
        if mgr is not None:
            fault("create:warmed-up")            # the child is in its cgroups (born there, or written)

        def place(init_pid: int, self_placed: bool):
            """init exists (PID): put it in its cgroups and resctrl group, then GO (init.py step P)."""
            undo.append(lambda: _kill_and_reap(init_pid, 0))
            step(f"init's pid {init_pid} received")
            fault("create:init-pid")
            if mgr is not None:
                # born there (or the child of one born there), or placed by itself: nothing to write
                if self_placed:
                    step("init is in its cgroups (it moved itself there)")
                elif not fork.placed:
                    if not (warm and init_pid == pid):   # else the warm-up placed init itself
                        mgr.apply(init_pid)
                    step("init placed in the cgroups")
                fault("create:placed")
                mgr.set({k: v for k, v in resources.items() if k != "devices"})   # devices: set above
                step("cgroup resources set")
                fault("create:resources-set")
            if cfg.linux.intel_rdt is not None:
                from .linux import intelrdt
                st.facts["intelRdt"] = intelrdt.plan(cfg.linux.intel_rdt, cid)
                st.save()            # before it is made, as the cgroups: delete --force of a killed create
                st.facts["intelRdt"] = rdt = intelrdt.apply(cfg.linux.intel_rdt, cid, init_pid)
                undo.append(lambda: intelrdt.destroy(rdt, rollback=True))
            sync.send(parent_sock, sync.GO)
        init_pid = _serve(parent_sock, pid, cfg, cid, bundle, undo, place, g.log)
        step("init READY")
        fault("create:init-ready")
        if init_pid != pid:
            os.waitpid(pid, 0)       # the intermediate exits once it has forked init
            reaped.append(pid)       # its pid may be reused from now on: a rollback must not kill it
        st.facts.update(pid=init_pid, start_time=proc_start_time(init_pid), creating=False)
        st.facts.pop("creating")
        if not cfg.linux.namespace("mount"):     # what `delete` detaches (rootfs.prepare_without_mount_ns)
            from .linux import rootfs
            st.facts["hostMount"] = [os.path.realpath(cfg.root_path), rootfs.top_mount_id(cfg.root_path)]
            st.facts.pop("hostMountBefore", None)
        if doc.get("hooks"):
            st.facts["hooks"] = doc["hooks"]
        st.save()
        fault("create:saved")
        if o.pid_file:
            write_atomic(os.path.abspath(o.pid_file), str(init_pid).encode(), 0o644)
        fault("create:pid-file")
        parent_sock.close()
        if o.console_fd is None and cfg.process.terminal:
            os.close(console_fd)
        st.release()
        step("state and pid file written")
        step.done()
        return st
    except BaseException as e:
        rollback(undo)
        if not isinstance(e, Interrupted):
            _poststop_after_failure(cfg, cid, bundle, g.log)
        raise


def _poststop_after_failure(cfg, cid: str, bundle: str, log) -> None:
    """runtime.md steps 3-5: a create that fails once its id is taken continues the lifecycle at step 12: destroyed
    (the rollback just done), then its poststop hooks (13), whose failures are warnings. runc 1.1.5 does the same
    (its destroy runs them); not when create is interrupted by a signal (runc's create just dies)."""
    if cfg.hooks.poststop:
        from .linux import hooks
        try:
            hooks.poststop_all(cfg.hooks.poststop, hooks.state_doc(cid, "stopped", 0, bundle, cfg.annotations), log,
                               cwd=bundle)
        except Exception:  # noqa: BLE001   the create's own error is what the user needs
            pass


def rollback(undo) -> None:
    """Run the undo list, last first, each best effort: the original error is what the user needs."""
    for fn in reversed(undo):
        try:
            fn()
        except Exception:  # noqa: BLE001
            pass


def _host_mount_undo(st, root: str):
    """No mount namespace: init mounts in ours, below a self-bind of the rootfs; a failed create detaches it. What
    was topmost on the rootfs before is recorded first, as the cgroups: `delete --force` after a create killed
    anywhere from here on detaches what init stacked there (rootfs.detach_above)."""
    from .linux import rootfs
    st.facts["hostMountBefore"] = before = [os.path.realpath(root), rootfs.top_mount_id(root)]
    st.save()
    return lambda: rootfs.detach_above(*before)


class Interrupted(RuntimeErr):
    pass


def _interrupt_into_rollback():
    """SIGTERM/SIGINT/SIGHUP during create raise, so the undo list still runs (no state, cgroup or process left)."""
    import _signal

    def _raise(n, _frame):
        raise Interrupted(f"create interrupted by signal {n}")
    for s in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP):
        _signal.signal(s, _raise)


def _serve(sock, pid, cfg, cid, bundle, undo, place, log) -> int:
    """Answer the child's requests until READY; return init's host pid."""
    init_pid, moved = 0, None
    while True:
        tag, payload = sync.expect(sock, sync.MAPS, sync.FDS, sync.PID, sync.HOOKS, sync.LOG, sync.READY)
        if tag == sync.LOG:
            sync.log_line(log, payload)
        elif tag == sync.MAPS:
            from .linux import namespaces
            namespaces.write_id_maps(pid, cfg.linux.uid_mappings, cfg.linux.gid_mappings)
            sync.send(sock, sync.GO)
        elif tag == sync.FDS:
            _send_bind_sources(sock, pid, cfg)
        elif tag == sync.PID:
            init_pid, self_placed = _pid_report(payload, pid)
            _or_child_error(sock, lambda: place(init_pid, self_placed))
            if cfg.linux.net_devices:    # init's network namespace exists; nothing of the container's runs yet
                from .linux import netdevices
                moved = _or_child_error(sock, lambda: netdevices.move_all(cfg.linux.net_devices, init_pid))
                undo.append(moved.give_back)    # a failed create gives the devices back (delete does not: spec)
        elif tag == sync.HOOKS:
            creation_hooks(cfg, cid, init_pid, bundle)
            log.debug("create: prestart and createRuntime hooks run")
            sync.send(sock, sync.GO)
        else:
            if moved is not None:
                moved.release()          # init waits on the FIFO now: its own reference keeps the namespace
            return init_pid


def _send_bind_sources(sock, pid: int, cfg) -> None:
    """Answer FDS (init.py 5a): a helper joins the child's new mount namespace (ours stays as it is) and sends it
    O_PATH fds of the bind sources, opened there with our rights (mounts.open_bind_sources). Without the rights
    (rootless) the answer is empty and the child binds by path."""
    helper = os.fork()
    if helper == 0:
        fds = {}
        try:
            from .linux import mounts, syscalls as sc
            ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            sc.setns(ns, sc.CLONE_NEWNS, f"mount namespace of {pid}")
            fds = mounts.open_bind_sources(cfg.mounts, cfg.bundle, pid)
        except BaseException:
            pass
        try:
            sync.send_fds(sock, fds)
            os._exit(0)
        finally:
            os._exit(1)
    if os.waitpid(helper, 0)[1]:          # it died before answering: the child must not wait forever
        sync.send_fds(sock, {})


def creation_hooks(cfg, cid: str, pid: int, bundle: str) -> None:
    """prestart then createRuntime, in the runtime's namespaces, the container `creating` (create and restore);
    in the bundle directory, as runc's (it chdirs there for create)."""
    from .linux import hooks
    state = hooks.state_doc(cid, "creating", pid, bundle, cfg.annotations)
    hooks.run_all("prestart", cfg.hooks.prestart, state, cwd=bundle)
    hooks.run_all("createRuntime", cfg.hooks.create_runtime, state, cwd=bundle)


def _warm_up(mgr, pid: int) -> bool:
    """Place the forked child right away. The first cgroup.procs write of a burst waits for an RCU grace
    period (~10 ms here; v1's threadgroup rwsem): started now, it runs while the child imports and unshares, and
    placing init (on PID) shares it. Best effort: init is placed by its own write either way. True if `pid` was
    placed (by a manager whose warm-up places: not systemd's before its unit starts)."""
    from .linux.cgroups import CgroupError
    try:
        return mgr.warm_up(pid)
    except (OSError, CgroupError):   # not Interrupted: SIGTERM during this write must still roll back
        return False


def _fork_for(cgroup: dict | None, process=None, defer: bool = False) -> "_Fork":
    """How the child gets into its cgroups at birth (see _Fork), from the manager's state (Manager.to_state(), as
    stored): cgroup v2, born in its directory (clone3 CLONE_INTO_CGROUP); cgroup v1 and hybrid hosts, each v1
    hierarchy's directory placed by the child itself (a write of "0" to its `tasks`) and the hybrid's cgroup2 one by
    clone3. Neither, so the parent places the child by cgroup.procs writes as before: no cgroup; the systemd driver
    (create starts the unit with init's pid; exec is left as it was); an exec with process.execCPUAffinity.initial,
    which applies "before the transition to container's cgroup" (config.md): a process born there has no before,
    and the cpuset would override it."""
    if not cgroup or cgroup.get("systemd"):
        return _Fork()
    if process is not None and (process.exec_cpu_affinity or {}).get("initial"):
        return _Fork()
    if cgroup.get("version") == "v2":
        return _Fork(cgroup.get("path"))
    if cgroup.get("version") != "v1":
        return _Fork()
    v2, v1 = None, []
    for h in cgroup.get("hierarchies", ()):
        if h["ctrls"] == [""]:
            v2 = h["dir"]
        elif h["dir"] not in v1:
            v1.append(h["dir"])
    return _Fork(v2, tuple(v1), defer)


class _Fork:
    """os.fork(), or a fork whose child is in its cgroups before it runs any of the container's steps, without the
    parent writing cgroup.procs. The first cgroup.procs write of a burst waits for an RCU grace period (the global
    cgroup threadgroup rwsem taken for writing: 7-24 ms here, most of create's wall time), so:

    - path (a cgroup2 directory: v2's, or a hybrid host's unified one): clone3 with CLONE_INTO_CGROUP, the child is
      born there, before its first instruction (crun does this, runc 1.1.5 does not);
    - tasks (cgroup v1 directories): the child, still single-threaded right after the fork, writes "0" into each
      one's `tasks` file, opened here before the fork. Moving one's own single thread is the one v1 migration the
      kernel does without that rwsem (cgroup_procs_write_start: "If the thread is `current`... we can skip the
      global lock"): ~0.03 ms a hierarchy instead of the grace period. For a process of one thread, its thread's
      cgroup is the process's. What the child forks (init, exec's process) is born there too.

    `placed` (parent): the child is in all its cgroups at birth (clone3 on cgroup v2), nothing to write.
    `self_placing` (parent): the child places itself in the v1 hierarchies (tasks); it tells the parent whether it
    could with its PID report (child_placed, in the child); when it could not, the parent writes cgroup.procs, as
    before, whose own error is then the one reported. When the kernel refuses clone3 (no clone3, a kernel before
    5.7, a cgroup that cannot take processes, no permission, a pids limit reached...) the fork is os.fork() and the
    child is not placed. Called once; the fds are closed again in both processes."""

    __slots__ = ("path", "tasks", "defer", "placed", "refused", "self_placing", "child_placed", "tasks_fds")

    def __init__(self, path: str | None = None, tasks: tuple = (), defer: bool = False):
        self.path, self.tasks, self.defer, self.placed, self.refused = path, tasks, defer, False, None
        self.self_placing = self.child_placed = False
        self.tasks_fds = []

    def __call__(self) -> int:
        fds = self._open_tasks()
        if self.tasks and not fds:
            # a v1 `tasks` could not be opened: clone3 would put the child in the hybrid's cgroup2 hierarchy only,
            # and `placed` would tell the caller it is in all its cgroups. os.fork, and every hierarchy is written.
            self.path = None
        pid = -1
        try:
            pid = self._fork()
            if pid == 0:
                born = self.placed or self.path is None
                if self.defer:               # exec's intermediate: the process it forks writes them (init.py)
                    self.child_placed, self.tasks_fds = born and bool(fds), fds
                else:
                    self.child_placed = born and bool(fds) and initargs.place_self(fds)
            elif fds:                        # on a hybrid host, clone3 placed it in the cgroup2 hierarchy only
                self.self_placing, self.placed = True, False
        finally:
            if pid != 0 or not self.defer:
                for fd in fds:
                    os.close(fd)
        return pid

    def _open_tasks(self) -> list:
        fds = []
        for d in self.tasks:
            try:
                fds.append(os.open(d + "/tasks", os.O_WRONLY | os.O_CLOEXEC))
            except OSError as e:
                for fd in fds:
                    os.close(fd)
                self.refused = f"open {d}/tasks: {e.strerror}"
                return []
        return fds

    def _fork(self) -> int:
        if self.path is None:
            return os.fork()
        from .linux import syscalls as sc
        try:
            fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            self.refused = f"open {self.path}: {e.strerror}"
            return os.fork()
        try:
            pid = sc.fork_into_cgroup(fd)
            self.placed = True
        except sc.SyscallError as e:
            self.refused = str(e)
        finally:
            os.close(fd)             # in the parent, and in the child
        return pid if self.placed else os.fork()

    def describe(self, pid: int) -> str:
        """The --debug step."""
        if self.placed:
            return f"forked the child (pid {pid}) into its cgroup {self.path} (clone3 CLONE_INTO_CGROUP)"
        if self.self_placing:
            if self.path and self.refused:      # a hybrid host whose cgroup2 hierarchy the parent writes, then
                how = f"clone3 into {self.path} refused ({self.refused}), "
            else:
                how = f"born in {self.path} (clone3 CLONE_INTO_CGROUP), " if self.path else ""
            return f"forked the child (pid {pid}); {how}it places itself in the v1 hierarchies (tasks)"
        if self.refused:
            return f"forked the child (pid {pid}); birth into the cgroups refused ({self.refused}): placed by writes"
        return f"forked the child (pid {pid})"


def _pid_report(payload: str, default: int) -> tuple[int, bool]:
    """The child's PID report (init.pid_report): (the pid it gives, or default; whether it placed itself in its
    cgroups at birth, _Fork.child_placed)."""
    words = payload.split()
    nums = [w for w in words if w.isdigit()]
    return (int(nums[0]) if nums else default), "placed" in words


def _fork_in_pidns(how: str | None, fork=os.fork) -> tuple[int, bool]:
    """os.fork(), the child born in the pid namespace `how` says; (pid, direct). how "new": unshare(CLONE_NEWPID)
    here, so the child is PID 1 of a new namespace, init itself; how "/proc/N/ns/pid": setns there, so exec's child
    is in the container's pid namespace from birth; how "same": nothing to join. We go back to our own namespace
    right after, for anything we fork later (hooks). direct: the child needs no second fork, so there is no
    intermediate process, a fork of this interpreter that lived only to fork again (~2.5 ms of CPU per exec,
    rusage, and a socket round trip). how None (direct False): the child makes or joins the namespace and forks (a
    user or time namespace must come first, or the pid namespace is given by path). fork: os.fork or a _Fork."""
    if how in (None, "same"):
        return fork(), how == "same"
    if os.geteuid() != 0 or _in_userns():   # rootless (podman runs us as root of its user namespace): the way back
        return fork(), False                # to our own pid namespace needs CAP_SYS_ADMIN where we have none
    from .linux import syscalls as sc
    # the child is in the container's pid namespace from birth, visible to its processes before its own first
    # step: it inherits non-dumpable across fork (init.py exec_main step 1, CVE-2019-5736 class); we are again after
    dumpable = sc.prctl(sc.PR_GET_DUMPABLE)
    sc.set_dumpable(False)
    pid = -1
    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if how == "new":
                sc.unshare(sc.CLONE_NEWPID)
            else:
                fd = os.open(how, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    sc.setns(fd, sc.CLONE_NEWPID, f"pid namespace {how}")
                finally:
                    os.close(fd)
            try:
                pid = fork()
            finally:
                if pid != 0:         # the parent (or no child): back; the child stays where it was born
                    sc.setns(own, sc.CLONE_NEWPID, "our own pid namespace, back from the container's")
        finally:
            os.close(own)
    finally:
        if pid != 0 and dumpable:
            sc.set_dumpable(True)
    return pid, True


def _exec_pidns(init_pid: int) -> str | None:
    """How exec's child gets into init's pid namespace: _fork_in_pidns's `how`, or None when the container has its own
    user or time namespace (joined first, by the child, which then forks)."""
    def ns(pid, name):
        try:
            return os.readlink(f"/proc/{pid}/ns/{name}")
        except FileNotFoundError:       # a namespace type this kernel lacks
            return None
        except OSError:
            return "?"
    if any(ns(init_pid, n) != ns("self", n) for n in ("user", "time")):
        return None
    # A container with its own mount namespace: the child joins it before the process the container can see is
    # forked (the intermediate way, ~2.5 ms of CPU). Born in the pid namespace, the child would be visible there with
    # the host's root and cwd until its own setns(mnt), and a container process holding CAP_SYS_PTRACE in the
    # initial user namespace passes the ptrace check on a non-dumpable process: its /proc/<pid>/cwd and /root are
    # host directories (runc's visible process is always inside the container's root).
    if ns(init_pid, "mnt") != ns("self", "mnt"):
        return None
    return "same" if ns(init_pid, "pid") == ns("self", "pid") else f"/proc/{init_pid}/ns/pid"


def needs_sealed_interpreter(cfg, process=None, pidns: str | None = None) -> bool:
    """A process that can see the runtime's visible process (a created container's init, exec's process) could hold
    CAP_SYS_PTRACE in the initial user namespace: it passes the ptrace check on our non-dumpable processes, so the
    interpreter they run must be a read-only copy (linux/sealexe.py). Such a process is one of this container's (the
    five sets of its process or of `process`, exec's; no user namespace of its own) or any process of the pid
    namespace the visible process is in (`pidns`, a /proc/<pid>/ns/pid path: the one create joins by path, exec's
    container's): another container that joined it (a pod sharing its pid namespace, a debug container), whatever its
    own config says, and with or without a user namespace of this one. Not when nothing of our user namespace can
    write the interpreter's file (_interpreter_writable_here: rootless). Others cannot open /proc/<pid>/exe of a
    non-dumpable process at all."""
    def ptrace(p):
        caps = p.capabilities if p is not None else None
        return caps is not None and any(c.upper().removeprefix("CAP_") == "SYS_PTRACE"
                                        for s in (caps.bounding, caps.effective, caps.permitted, caps.inheritable,
                                                  caps.ambient) if s for c in s)
    own = not cfg.linux.namespace("user") and (ptrace(cfg.process) or ptrace(process))
    if not own and pidns is None or not _interpreter_writable_here():
        return False
    return own or _ptrace_capable_in(pidns)


def _interpreter_writable_here() -> bool:
    """Root of our user namespace (or anyone) could write the interpreter's file: always in the initial user
    namespace. In another (rootless, podman's, a runtime nested in a container) only when the file's owner is mapped
    in it (a runtime in a container whose image holds the interpreter: root of that container writes it), or its
    group is and may write, or anyone may. An id outside the namespace shows as the overflow id; a file really owned
    by that id counts as outside."""
    if not _in_userns():
        return True
    try:
        st = os.stat(os.path.realpath(sys.executable))
        with open("/proc/sys/kernel/overflowuid", "rb") as f:
            overflow_uid = int(f.read())
        with open("/proc/sys/kernel/overflowgid", "rb") as f:
            overflow_gid = int(f.read())
    except (OSError, ValueError):
        return True                  # cannot tell: seal
    return bool(st.st_uid != overflow_uid or (st.st_gid != overflow_gid and st.st_mode & 0o020) or st.st_mode & 0o002)


_CAP_SYS_PTRACE = 1 << 19


def _ptrace_capable_in(pidns: str) -> bool:
    """Some process of the pid namespace at `pidns` could hold CAP_SYS_PTRACE in our user namespace: it is in our
    user namespace and has the capability in one of its sets, the bounding set included (an exec of a program with
    file capabilities or set-uid root gives it back). A scan of /proc (~1 ms per 100 processes), so a process that
    joins after it is not seen. False for our own pid namespace (a container without one): everything of ours is
    visible there, the caller of the runtime included, so a sealed copy would protect nothing."""
    try:
        target = os.readlink(pidns)
        if target == os.readlink("/proc/self/ns/pid"):
            return False
        user = os.readlink("/proc/self/ns/user")
    except OSError:
        return False                 # no such namespace: create or exec fails when it joins it
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") != target or os.readlink(f"/proc/{name}/ns/user") != user:
                continue
            tasks = os.listdir(f"/proc/{name}/task")
        except OSError:              # gone meanwhile, or a kernel thread
            continue
        for task in tasks:           # capabilities are per thread: /proc/PID/status shows the main thread's only
            try:
                with open(f"/proc/{name}/task/{task}/status", "rb") as f:
                    status = f.read()
            except OSError:
                continue
            for line in status.splitlines():
                if line[:3] == b"Cap" and int(line.partition(b":")[2], 16) & _CAP_SYS_PTRACE:
                    return True
    return False


def _or_child_error(sock, fn):
    """fn(); if it fails because the child already died (ESRCH, EPIPE...), the child's own error, queued on the
    socket as ERR, is the one to report."""
    try:
        return fn()
    except Exception:
        sync.raise_pending_error(sock)
        raise


def _in_userns() -> bool:
    from .cli import in_user_namespace
    return in_user_namespace()


def _cgroup_manager(g, cfg, cid):
    if g.cgroup_manager == "disabled":       # --cgroup-manager disabled (crun's): no cgroup at all
        return None
    from .linux import cgroups
    mgr = cgroups.manager_for(cfg.linux.cgroups_path, cid, systemd=g.systemd_cgroup, log=g.log.debug)
    if g.rootless != "false" and (g.rootless != "auto" or os.geteuid() != 0 or _in_userns()):
        from .linux import rootless
        if rootless.enabled(g):
            rootless.check_config(cfg)
            return rootless.cgroup_manager(mgr, cfg, g.log.debug)
    return mgr


def _kill_and_reap(pid: int, init_pid: int):
    for p in {pid, init_pid} - {0}:
        try:
            os.kill(p, 9)  # SIGKILL
        except ProcessLookupError:
            pass
    for p in {pid, init_pid} - {0}:
        try:
            os.waitpid(p, 0)
        except ChildProcessError:
            wait_gone(p, 2.0)


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until pid (not necessarily our child) has exited. True if it did within timeout."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        import select
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def exec_process(g, st: ContainerState, process, *, console_socket=None, console_fd=None, pid_file=None,
                 preserve_fds=0, sub_cgroups=None) -> int:
    """Start `process` in the running container `st`. Returns the new process's host pid once it has exec'd.
    sub_cgroups: exec --cgroup's {controller or "": path}, existing sub-cgroups of the container's to run it in."""
    step = g.log.steps("exec")
    sub_dirs = _sub_cgroup_dirs(st.facts.get("cgroup"), sub_cgroups) if sub_cgroups else None
    from .config import model
    cfg, _ = model.load(st.facts["bundle"], validate=False, name=st.facts.get("config", "config.json"))
    step("config.json loaded")
    if process.terminal and console_socket is None and console_fd is None:
        raise ConfigError("process.terminal",
                          "is true but no --console-socket was given: use --console-socket to receive the pty master")
    undo = []
    console_ours = console_fd is not None       # run/exec in the foreground: their own end of the console socket
    try:
        if process.terminal and console_fd is None:
            from .linux import console
            console_fd = console.connect(console_socket)
            undo.append(lambda: os.close(console_fd))
        parent_sock, child_sock = sync.pair()
        undo.append(parent_sock.close)
        cfg_for_preload = _with_process(cfg, process)
        from .linux import syscalls
        syscalls.set_child_subreaper()   # always: the final process is our child until placed (no pid reuse)
        args = initargs.ExecArgs(process=process, init_pid=st.pid, sock=child_sock, console_fd=console_fd,
                                 console_ours=console_ours,
                                 preserve_fds=_preserved_fds(preserve_fds or 0), cid=st.id, cfg=cfg_for_preload,
                                 debug=g.debug)
        step("ready to fork")
        # then the child re-execs first, before it joins
        args.seal = needs_sealed_interpreter(cfg, process, pidns=f"/proc/{st.pid}/ns/pid")
        how = None if args.seal else _exec_pidns(st.pid)
        # With an intermediate (how None), the process it forks places itself: a process forked inside the
        # container's pids cgroup is held to its limit, one moved there is not (runc places the final process: its
        # exec works in a container at its pids limit). The sealed re-exec closes the fds: placed by writes.
        fork = _Fork() if sub_dirs or args.seal else _fork_for(st.facts.get("cgroup"), process, defer=how is None)
        pid, args.in_pidns = _fork_in_pidns(how, fork)
        if pid == 0:
            args.self_placed, args.tasks_fds = fork.child_placed, fork.tasks_fds
            parent_sock.close()
            st.release()
            initargs.run_child("exec_main", args)   # never returns
        child_sock.close()
        step(fork.describe(pid))
        reaped = []
        undo.append(lambda: reaped or _kill_and_reap(pid, 0))
        if process.exec_cpu_affinity and process.exec_cpu_affinity.get("initial"):
            # "initial" applies before the move into the container's cgroup (config.md execCPUAffinity): set on
            # the intermediate before its warm-up placement, the final process inherits it at fork
            from .linux import procattrs
            cpus = procattrs.parse_list(process.exec_cpu_affinity["initial"], "process.execCPUAffinity.initial")
            try:
                os.sched_setaffinity(pid, cpus)
            except OSError as e:
                from .linux.syscalls import SyscallError
                raise SyscallError("sched_setaffinity", "process.execCPUAffinity.initial", e.errno) from None
        def manager():
            from .linux import cgroups
            return cgroups.manager_from_state(st.facts["cgroup"])
        mgr, warm = None, fork.placed   # born in the container's cgroup (so is the process, if the child forks it)
        if st.facts.get("cgroup") and not (warm or fork.self_placing):
            mgr = manager()
            warm = _warm_up(mgr, pid)   # the grace period of the first cgroup.procs write runs while the child joins
            step("child placed in the cgroups (warm-up)")
        _, payload = sync.expect(parent_sock, sync.PID)
        exec_pid, self_placed = _pid_report(payload, pid)     # no pid: the child itself, no second fork
        step(f"the process's pid {exec_pid} received")
        if self_placed:
            step("the process is in its cgroups (it moved itself there)")
        if fork.self_placing and not self_placed:   # it could not: written, and that write's error is reported
            mgr = manager()
        undo.append(lambda: _kill_and_reap(exec_pid, 0))
        fault("exec:pid")
        if exec_pid != pid:
            os.waitpid(pid, 0)
            reaped.append(pid)       # exec_pid is our child now (we are its subreaper): its pid stays its own
        if mgr is not None and not (warm and (exec_pid == pid or fork.placed)):   # else placed already
            _or_child_error(parent_sock, lambda: mgr.apply(exec_pid))
            step("the process placed in the cgroups")
        if sub_dirs:
            _or_child_error(parent_sock, lambda: _enter_sub_cgroups(sub_dirs, exec_pid))
            step("the process placed in the sub-cgroups (--cgroup)")
        if st.facts.get("intelRdt"):   # the exec'd process shares the container's cache/bandwidth allocation
            from .linux import intelrdt
            intelrdt.add_task(st.facts["intelRdt"], exec_pid)
        sync.send(parent_sock, sync.GO, str(exec_pid))
        while (msg := sync.expect(parent_sock, sync.LOG, sync.READY))[0] == sync.LOG:
            sync.log_line(g.log, msg[1])
        step("the process READY")
        tag, payload = sync.recv_or_eof(parent_sock)   # EOF: the socket closed on a successful execve
        if tag == sync.ERR:
            raise RuntimeErr(payload)
        step("the process exec'd")
        if pid_file:
            write_atomic(os.path.abspath(pid_file), str(exec_pid).encode(), 0o644)
        parent_sock.close()
        if process.terminal and console_socket is not None:
            os.close(console_fd)
        step.done()
        return exec_pid
    except BaseException:
        rollback(undo)
        raise


def _sub_cgroup_dirs(cgroup: dict | None, subs: dict) -> list:
    """exec --cgroup (runc 1.1): the directories, below the container's, to put the process in: {"": path} for all
    of its hierarchies (cgroup v2: its one directory), {controller: path} for those controllers' hierarchies (the
    others keep the container's). Each must exist and stay below the container's cgroup."""
    from .linux import cgroups
    if not cgroup:
        raise RuntimeErr("--cgroup: the container has no cgroup")
    paths = cgroups.manager_from_state(cgroup).paths        # {controller: dir}; cgroup v2: {"": dir}
    v2 = set(paths) == {""}
    chosen = {}
    for ctrl, sub in subs.items():
        if ctrl == "":
            bases = set(paths.values())
        elif v2:
            raise RuntimeErr(f"--cgroup {ctrl}:{sub}: on cgroup v2 the only form is --cgroup PATH")
        elif ctrl in paths:
            bases = {paths[ctrl]}
        else:
            raise RuntimeErr(f"--cgroup {ctrl}:{sub}: the container has no {ctrl!r} controller")
        for base in bases:
            d = os.path.normpath(os.path.join(base, sub.lstrip("/")))
            if d != base and not d.startswith(base + "/"):
                raise RuntimeErr(f"--cgroup {sub!r}: not below the container's cgroup {base}")
            if not os.path.isdir(d):
                raise RuntimeErr(f"--cgroup {sub!r}: no sub-cgroup {d} (it must exist)")
            chosen[base] = d
    return sorted(set(chosen.values()))


def _enter_sub_cgroups(dirs: list, pid: int) -> None:
    from .linux.cgroups.common import Dir
    for d in dirs:
        Dir(d).write("cgroup.procs", pid, "--cgroup")


def _with_process(cfg, process):
    from .record import replace
    return replace(cfg, process=process)
