"""The child side of `create`: THE ordered init sequence, one step per line.

Runs in the process forked by launch.py. It never returns into caller code: it ends in execve or os._exit, and any
exception before READY travels to the parent as one ERR message (sync.py) that `create` prints.

    stage 1 (the forked child, still in the runtime's namespaces; it imports no more than this needs)
      0  oomScoreAdj                      with the host's ids, still dumpable (see _early_oom_score_adj)
      1  non-dumpable                     before anything of ours can be seen from inside the container (init
                                          inherits it across fork); command line "ociruntime init"
      2  move our fds out of the way      the --preserve-fds range 3..3+N-1 stays for the container
      2a open with the host's rights      the exec FIFO; the seccomp agent's socket (connected)
      3  join namespaces given by path    setns, user first
      4  new user namespace               unshare, parent writes uid/gid maps, become root in it
      5  new namespaces                   unshare the rest in one call, but cgroup (P)
      5a bind sources (user namespace)    O_PATH fds opened in our new mount namespace by the parent (FDS)
      6  time offsets                     before the first child of the new time namespace
      7  fork for pid/time namespaces     the grandchild is init (PID 1); the intermediate reports its pid and exits
    stage 2 (init, in every namespace). On PID the parent puts init in its cgroups: the first cgroup.procs write
    waits for an RCU grace period (~10 ms here), so init goes on meanwhile, running only our code (and no child
    but a short-lived helper for idmapped mounts) up to step P, taken at the first of: a cgroup2 mount in a new cgroup namespace (11), hooks (14, 15),
    step 21.
      P  wait for GO                      we are in the container's cgroups; new cgroup namespace, rooted there
      8  import what the sequence needs   after pivot_root the runtime's files are out of reach (preload);
                                          with a user namespace, before 3 (its root may not read them)
      9  loopback up                      new network namespace only
     10  rootfs: propagation, self-bind   rootfsPropagation (unbindable: private until 20b), then the rootfs
                                          becomes a mount point
     11  mounts[]                         in order, destinations resolved inside the rootfs
     12  /dev                             default devices, linux.devices, links
     13  the exec FIFO (O_PATH, from 2a)  the state dir is gone from view after pivot
     14  prestart/createRuntime hooks     run by the parent (runtime namespace), we wait
     15  createContainer hooks            container namespaces, before pivot
     16  pivot_root (or move + chroot; without a mount namespace chroot alone, as runc)
     16a process.cwd made when missing    0755, inside the new root, before the root can turn read-only (runc)
     17  console                          pty from the container's ptmx, master to --console-socket; setsid
                                          either way (runc: the session is the container's own)
     18  hostname, domainname, sysctl     sysctl before /proc/sys turns read-only
     19  masked and readonly paths        after every mount so mounts[] cannot undo them
     20  read-only /dev (a /dev mount with ro is mounted writable and populated first), read-only root
     20b rootfsPropagation on the new /  last of the mount steps: an unbindable / refuses the binds above
     20a the sealed exec program          a memfd (linux/dmz.py), before rlimits can forbid the fd
     21  rlimits                          (after P: affinity, scheduler and memory policy depend on the cgroup)
                                          rlimits before the user switch (raising needs privileges)
     22  LSM exec labels, personality, scheduler, ioPriority, CPU affinity, memory policy
     23  session keyring                  unless --no-new-keyring
     24  close every fd not passed on, then cwd: inside the new root, never a path or fd of the host
         (a cwd the new root cannot reach, e.g. /proc/self/fd/N of a preserved host dir, fails: CVE-2024-21626)
     25  user switch keeping capabilities, then the five capability sets, umask
     26  noNewPrivileges
     27  READY; block on the exec FIFO until `start`
     28  startContainer hooks
     29  seccomp                          last, so setup syscalls are not filtered
     30  execve process.args              through the sealed in-memory program of step 20a (linux/dmz.py): the
                                          runtime's binary is never /proc/self/exe of that execve (CVE-2019-5736)
"""
import sys

from . import fastos as os    # `import os` is ~1.8 ms of CPU that init (and exec's child) would pay

import _signal  # the C module: `import signal` costs ~4 ms (enum)

from . import sync
from .errors import fault
from .initargs import ExecArgs, InitArgs, hot_path_globals, place_self
from .linux import syscalls as sc

_HIGH_FD = 1000  # our own fds move up here, away from the caller's preserved range


