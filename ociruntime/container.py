"""The lifecycle state machine (runtime.md "Lifecycle" and "Operations"): which operation is allowed in which
status, and what it does. `create` is launch.py; the rest is here so `run` and the CLI share it."""
import os
import select
import signal

from .errors import RuntimeErr, StateError
from .state import ContainerState

SIGNALS = {name[3:]: int(getattr(signal, name)) for name in dir(signal)
           if name.startswith("SIG") and not name.startswith("SIG_") and name not in ("SIGRTMIN", "SIGRTMAX")}
for _i in range(0, int(signal.SIGRTMAX) - int(signal.SIGRTMIN) + 1):
    SIGNALS[f"RTMIN+{_i}"] = int(signal.SIGRTMIN) + _i
    SIGNALS[f"RTMAX-{_i}"] = int(signal.SIGRTMAX) - _i
SIGNALS["RTMIN"], SIGNALS["RTMAX"] = int(signal.SIGRTMIN), int(signal.SIGRTMAX)


def parse_signal(s: str) -> int:
    """`9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3`."""
    if s.isdigit():
        n = int(s)
        if 0 < n < signal.NSIG:
            return n
    else:
        name = s.upper()
        name = name[3:] if name.startswith("SIG") else name
        if name in SIGNALS:
            return SIGNALS[name]
    raise StateError(f"unknown signal {s!r}")


def start(st: ContainerState, log) -> None:
    """runtime.md start: only a `created` container; returns once the user process is exec'd."""
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
    try:
        data = _read_fifo(fd, st)
    finally:
        os.close(fd)
        try:
            os.unlink(st.fifo)
        except FileNotFoundError:
            pass
    if data[:1] != b"1" or len(data) > 1:
        msg = data[1:].decode(errors="replace") if data[:1] == b"1" else ""
        raise RuntimeErr(msg or "container init exited before exec (see the container's stderr)")
    if st.facts.get("hooks", {}).get("poststart"):
        from .linux import hooks
        state = hooks.state_doc(st.id, "running", st.pid, st.facts["bundle"], st.facts.get("annotations"),
                                st.facts.get("ociVersion", "1.3.0"))
        hooks.run_all("poststart", hooks.hooks_from_raw(st.facts["hooks"], "poststart"), state)


def _read_fifo(fd: int, st: ContainerState) -> bytes:
    """Init writes '1' once it sees us, then execve closes its end (CLOEXEC): EOF means exec'd. Anything after '1'
    is an exec error. Poll, so a dead init cannot hang us."""
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP)
    data = b""
    while True:
        if not p.poll(100):
            if not st.alive():
                return data
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return data
        data += chunk


def kill(st: ContainerState, sig: int, all_procs: bool = False) -> None:
    status = st.status()
    if all_procs and st.facts.get("cgroup"):
        from .linux import cgroups
        mgr = cgroups.manager_from_state(st.facts["cgroup"])
        for pid in mgr.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if status in ("paused",) and sig == signal.SIGKILL:
            mgr.thaw()
        return
    if status not in ("created", "running", "paused"):
        if all_procs:
            return  # runc: kill --all of a stopped container is not an error
        raise StateError("container not running")
    from .linux import syscalls
    try:
        pidfd = syscalls.pidfd_open(st.pid)
    except OSError:
        raise StateError("container not running") from None
    try:
        if not st.alive():                     # pid reuse guard: the pidfd now pins the process we checked
            raise StateError("container not running")
        syscalls.pidfd_send_signal(pidfd, sig)
    except OSError as e:
        if getattr(e, "err", e.errno) == 3:
            raise StateError("no such process") from None
        raise
    finally:
        os.close(pidfd)


def delete(st: ContainerState, log, force: bool = False) -> None:
    """runtime.md delete: a stopped (or never started) container; with force, kill it first."""
    status = st.status()
    if status in ("running", "paused") and not force:
        raise StateError(f"cannot delete container {st.id} that is not stopped: {status}")
    if status == "creating" and not force:
        raise StateError(f"cannot delete container {st.id} that is being created")
    if status in ("created", "running", "paused"):
        _kill_all(st)
    cg = st.facts.get("cgroup")
    if cg:
        from .linux import cgroups
        mgr = cgroups.manager_from_state(cg)
        _kill_cgroup(mgr)
        mgr.destroy()
    hooks_raw = st.facts.get("hooks") or {}
    st.remove()
    if hooks_raw.get("poststop"):
        from .linux import hooks
        state = hooks.state_doc(st.id, "stopped", 0, st.facts.get("bundle", ""), st.facts.get("annotations"),
                                st.facts.get("ociVersion", "1.3.0"))
        hooks.poststop_all(hooks.hooks_from_raw(hooks_raw, "poststop"), state, log)


def _kill_all(st: ContainerState):
    from .launch import wait_gone
    if st.alive():
        try:
            kill(st, signal.SIGKILL)
        except StateError:
            pass
        wait_gone(st.pid, 5.0)


def _kill_cgroup(mgr):
    try:
        pids = mgr.pids()
    except OSError:
        return
    if not pids:
        return
    try:
        if mgr.is_frozen():
            mgr.thaw()
    except OSError:
        pass
    from .launch import wait_gone
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        wait_gone(pid, 2.0)
