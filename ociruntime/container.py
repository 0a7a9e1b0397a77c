"""The lifecycle state machine (runtime.md "Lifecycle" and "Operations"): which operation is allowed in which
status, and what it does. `create` is launch.py; the rest is here so `run` and the CLI share it."""
from . import fastos as os

import _signal  # the C module: `import signal` costs ~4 ms (enum) on every kill/start/delete

from .errors import RuntimeErr, StateError
from .errors import fault
from .state import ContainerState

SIGKILL, SIGTERM = _signal.SIGKILL, _signal.SIGTERM


def signal_names() -> dict:
    """{"KILL": 9, ..., "RTMIN+3": 37, ...}: built when `kill` parses a name, not by every start/delete/state that
    imports this module (~0.09 ms)."""
    names = {name[3:]: getattr(_signal, name) for name in dir(_signal)
             if name.startswith("SIG") and not name.startswith("SIG_") and name not in ("SIGRTMIN", "SIGRTMAX")}
    for i in range(0, _signal.SIGRTMAX - _signal.SIGRTMIN + 1):
        names[f"RTMIN+{i}"] = _signal.SIGRTMIN + i
        names[f"RTMAX-{i}"] = _signal.SIGRTMAX - i
    names["RTMIN"], names["RTMAX"] = _signal.SIGRTMIN, _signal.SIGRTMAX
    return names


def parse_signal(s: str) -> int:
    """`9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3`; `0` checks that the process exists (kill(2), runc)."""
    if s.isdigit():
        n = int(s)
        if 0 <= n < _signal.NSIG:
            return n
    else:
        name = s.upper()
        name = name[3:] if name.startswith("SIG") else name
        names = signal_names()
        if name in names:
            return names[name]
    raise StateError(f"unknown signal {s!r}")