def preload(cfg, for_exec: bool = False) -> None:
    """Import, before pivot_root, every module the init sequence will need for this config: after pivot_root the
    runtime's own files (and the interpreter's library) are no longer reachable from init. for_exec: what exec's
    process needs after joining the container's mount namespace (no rootfs, mounts, /dev or network setup: ~1.5 ms
    less CPU per exec)."""
    lx, proc = cfg.linux, cfg.process
    need = ["fcntl", "ociruntime.linux.user", "ociruntime.linux.capabilities", "ociruntime.linux.rlimits"]
    if not for_exec:
        need += ["ociruntime.linux.namespaces", "ociruntime.linux.rootfs", "ociruntime.linux.mounts",
                 "ociruntime.linux.devices", "ociruntime.linux.paths"]
    if not for_exec and lx.namespace("network") and not lx.namespace("network").path:
        need.append("ociruntime.linux.network")
    if proc.terminal:
        need.append("ociruntime.linux.console")
    if lx.sysctl:
        need.append("ociruntime.linux.sysctl")
    if proc.apparmor_profile or proc.selinux_label:
        need.append("ociruntime.linux.lsm")
    if lx.personality or proc.scheduler or proc.io_priority or \
            proc.exec_cpu_affinity or lx.memory_policy:
        need.append("ociruntime.linux.procattrs")
    if any(m.type == "cgroup" for m in cfg.mounts):
        need.append("ociruntime.linux.cgroups")
    if cfg.hooks.create_container or cfg.hooks.start_container:
        need += ["ociruntime.linux.hooks", "subprocess"]
    if lx.seccomp:
        need.append("ociruntime.linux.seccomp")
    need.append("ociruntime.linux.dmz")
    for name in need:
        __import__(name)         # not importlib.import_module: importlib (+ warnings) is ~1.2 ms more
        mod = sys.modules[name]
        if hasattr(mod, "preload"):
            mod.preload()   # a module's own lazy imports (python-prctl, libseccomp...)


def main(a: InitArgs) -> None:
    """Entry of the forked child. Never returns."""
    try:
        _stage1(a)
    except BaseException as e:  # noqa: BLE001 — every failure becomes one message to the parent
        _fail(a, e)
    os._exit(0)


def _fail(a, e):
    from .errors import describe
    msg = describe(e)
    if a.debug and msg.startswith("internal error: "):
        try:
            import traceback
            traceback.print_exception(e)  # --debug: the traceback on the runtime's stderr (init inherited it)
        except Exception:  # noqa: BLE001 — after pivot_root the module may be out of reach
            pass
    try:
        sync.send(a.sock, sync.ERR, msg)
    except OSError:
        sys.stderr.write(f"ociruntime init: {msg}\n")
    os._exit(1)


def _steps(a, who: str):
    """--debug's step trace in a forked child: the lines go to the parent with the notes, just before READY."""
    from .log import NO_STEPS, Steps
    if not a.debug:
        return NO_STEPS
    if a.notes is None:
        a.notes = []
    return Steps(sync.step_note(a.notes), who)


def _stage1(a: InitArgs):
    cfg = a.cfg
    lx = cfg.linux
    step = _steps(a, "create child")
    _early_oom_score_adj(cfg.process.oom_score_adj)              # 0
    sc.set_dumpable(False)                                       # 1
    _hide_command_line()
    if lx.namespace("user"):      # as root of a user namespace, the runtime's files may be unreadable (/root)
        preload(cfg)                                             # 8, early
        step("8 modules imported (early: user namespace)")
    from .linux import namespaces
    _move_own_fds(a)                                             # 2
    _open_with_host_rights(a)                                    # 2a
    namespaces.join(lx.namespaces)                               # 3
    step("1-3 non-dumpable, fds moved, namespaces joined")
    userns = lx.namespace("user")
    if userns and not userns.path:                               # 4
        sc.unshare(sc.CLONE_NEWUSER)
        rootless = os.geteuid() != 0     # an unprivileged parent can open /proc/PID/uid_map of a dumpable child only
        if rootless:                     # (runc too); nothing of the container runs yet
            sc.set_dumpable(True)
        sync.send(a.sock, sync.MAPS)
        sync.expect(a.sock, sync.GO)
        if rootless:
            sc.set_dumpable(False)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        step("4 user namespace made, id maps written by the parent")
    exclude = ("user", "cgroup", "pid") if a.in_pidns else ("user", "cgroup")   # the parent made pid's
    sc.unshare(namespaces.new_flags(lx.namespaces, exclude=exclude))              # 5
    if userns and lx.namespace("mount") and not lx.namespace("mount").path:      # 5a
        sync.send(a.sock, sync.FDS)
        a.source_fds = sync.recv_fds(a.sock)
    timens = lx.namespace("time")
    if timens and not timens.path and lx.time_offsets:           # 6
        namespaces.write_time_offsets(lx.time_offsets)
    step("5-6 namespaces unshared")
    if a.in_pidns:                                               # 7: forked into it by the parent, PID 1 already
        sync.send(a.sock, sync.PID, pid_report(a, _host_pid()))
    elif lx.namespace("pid") or (timens and not timens.path):    # 7
        pid = os.fork()
        if pid:
            sync.send(a.sock, sync.PID, pid_report(a, pid))
            os._exit(0)
        step.forked()
        step("7 forked init (PID 1 of the new pid namespace)")
    else:
        sync.send(a.sock, sync.PID, pid_report(a, os.getpid()))
    step.done()
    _stage2(a, _steps(a, "init"))


def pid_report(a, pid) -> str:
    """PID's payload (launch._pid_report reads it): the host pid of the process the container's program will be (none:
    exec's child itself), and "placed" when the child put itself in the container's cgroups right after the fork
    (launch._Fork; what it forks is there too), so the parent writes no cgroup.procs."""
    return " ".join(([str(pid)] if pid else []) + (["placed"] if a.self_placed else []))


def _hide_command_line() -> None:
    """Step 1: our command line becomes "ociruntime init", as runc's init shows "runc init". /proc/<pid>/cmdline is
    readable by whoever sees the pid, non-dumpable or not: the container (an exec into a created container, a
    process watching exec's) would read the host's paths of the interpreter, the launcher, --root and the bundle,
    and `ps` would list them. The bytes are rewritten in place (the argument area keeps its size, NUL-padded)
    through /proc/self/mem; best effort."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])     # arg_start, arg_end (proc(5) fields 48 and 49)
        title = b"ociruntime\0init\0"
        if end - start < len(title):
            return
        fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
        try:
            os.pwrite(fd, title.ljust(end - start, b"\0"), start)
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        pass


def _early_oom_score_adj(v) -> None:
    """process.oomScoreAdj, written first: in the host's user namespace, with the runtime's ids, before step 1.
    Later it cannot be: a lowered value is checked against CAP_SYS_RESOURCE in the initial user namespace, which root
    of a new one lacks, and a non-dumpable process's /proc/self files belong to the host's root, which an unprivileged
    user (rootless) or root of a user namespace cannot write even to raise it. As runc 1.1.5 (checked in the cgroup v2
    VM and on this host): root with a user namespace raises and lowers it, a rootless container raises it and cannot
    lower it. oom_score_adj is inherited across fork and kept by execve."""
    if v is None:
        return
    from .linux import procattrs
    procattrs.apply_oom_score_adj(v)


def _await_placement(a: InitArgs) -> None:
    """Step P: GO means the parent has put us (init) in the container's cgroups; only then the cgroup namespace
    (rooted at the cgroup we are in) and anything that forks or lets the container's code run."""
    if a.placed:
        return
    sync.expect(a.sock, sync.GO)
    ns = a.cfg.linux.namespace("cgroup")
    if ns and not ns.path:
        sc.unshare(sc.CLONE_NEWCGROUP)
    a.placed = True