def start(st: ContainerState, log) -> None:
    """runtime.md start: only a `created` container; returns once the user process is exec'd."""
    step = log.steps("start")
    status = st.status()
    if status != "created":
        if status == "stopped":
            raise StateError("cannot start a container that has stopped")
        raise StateError(f"cannot start an already {status} container" if status != "creating"
                         else "cannot start a container that is still being created")
    try:
        fd = os.open(st.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StateError("cannot start an already running container") from None
    step(f"status {status}, exec FIFO opened")
    fault("start:fifo-opened")
    try:
        data = _read_fifo(fd, st, os.fstat(fd))
        fault("start:init-released")
    finally:
        os.close(fd)
        try:
            os.unlink(st.fifo)
        except FileNotFoundError:
            pass
    step("init has exec'd the container's program (FIFO read to EOF)")
    fault("start:fifo-removed")
    if data[:1] != b"1" or len(data) > 1:
        msg = data[1:].decode(errors="replace") if data[:1] == b"1" else ""
        if data[1:2] == b"\0":      # the sealed exec program's report of a failed execve (linux/dmz.py)
            from .linux import dmz
            msg = dmz.failure_message(data[1:]) or "exec failed"
        raise RuntimeErr(msg or "container init exited before exec (see the container's stderr)")
    if st.facts.get("hooks", {}).get("poststart"):
        from .linux import hooks
        state = hooks.state_doc(st.id, "running", st.pid, st.facts["bundle"], st.facts.get("annotations"))
        try:
            hooks.run_all("poststart", hooks.hooks_from_raw(st.facts["hooks"], "poststart"), state)
        except BaseException:
            # runtime.md step 9: a failing poststart hook MUST stop the container (runc 1.2: terminate init);
            # the caller then continues at step 12 (cli start and run delete it: destroy, poststop hooks)
            _stop(st)
            raise
        step("poststart hooks")
    step.done()


def _read_fifo(fd: int, st: ContainerState, fifo) -> bytes:
    """Init writes '1' once it sees us, then execve closes its end (CLOEXEC): EOF means exec'd. Anything after '1'
    is an exec error. Init opens its end (blocking, until we open ours) just after READY; a read that finds no
    writer yet (EOF before any data) retries while init lives, so a dead init cannot hang us. No poll(): the
    select module's dlopen would cost ~1 ms of every start."""
    import time
    data, delay = b"", 0.001
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:      # init holds its end open and has not written yet: wait for it
            os.set_blocking(fd, True)
            continue
        if chunk:
            data += chunk
            os.set_blocking(fd, True)   # from now on EOF means exec'd (or init died)
            continue
        if data or not st.alive():
            return data
        if not _holds(st.pid, fifo):
            # init may have opened its end, written '1' and exec'd since our read (a loaded machine): its '1'
            # waits in the pipe. Nothing there: a FIFO left by a `start` that died after init saw it (the pipe's
            # buffer went with the last open end), init has exec'd the container's program
            try:
                late = os.read(fd, 4096)
            except BlockingIOError:  # a writer again: the loop's read waits for it
                continue
            if late:
                data += late
                os.set_blocking(fd, True)
                continue
            raise StateError("cannot start an already running container")
        time.sleep(delay)            # between READY and init's open of its end
        delay = min(delay * 2, 0.05)


def _holds(pid: int, fifo) -> bool:
    """init (not exec'd yet) holds the exec FIFO open, by path or write end, until its execve closes it. True
    also when we cannot tell (no access to its fds): then `start` keeps waiting, as it would have."""
    d = f"/proc/{pid}/fd"
    try:
        names = os.listdir(d)
    except PermissionError:
        return True
    except OSError:
        return False                 # gone: the caller's alive() check decides
    for n in names:
        try:
            s = os.stat(f"{d}/{n}")
        except OSError:
            continue
        if (s.st_dev, s.st_ino) == (fifo.st_dev, fifo.st_ino):
            return True
    return False


def kill(st: ContainerState, sig: int, all_procs: bool = False) -> None:
    status = st.status()
    if all_procs and st.facts.get("cgroup"):
        from .linux import cgroups
        cgroups.manager_from_state(st.facts["cgroup"]).kill_all(sig)   # thaws a frozen cgroup for SIGKILL
        return
    if status not in ("created", "running", "paused"):
        if all_procs:
            return  # runc: kill --all of a stopped container is not an error
        raise StateError("container not running")
    try:
        pidfd = os.pidfd_open(st.pid)
    except OSError:
        raise StateError("container not running") from None
    try:
        if not st.alive():                     # pid reuse guard: the pidfd now pins the process we checked
            raise StateError("container not running")
        _signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise StateError("no such process") from None
    finally:
        os.close(pidfd)
    if status == "paused" and sig == SIGKILL:
        # a frozen process acts on no signal until thawed (cgroup v1 freezer), so runc thaws a paused container
        # it SIGKILLs; other signals wait for `resume`, as runc's
        from .linux import cgroups
        cgroups.manager_from_state(st.facts["cgroup"]).thaw()


def delete(st: ContainerState, log, force: bool = False) -> None:
    """runtime.md delete: a stopped (or never started) container; with force, kill it first."""
    step = log.steps("delete")
    status = st.status()
    step(f"status {status}")
    # A created (never started) container is deleted, its init killed, as runc 1.1.5 does, although runtime.md
    # says delete of a container that is not stopped MUST fail: containerd's runc shim deletes a task that was
    # created and never started with a plain `delete` (no --force; a failed start, a cancelled pod), and would leak
    # it otherwise. The runtime-tools delete test expects the error (conformance/README.md).
    if status in ("running", "paused") and not force:
        raise StateError(f"cannot delete container {st.id} that is not stopped: {status}")
    if status == "creating" and not force:
        raise StateError(f"cannot delete container {st.id} that is being created")
    cg = st.facts.get("cgroup")
    mgr = None
    dirs = _plain_cgroup_dirs(cg) if status == "stopped" and cg else None
    if cg and dirs is None:
        from .linux import cgroups
        mgr = cgroups.manager_from_state(cg)
    if status in ("created", "running", "paused"):
        if mgr is not None:
            mgr.kill_all(SIGKILL)
        _kill_init(st)
    elif status == "creating" and mgr is not None:
        _kill_placed(mgr)       # a create that died: its child may be in some of the cgroups, not all
    elif mgr is not None and mgr.pids():
        mgr.kill_all(SIGKILL)   # init is gone but, without a pid namespace, its children may not be
    step("processes killed")
    fault("delete:killed")
    if dirs is not None and not _rmdir_empty(dirs):
        # a directory that did not go (a process left behind, a sub-cgroup): the driver's way, as above
        from .linux import cgroups
        mgr = cgroups.manager_from_state(cg)
        if mgr.pids():
            mgr.kill_all(SIGKILL)
    if mgr is not None:
        mgr.destroy()
    if cg:
        step("cgroups removed")
        fault("delete:cgroups-removed")
    if st.facts.get("intelRdt"):        # the MON group, and the resctrl group if it is ours
        from .linux import intelrdt
        intelrdt.destroy(st.facts["intelRdt"], rollback=status == "creating")   # creating: plan()'s facts
    if st.facts.get("hostMount"):       # no mount namespace: the container's mounts are in ours (launch.py)
        from .linux import rootfs
        rootfs.detach_host_mount(*st.facts["hostMount"])
    elif st.facts.get("hostMountBefore"):   # a create that died: what its init stacked on the rootfs (launch.py)
        from .linux import rootfs
        rootfs.detach_above(*st.facts["hostMountBefore"])
    hooks_raw = st.facts.get("hooks") or {}
    st.remove()
    step("state removed")
    if hooks_raw.get("poststop"):
        from .linux import hooks
        state = hooks.state_doc(st.id, "stopped", 0, st.facts.get("bundle", ""), st.facts.get("annotations"))
        hooks.poststop_all(hooks.hooks_from_raw(hooks_raw, "poststop"), state, log)
        step("poststop hooks")
    step.done()


def _plain_cgroup_dirs(cg: dict) -> list[str] | None:
    """The directories of a cgroupfs (v1 or v2) container cgroup, in the order the driver removes them; None for
    the systemd driver (its unit is stopped over D-Bus) or a state this does not know."""
    if cg.get("systemd"):
        return None
    if cg.get("version") == "v2":
        return [cg["path"]]
    if cg.get("version") == "v1":
        dirs = []
        for h in cg["hierarchies"]:
            if h["dir"] not in dirs:
                dirs.append(h["dir"])
        return dirs
    return None


def _rmdir_empty(dirs: list[str]) -> bool:
    """A stopped container's cgroups in the usual case, every directory empty: one rmdir each, without loading the
    cgroup drivers (~0.6 ms of imports per delete). rmdir succeeds only on a cgroup with no process and no
    sub-cgroup, where the driver would have found nothing to kill either. False at the first that does not go."""
    for d in dirs:
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError:
            return False
    return True


def _stop(st: ContainerState) -> None:
    """SIGKILL every process of the container and wait for init to be gone: `state` says stopped after this."""
    if st.facts.get("cgroup"):
        from .linux import cgroups
        try:
            cgroups.manager_from_state(st.facts["cgroup"]).kill_all(SIGKILL)
        except (OSError, RuntimeErr):
            pass
    _kill_init(st)


def _kill_placed(mgr) -> None:
    """SIGKILL whatever is in any directory of the container's cgroups (a create killed mid-placement leaves its
    child in some hierarchies only); the rmdir that follows waits for them to go."""
    from .linux.cgroups.common import walk_procs
    for d in set(mgr.paths.values()):
        for pid in walk_procs(d):
            try:
                os.kill(pid, SIGKILL)
            except ProcessLookupError:
                pass


def _kill_init(st: ContainerState):
    """SIGKILL init (pinned by a pidfd against pid reuse) and wait until it is gone."""
    from .launch import wait_gone
    if st.alive():
        try:
            kill(st, SIGKILL)
        except StateError:
            pass
        wait_gone(st.pid, 5.0)