def _stage2(a: InitArgs, step):
    if not a.cfg.linux.namespace("user"):
        preload(a.cfg)                                           # 8
        step("8 modules imported")
    from .linux import devices, mounts, rootfs
    cfg, lx = a.cfg, a.cfg.linux
    proc = cfg.process
    in_userns = lx.namespace("user") is not None
    a.host_pid = _host_pid()   # the host's /proc is still mounted: hooks and the seccomp agent need this pid
    if lx.namespace("network") and not lx.namespace("network").path:  # 9
        from .linux import network
        network.loopback_up()
        step("9 loopback up")
    own_mntns = lx.namespace("mount") is not None
    if own_mntns:                                                # 10
        rootfs.prepare(cfg.root_path, lx.rootfs_propagation)
    else:                                                        # the runtime's mount namespace: see --help
        rootfs.prepare_without_mount_ns(cfg.root_path)
    step("10 rootfs prepared")
    cgns = lx.namespace("cgroup")
    if cgns and not cgns.path and any(m.type == "cgroup2" for m in cfg.mounts):
        _await_placement(a)          # P: a raw cgroup2 mount must show the new namespace's view, not ours
        step("P in the cgroups, resources set (GO)")
    mounts.mount_all(cfg.root_path, cfg.mounts, bundle=cfg.bundle,  # 11
                     mount_label=lx.mount_label, cgroup_mount=_cgroup_mounter(a), debug=_note(a, "debug"),
                     source_fds=a.source_fds)
    for fd in (a.source_fds or {}).values():
        os.close(fd)
    step(f"11 {len(cfg.mounts)} mounts")
    devices.setup_dev(cfg.root_path, lx.devices, in_userns=in_userns,  # 12
                      dev_is_mounted=any(m.destination == "/dev" for m in cfg.mounts))
    step("12 /dev")
    fifo = a.fifo_fd                                             # 13 (opened at 2a)
    listener = a.listener                                        # the seccomp agent's connection (2a)
    if cfg.hooks.prestart or cfg.hooks.create_runtime or cfg.hooks.create_container:
        _await_placement(a)                                      # P (a hook's processes count in the cgroup)
        step("P in the cgroups, resources set (GO)")
    if cfg.hooks.prestart or cfg.hooks.create_runtime:          # 14
        sync.send(a.sock, sync.HOOKS)
        sync.expect(a.sock, sync.GO)
        step("14 prestart/createRuntime hooks run by the parent")
    if cfg.hooks.create_container:                               # 15
        from .linux import hooks
        # process.env as it is (runc: HOME is not known before pivot_root); in the rootfs directory, the container's
        # mounts made below it, as runc 1.1.5 (it chdirs to the rootfs before these hooks). crun runs them in the
        # bundle directory (its test_hooks createContainer-hook-after-mounts looks for rootfs/proc/self): runc wins
        hooks.run_all("createContainer", cfg.hooks.create_container, _state(a, "creating", os.getpid()),
                      dict(kv.partition("=")[::2] for kv in proc.env), cwd=cfg.root_path)
        step("15 createContainer hooks")
    fault("init:before-pivot")
    rootfs.pivot(cfg.root_path, bool(a.no_pivot), chroot_only=not own_mntns)  # 16
    rootfs.make_cwd(proc.cwd)                                    # 16a
    rootfs.reopen_dev_null()     # stdio on the host's /dev/null: the container's own (runc; criu can dump it)
    step("16 pivot_root")
    if proc.terminal:                                            # 17
        from .linux import console
        master, slave = console.open_pty(proc.console_size, clear_onlcr=bool(a.console_ours))
        console.send_master(a.console_fd, master)
        os.close(master)
        os.close(a.console_fd)
        console.become_session_leader_on(slave)
        rootfs.bind_console(slave)
    else:
        os.setsid()      # runc: a session of its own, inside the container (criu refuses a session from outside)
    if cfg.hostname is not None and lx.namespace("uts"):         # 18
        sc.sethostname(cfg.hostname)
    if cfg.domainname is not None and lx.namespace("uts"):
        sc.setdomainname(cfg.domainname)
    if lx.sysctl:                                                # before readonlyPaths makes /proc/sys read-only
        from .linux import sysctl
        sysctl.apply(lx.sysctl)
    rootfs.mask_paths(lx.masked_paths)                           # 19
    rootfs.readonly_paths(lx.readonly_paths)
    if mounts.dev_is_readonly(cfg.mounts):                       # 20: a read-only /dev, populated (runc)
        rootfs.remount_dev_readonly()
    if cfg.root_readonly:
        rootfs.remount_root_readonly()
    if own_mntns:
        rootfs.finish_propagation(lx.rootfs_propagation)         # 20b
    step("17-20 console, hostname, sysctl, masked and read-only paths")
    err_fd = fifo     # the FIFO's write end takes this number in _wait_for_start: the exec report goes there
    exe = _prepare_exec(a, proc, lx, err_fd)                     # 20a (before rlimits: it needs an fd)
    step("20a sealed exec program")
    if not a.placed:
        _await_placement(a)                                      # P at the latest
        step("P in the cgroups, resources set (GO)")
    _process_attributes(proc, lx)                                # 21, 22
    if not a.no_new_keyring:                                     # 23
        sc.keyctl_join_session_keyring(a.cid)
    _close_foreign_fds(a)                                        # 24
    _chdir(proc.cwd)
    step("21-24 process attributes, keyring, fds closed, cwd")
    # without noNewPrivileges, loading a filter needs CAP_SYS_ADMIN: then it goes in before the user switch
    early_seccomp = bool(lx.seccomp) and not proc.no_new_privileges
    if early_seccomp:
        _load_seccomp(a, lx.seccomp, listener, "creating")
        step("seccomp filter loaded (before the user switch)")
    # with a seccomp agent, the filter goes in before READY whatever noNewPrivileges says: the agent gets the fd
    # during create, the state saying "creating" (runc 1.1); the startContainer hooks then run under the filter
    agent_seccomp = bool(lx.seccomp) and not early_seccomp and listener is not None
    _report_unknown_syscalls(a, lx.seccomp, early_seccomp or agent_seccomp)
    env = _env(proc)                                             # HOME from /etc/passwd: before the user switch
    _switch_user(a, proc)                                        # 25
    if proc.no_new_privileges:                                   # 26
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    argv0 = _lookup(proc, env)  # fail in create, not in start, when the program is missing
    step("25-26 user, capabilities, noNewPrivileges; program found")
    if agent_seccomp:
        _load_seccomp(a, lx.seccomp, listener, "creating")
        step("seccomp filter loaded (an agent listens)")
    step.done("READY")
    _wait_for_start(a, fifo)
    try:
        if cfg.hooks.start_container:                            # 28
            from .linux import hooks
            hooks.run_all("startContainer", cfg.hooks.start_container, _state(a, "created", os.getpid()), env)
        if lx.seccomp and not early_seccomp and not agent_seccomp:   # 29
            _load_seccomp(a, lx.seccomp, listener, "running")
        _restore_signals()
        _exec_program(exe, err_fd, argv0, proc, env)             # 30
    except BaseException as e:  # noqa: BLE001 — the FIFO is still open: `start` reads this and fails
        try:
            os.write(a.fifo_w, f"exec {proc.args[0]}: {e}".encode())
        finally:
            os._exit(127)


def _prepare_exec(a, proc, lx, err_fd: int):
    """Step 20a: the sealed program that will exec process.args (linux/dmz.py); None where it cannot run (an
    SELinux label) and the runtime execs directly. Anything else that prevents it fails the create or exec
    (vm.memfd_noexec=2, an architecture without the program): a direct exec would reopen CVE-2019-5736."""
    from .linux import dmz
    if proc.selinux_label:
        return None
    uid, gid = proc.user.uid, proc.user.gid
    if os.geteuid() != 0:        # rootless exec, before joining the user namespace: only one's own ids can own it
        uid, gid = os.geteuid(), os.getegid()      # (the program's chmod of itself is best effort)
    return dmz.prepare(err_fd, uid, gid, chmod=not lx.seccomp)


def _exec_program(exe, err_fd: int, argv0: str, proc, env: dict):
    if exe is None:
        os.execve(argv0, list(proc.args), env)
    from .linux import dmz
    dmz.execve(exe, err_fd, argv0, list(proc.args), env)


def _load_seccomp(a, cfg, listener, status="running"):
    from .linux import seccomp
    seccomp.load(cfg, state=_state(a, status), listener=listener, debug=_note(a, "debug"))
    if listener is not None:
        listener.close()


def _cgroup_mounter(a):
    state = a.cgroup_state
    if not state:
        from .cli import in_user_namespace
        if not a.cfg.linux.namespace("user") and not in_user_namespace():
            return None
        state = _own_cgroup_state()   # rootless without a cgroup of its own: bind the ones init is in (runc)
    ns = a.cfg.linux.namespace("cgroup")

    def mount(dest, options):
        if ns and not ns.path and state.get("version") == "v2":
            _await_placement(a)      # a fresh cgroup2 mount in the new cgroup namespace (v1 binds: mount.py)
        from .linux import cgroups
        cgroups.mount_cgroup(dest, read_only=bool(options.flags & sc.MS_RDONLY), cgroupns=ns is not None,
                             joined_ns=bool(ns and ns.path), manager_state=state,
                             flags=options.flags & ~sc.MS_RDONLY)
    return mount


def _own_cgroup_state() -> dict:
    """The cgroups this process is in, as a manager state for the `cgroup` mount only (never stored or written)."""
    from .linux import cgroups
    if cgroups.detect() == "v2":
        from .linux.cgroups.v2 import V2Manager
        return V2Manager.for_path(".").to_state()
    from .linux.cgroups.v1 import V1Manager
    return V1Manager.for_path(".").to_state()


def _process_attributes(proc, lx):
    """Steps 21-22: each only when configured, so its module is only imported then (oomScoreAdj: step 0)."""
    if lx.personality or proc.scheduler or proc.io_priority or lx.memory_policy:
        from .linux import procattrs
    if proc.rlimits:
        from .linux import rlimits
        rlimits.apply(proc.rlimits)
    if proc.apparmor_profile or proc.selinux_label:
        from .linux import lsm
        lsm.apply_exec_labels(proc)
    if lx.personality:
        procattrs.apply_personality(lx.personality)
    if proc.scheduler:
        procattrs.apply_scheduler(proc.scheduler)
    if proc.io_priority:
        procattrs.apply_io_priority(proc.io_priority)
    if lx.memory_policy:
        procattrs.apply_memory_policy(lx.memory_policy)


def _note(a, level: str):
    """A callback that keeps a line for --log; the lines travel to the parent just before READY (_send_notes)."""
    if level == "debug" and not a.debug:
        return lambda msg: None
    if a.notes is None:
        a.notes = []
    return lambda msg: a.notes.append(f"{level} {msg}")


def _send_notes(a) -> None:
    for line in a.notes or ():
        sync.send(a.sock, sync.LOG, line)
    a.notes = None


def _report_unknown_syscalls(a, seccomp_cfg, loaded: bool) -> None:
    """A filter loaded after READY cannot report what it skipped: with --debug, name the unknown syscalls now."""
    if seccomp_cfg and not loaded and a.debug:
        from .linux import seccomp
        seccomp.report_unknown(seccomp_cfg, _note(a, "debug"))


def _switch_user(a, proc):
    from .linux import user
    user.chown_stdio(proc.user.uid)
    user.switch(proc.user, proc.capabilities, debug=_note(a, "debug"), warn=_note(a, "warning"))
    user.apply_umask(proc.user)


def _chdir(cwd: str):
    try:
        os.chdir(cwd)
    except OSError as e:
        raise sc.SyscallError("chdir", f"process.cwd {cwd}", e.errno) from None
    try:
        os.getcwd()      # the kernel marks a cwd outside our root "(unreachable)"; getcwd() then fails
    except FileNotFoundError:
        from .errors import RuntimeErr
        raise RuntimeErr(f"process.cwd {cwd}: is outside the container's root") from None


def _env(proc) -> dict:
    """process.env; without HOME (or with an empty one), the home of process.user.uid in the container's
    /etc/passwd, "/" when it has none (runc). Read inside the new root, before the user switch."""
    env = {}
    for kv in proc.env:
        k, _, v = kv.partition("=")
        env[k] = v
    if not env.get("HOME"):
        from .linux import user
        env["HOME"] = user.home_of(proc.user.uid)
    return env


def _lookup(proc, env: dict) -> str:
    """Resolve process.args[0] with the container's PATH, inside the new root (runc's exec.LookPath)."""
    name = proc.args[0]
    from .errors import RuntimeErr
    if "/" in name:
        if os.access(name, os.X_OK) and not os.path.isdir(name):
            return name
        # runc's wording: podman and the shim match "no such file or directory" / "permission denied"
        why = "no such file or directory" if not os.path.exists(name) else "permission denied"
        raise RuntimeErr(f'exec: process.args[0] "{name}": stat {name}: {why}')
    path = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    for d in path.split(":"):
        cand = os.path.join(d or ".", name)
        if os.access(cand, os.X_OK) and not os.path.isdir(cand):
            return cand
    raise RuntimeErr(f'exec: process.args[0] "{name}": executable file not found in $PATH')


def _state(a, status: str, pid: int = 0) -> dict:
    """The state document; pid: the runtime's view unless given (runtime.md: hooks that run in the container's
    namespaces see the pid as the container sees it, as runc's do)."""
    from . import SPEC_VERSION
    st = {"ociVersion": SPEC_VERSION, "id": a.cid, "status": status, "pid": pid or a.host_pid or _host_pid(),
          "bundle": a.cfg.bundle}
    if a.cfg.annotations:
        st["annotations"] = a.cfg.annotations
    return st


def _host_pid() -> int:
    # NSpid's first field is the pid in the outermost namespace we can see (the runtime's, before pivot)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return os.getpid()


# -- fds ------------------------------------------------------------------------------------------------------------

def _move_own_fds(a):
    """Our sync socket and console fd go to fds >= _HIGH_FD + N so the preserved range 3..3+N-1 is untouched."""
    base = _HIGH_FD + (a.preserve_fds or 0)
    import fcntl
    for attr in ("console_fd",):
        fd = getattr(a, attr)
        if fd is not None and fd >= 0:
            new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base)
            os.close(fd)
            setattr(a, attr, new)
    s = a.sock
    new = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, base)
    import _socket
    a.sock = _socket.socket(fileno=new)
    s.close()
    _note_hot_path_file()


def _open_with_host_rights(a):
    """Step 2a, before any user namespace: an O_PATH fd on the exec FIFO (a private --root, 0700 as runc's default,
    is out of the reach of a user namespace's root), as runc hands its init fds, and the seccomp agent's
    connection. The bind sources come at 5a: opened here they would name the host's mounts, whose flags the
    container's root could change."""
    # the FIFO's number stays low: its write end is dup2'ed onto it after rlimits (RLIMIT_NOFILE may be small)
    a.fifo_fd = os.open(a.fifo, os.O_PATH | os.O_CLOEXEC)
    # the seccomp agent's socket, a host path: runc's parent connects with the host's rights, so the root of a user
    # namespace need not reach it (as exec's child, before joining)
    sec = a.cfg.linux.seccomp
    if sec and sec.get("listenerPath"):
        from .linux import seccomp
        if seccomp.uses_notify(sec):
            a.listener = seccomp.connect_listener(sec)


def _close_hot_path_file() -> None:
    """The launcher's fd on .venv/ociruntime-hotpath.bin (bench/mkhotpath.py), closed and its finder gone: init and
    exec's child are forked, not exec'd, so close-on-exec alone would keep it open until the container's execve, in
    a process its code can reach: a created container's init waits for `start` with the container's capabilities,
    and a process of the container with CAP_SYS_PTRACE (no user namespace) may open /proc/1/fd/N, for writing too
    (mode 0644, root's): code every later runtime command runs as root. runc's waiting init holds no runtime file.
    No import is possible after pivot_root anyway (preload, step 8). The fd is wherever the launcher's open put it:
    stdin when the caller closed it, where the console's pty may have taken its number since (dup2), so it is
    closed only if it is still the file step 2 saw (_note_hot_path_file). It stays at its number until then: freed,
    that number would go to the exec FIFO's fd (2a), which stdio's fixups must not meet."""
    g = hot_path_globals()
    if g is None:
        return
    sys.meta_path[:] = [f for f in sys.meta_path if getattr(getattr(f, "exec_module", None), "__globals__", None)
                        is not g]
    try:
        st = os.fstat(g["FD"])
        if (st.st_dev, st.st_ino) == g.get("ociruntime_file"):
            os.close(g["FD"])
    except OSError:
        pass


def _note_hot_path_file() -> None:
    """Step 2: which file the hot-path fd is (_close_hot_path_file closes that one, not whatever has its number)."""
    g = hot_path_globals()
    if g is not None:
        try:
            st = os.fstat(g["FD"])
            g["ociruntime_file"] = (st.st_dev, st.st_ino)
        except OSError:
            pass


def _close_foreign_fds(a):
    """Close everything above the preserved range except our own (CLOEXEC) fds: nothing else reaches the container.
    The hot-path file first: it is ours, but must not wait for the execve (_close_hot_path_file)."""
    _close_hot_path_file()
    first = 3 + (a.preserve_fds or 0)
    try:
        keep = sorted(int(n) for n in os.listdir("/proc/self/fd") if int(n) >= first)
    except OSError:                   # no fd left to list them with (a low RLIMIT_NOFILE): closed at exec instead
        sc.cloexec_range(first)
        return
    own = {a.sock.fileno()} | ({a.console_fd} if a.console_fd is not None and a.console_fd >= 0 else set())
    for fd in keep:
        if fd in own:
            continue
        try:
            flags = os.get_inheritable(fd)
        except OSError:
            continue
        if flags:                     # inheritable and not ours: the caller's fd, it must not reach the container
            os.close(fd)
    # The preserved range 3..first-1 is left as it is: what the caller passed is inheritable already (it crossed the
    # exec into this runtime), and any fd of ours that landed in a gap of it is close-on-exec and must stay so.


def _wait_for_start(a, fifo_path_fd: int):
    """Tell the parent we are ready, then block on the exec FIFO until `start` opens it."""
    for s in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2):
        # as PID 1 of a new pid namespace, signals without a handler are ignored: `kill` of a created container
        # must still end it (runc's Go init dies on these too)
        _signal.signal(s, lambda n, _f: os._exit(128 + n))
    _send_notes(a)
    sync.send(a.sock, sync.READY)
    a.sock.close()
    w = os.open(f"/proc/self/fd/{fifo_path_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.dup2(w, fifo_path_fd, inheritable=False)   # the write end takes the O_PATH fd's number (step 24a)
    os.close(w)
    os.write(fifo_path_fd, b"1")
    a.fifo_w = fifo_path_fd


def _restore_signals():
    """Python ignores SIGPIPE and SIGXFSZ and handles SIGINT; the container's process starts with defaults."""
    for s in range(1, _signal.NSIG):
        try:
            if _signal.getsignal(s) not in (_signal.SIG_DFL, None):
                _signal.signal(s, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


# -- exec: a new process in a running container ----------------------------------------------------------------------

# /proc/<pid>/ns names in the order they are joined: user first (it grants the rights to join the others),
# mnt last but one (it changes our root), pid needs a fork to take effect.
_EXEC_NS = ("user", "cgroup", "ipc", "uts", "net", "pid", "time", "mnt")
_EXEC_FLAGS = {"user": sc.CLONE_NEWUSER, "cgroup": sc.CLONE_NEWCGROUP, "ipc": sc.CLONE_NEWIPC,
               "uts": sc.CLONE_NEWUTS, "net": sc.CLONE_NEWNET, "pid": sc.CLONE_NEWPID, "time": sc.CLONE_NEWTIME,
               "mnt": sc.CLONE_NEWNS}


def exec_main(a: ExecArgs) -> None:
    """Entry of the child forked by `ociruntime exec`. Never returns.

      0  oomScoreAdj                     with the host's ids, still dumpable (as create: _early_oom_score_adj)
      1  non-dumpable                    before we are visible inside the container (CVE-2019-5736 class);
                                         command line "ociruntime init" (no host path in /proc/<pid>/cmdline)
      2  import what the sequence needs, move our fds out of the way
      3  join every namespace of init that differs from ours (user first, mnt last: it switches our root)
      4  fork                            pid/time namespaces apply to children; on cgroup v1 the new process moves
                                         itself into the container's cgroups (_fork_final_process); the
                                         intermediate reports and exits
      5  wait for GO (with our host pid) we are in the container's cgroups (moved there by ourselves, born there,
                                         or written there by the parent, as runc does, after the joins)
      6  console, rlimits, attributes, cwd, user + capabilities, noNewPrivileges, close fds
      7  READY with our pid, then seccomp and execve; an exec error goes back over the same socket
    """
    try:
        step = _steps(a, "exec child")
        _early_oom_score_adj(a.process.oom_score_adj)                # 0
        sc.set_dumpable(False)                                       # 1
        _hide_command_line()
        preload(a.cfg, for_exec=True)                                # 2
        _move_own_fds(a)
        step("1-2 non-dumpable, modules imported, fds moved")
        a.exe = _prepare_exec(a, a.process, a.cfg.linux, a.sock.fileno())   # before joining: the host's
        seccomp_cfg = a.cfg.linux.seccomp                                  # vm.memfd_noexec applies
        if seccomp_cfg and seccomp_cfg.get("listenerPath"):           # a host path: connect before joining mnt
            from .linux import seccomp
            if seccomp.uses_notify(seccomp_cfg):
                a.listener = seccomp.connect_listener(seccomp_cfg)
        step("sealed exec program")
        _join_container_namespaces(a.init_pid)                       # 3
        step("3 namespaces joined")
        if a.in_pidns:               # 4: the parent forked us into the pid namespace: no second fork
            sync.send(a.sock, sync.PID, pid_report(a, None))
            step.done("4 (in the pid namespace from birth)")
        else:
            _fork_final_process(a)                                   # 4
            step.forked()
            step.done("4 forked")
        step = _steps(a, "exec process")
        _, payload = sync.expect(a.sock, sync.GO)                    # 5: with our host pid (/proc is theirs)
        a.host_pid = int(payload)
        step("5 in the cgroups (GO)")
        _exec_stage2(a, step)
    except BaseException as e:  # noqa: BLE001
        _fail(a, e)


def _fork_final_process(a: ExecArgs) -> None:
    """Step 4 with an intermediate (this process): fork the process the container's program will be, report its
    host pid, exit. Given the container's v1 `tasks` fds (launch._Fork, defer), the new process places itself with
    them (initargs.place_self) and says over a pipe whether it could: PID carries that, so the parent writes no
    cgroup.procs. It is moved there, not forked there: a pids limit reached does not stop an exec (as with runc)."""
    fds = a.tasks_fds or []
    r = w = -1
    if fds:
        r, w = os.pipe()
    pid = os.fork()
    if pid:
        placed = False
        if fds:
            os.close(w)
            for fd in fds:
                os.close(fd)
            placed = os.read(r, 1) == b"1"
        a.self_placed = a.self_placed and placed
        sync.send(a.sock, sync.PID, pid_report(a, pid))
        os._exit(0)
    if fds:
        os.close(r)
        ok = place_self(fds)
        for fd in fds:
            os.close(fd)
        os.write(w, b"1" if ok else b"0")
        os.close(w)
    a.tasks_fds = None


def _join_container_namespaces(init_pid: int):
    fds = []
    try:
        for name in _EXEC_NS:
            theirs = f"/proc/{init_pid}/ns/{name}"
            try:
                if os.readlink(theirs) == os.readlink(f"/proc/self/ns/{name}"):
                    continue
                fds.append((name, os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)))
            except FileNotFoundError:
                continue  # a namespace type this kernel lacks
        if not any(name == "mnt" for name, _ in fds):
            # no mount namespace of its own: init is chroot'ed in ours (init.py step 16), so is the new process
            fds.append(("root", os.open(f"/proc/{init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)))
        for name, fd in fds:
            if name == "root":
                os.fchdir(fd)
                os.chroot(".")
                continue
            sc.setns(fd, _EXEC_FLAGS[name], f"{name} namespace of pid {init_pid}")
    finally:
        for _, fd in fds:
            os.close(fd)


def _exec_stage2(a: ExecArgs, step):
    proc = a.process
    lx = a.cfg.linux
    if proc.terminal:
        from .linux import console
        master, slave = console.open_pty(proc.console_size, clear_onlcr=bool(a.console_ours))
        console.send_master(a.console_fd, master)
        os.close(master)
        os.close(a.console_fd)
        console.become_session_leader_on(slave)
    else:
        os.setsid()
    _process_attributes(proc, _ExecLinux(lx.personality))
    if proc.exec_cpu_affinity:       # "final": we are in the container's cgroups now ("initial" was set by the parent)
        from .linux import procattrs
        procattrs.apply_cpu_affinity(proc.exec_cpu_affinity, "final")
    _close_foreign_fds(a)
    _chdir(proc.cwd)
    early_seccomp = bool(lx.seccomp) and not proc.no_new_privileges
    if early_seccomp:
        _load_seccomp(a, lx.seccomp, a.listener)
    _report_unknown_syscalls(a, lx.seccomp, early_seccomp)
    env = _env(proc)
    _switch_user(a, proc)
    if proc.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    argv0 = _lookup(proc, env)
    step.done("6 attributes, fds, cwd, user, capabilities; READY")
    _send_notes(a)
    sync.send(a.sock, sync.READY, str(a.host_pid))
    if lx.seccomp and not early_seccomp:
        _load_seccomp(a, lx.seccomp, a.listener)
    _restore_signals()
    try:
        _exec_program(a.exe, a.sock.fileno(), argv0, proc, env)
    except OSError as e:
        sync.send(a.sock, sync.ERR, f"exec {proc.args[0]}: {e.strerror}")
        os._exit(127)


class _ExecLinux:
    """What exec applies of linux.*: the personality, which runc 1.2+ sets for exec'd processes too (it is not
    inherited through setns); the memory policy was applied to init only."""
    memory_policy = None

    def __init__(self, personality):
        self.personality = personality
