"""The runc CVE classes, attacked from inside real busybox containers. Every test is an attack that must fail.

CVE-2019-5736: the runtime is the host's Python interpreter. While `exec` joins a container, or while `create`
builds a container that joins another one's PID namespace, the runtime is a process the container can see. An
attacker that opens its /proc/<pid>/exe (or its fds, environ, mem, cwd, root) holds host files; with the exe it
waits until the binary is no longer running and reopens it for writing through /proc/self/fd: the next runtime
call runs the attacker's code as host root. The runtime must stay non-dumpable for as long as it is visible.
And the container must never get the runtime's binary to run as one of *its* processes (a script whose
interpreter is /proc/self/exe, the original exploit).

The attacker is a busybox ash loop, the container's init; it logs what it SAW and every open that WORKED.
Opens for writing use `>>` and write nothing, so even a successful attack changes no byte on the host.

CVE-2024-21626: process.cwd given as /proc/self/fd/N (or another /proc link) must not give the container a
working directory on the host: create/exec fails with an error naming the cwd, or the cwd is inside the root.
"""
import hashlib
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import EXE, SECCOMP_ARCH, Bundle, reap, without_mount_ns

# /proc/<pid>/stat's comm of every runtime process that enters a container (runc's init names itself, nsexec.c)
RUNTIME_COMM = "(runc:[2:INIT])" if os.path.basename(EXE) == "runc" else "(%s)" % os.path.basename(EXE)[:15]
# the binary every runtime call starts: the interpreter of the launcher script, or the runtime itself (runc)
INTERPRETER = os.path.realpath(os.path.join(os.path.dirname(EXE), "python3"))
if not os.path.exists(INTERPRETER):
    INTERPRETER = os.path.realpath(EXE)

# For every live process whose exe is not busybox: log SEEN once per (pid, comm), then on every pass try each way
# in (TRIED once the first try is over). A working open logs an OPEN line with the process's comm read *after*
# the open: still the runtime's comm means the open happened while it was the runtime (exec is one way). An exe
# handle is reopened for writing through our own fd, as the exploit does, and the result logged ("Text file
# busy" only because the binary still runs somewhere; the runtime's own `exec` parent, for one).
# Redirections on `{ }` groups: a failed open skips the group instead of ending the shell.
ATTACKER = r"""
exec 9>>/attack.log
found() {
  st=; { read -r st <$2/stat; } 2>/dev/null
  set -- "$1" "$2" "$3" $st
  echo "OPEN $1 $2 now=$5 $3" >&9
}
attack() {
  d=$1
  { found exe-read $d "-> $(readlink /proc/self/fd/3) reopen-for-write: $({ echo ok; } 2>&1 4>>/proc/self/fd/3)"
  } 2>/dev/null 3<$d/exe
  { found exe-write $d; } 2>/dev/null 3>>$d/exe
  { found environ $d; } 2>/dev/null 3<$d/environ
  { found mem $d; } 2>/dev/null 3<$d/mem
  { found cwd $d "$(ls -a $d/cwd/ | tr '\n' ' ')"; } 2>/dev/null 3<$d/cwd
  { found root $d; } 2>/dev/null 3<$d/root
  for f in $d/fd/* $d/task/*/exe; do
    [ -e "$f" ] || continue
    found fd-follow $d "$f -> $(readlink $f)"
    if [ -f "$f" ]; then { found fd-write $d $f; } 2>/dev/null 3>>$f; fi
  done
}
seen=" "
echo READY >&9
while [ ! -e /stop ]; do
  for d in /proc/[1-9]*; do
    [ $d = /proc/1 ] && continue
    { read -r st <$d/stat; } 2>/dev/null || continue
    set -- $st
    [ "$3" = Z ] && continue
    [ $d/exe -ef /bin/busybox ] && continue
    case $seen in
      *" $d$2 "*) attack $d ;;
      *) seen="$seen$d$2 "; echo "SEEN $d $2" >&9; attack $d; echo "TRIED $d $2" >&9 ;;
    esac
  done
done
echo DONE >&9
"""


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def host_binaries():
    """What an exe attack overwrites: the interpreter every runtime call starts, and the launcher script."""
    return {p: _digest(p) for p in (INTERPRETER, os.path.realpath(EXE))}


class Attacker:
    """The attack loop as init of container `cid`; its log is in the bundle's rootfs, read from the host."""

    def __init__(self, runtime, bundle, cid):
        self.bundle = bundle
        self.log_path = os.path.join(bundle.rootfs, "attack.log")
        runtime("run", "-d", "--bundle", bundle.set_args("sh", "-c", ATTACKER).write(), cid)
        self.wait_for(lambda: "READY" in self.lines(), "the attacker never started")
        self.pid = runtime.state(cid)["pid"]

    def lines(self):
        try:
            with open(self.log_path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def seen(self, comm=RUNTIME_COMM, what="SEEN"):
        return [ln for ln in self.lines() if ln.startswith(what + " ") and ln.endswith(" " + comm)]

    @staticmethod
    def wait_for(cond, why, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, why
            time.sleep(0.02)

    def stop(self):
        """End the loop; every line it logged."""
        open(os.path.join(self.bundle.rootfs, "stop"), "w").close()
        self.wait_for(lambda: "DONE" in self.lines(), "the attacker did not stop")
        return self.lines()


def exe_handles(lines):
    """Opened exes that are host files an attacker could write once no process runs them. Not counted: busybox
    (the container's own), a memfd (a sealed copy exists nowhere on the host), a reopen refused for another reason
    than "busy" (an interpreter on a read-only mount, say)."""
    out = []
    for ln in lines:
        if ln.startswith("OPEN exe-read "):
            target, _, reopen = ln.partition("-> ")[2].partition(" reopen-for-write: ")
            if target != "/bin/busybox" and not target.startswith("/memfd:") and \
                    (reopen == "ok" or reopen.endswith("Text file busy")):
                out.append(ln)
    return out


def runtime_findings(lines):
    """Every open that reached a runtime process, and every exe handle on a host file."""
    hits = [ln for ln in lines if ln.startswith("OPEN ") and f" now={RUNTIME_COMM} " in ln + " "]
    return list(dict.fromkeys(hits + exe_handles(lines)))


def report(findings, limit=25):
    return "\n".join(findings[:limit]) + (f"\n... {len(findings) - limit} more" if len(findings) > limit else "")


def grant_sys_ptrace(bundle):
    """Give the container CAP_SYS_PTRACE in every set, or skip where the runtime itself lacks it (it cannot grant it)."""
    with open("/proc/self/status") as f:
        eff = int(next(ln.split()[1] for ln in f if ln.startswith("CapEff:")), 16)
    if not eff >> 19 & 1:                                   # CAP_SYS_PTRACE = 19
        pytest.skip("this test process lacks CAP_SYS_PTRACE: the container cannot be given it")
    for caps in bundle.config["process"]["capabilities"].values():
        if "CAP_SYS_PTRACE" not in caps:
            caps.append("CAP_SYS_PTRACE")


# -- CVE-2019-5736 class ---------------------------------------------------------------------------------------

EXEC_ROUNDS, EXECS_PER_ROUND = 4, 12


def test_runtime_seen_inside_during_exec_cannot_be_opened_through_proc(runtime, bundle, cid):
    before = host_binaries()
    attacker = Attacker(runtime, bundle, cid)
    for _ in range(EXEC_ROUNDS):
        for _ in range(EXECS_PER_ROUND):
            runtime("exec", cid, "true")
        if attacker.seen():
            break
    lines = attacker.stop()
    found = runtime_findings(lines)
    assert not found, "phase exec: the runtime (pids in the container's view) was opened from inside:\n" + report(found)
    assert attacker.seen(), (f"race window never observed: in {EXEC_ROUNDS * EXECS_PER_ROUND} execs the attacker never "
                             f"saw a {RUNTIME_COMM} process inside, so this run proves nothing; log: {lines[:20]}")
    assert host_binaries() == before


@pytest.mark.parametrize("mount_ns", [True, False], ids=["", "no-mount-namespace"])
def test_runtime_seen_inside_during_exec_has_no_host_cwd_or_root_for_a_ptrace_capable_process(runtime, bundle, cid,
                                                                                              mount_ns):
    # CAP_SYS_PTRACE (no user namespace) passes the ptrace check on the non-dumpable runtime, so its environ, mem and
    # fds open (for runc's init too); what must not be there is a host directory: every process of the runtime the
    # container can see must already have the container's root and cwd (the attacker lists its cwd). exec's child was
    # born in the container's pid namespace before it joined the mount namespace: for a few ms its cwd was the host
    # directory the runtime was started in (launch._exec_pidns). Without a mount namespace the container is
    # chroot'ed in ours: a host cwd there would be a way out of the chroot (the sealed path's intermediate chroots
    # before it forks the process the container sees).
    grant_sys_ptrace(bundle)
    if not mount_ns:
        without_mount_ns(bundle)
    attacker = Attacker(runtime, bundle, cid)
    inside = set(os.listdir(bundle.rootfs)) | {".", "..", "stop"}
    for _ in range(EXEC_ROUNDS):
        for _ in range(EXECS_PER_ROUND):
            runtime("exec", cid, "true")
    lines = attacker.stop()
    cwds = [ln for ln in lines if ln.startswith("OPEN cwd ")]
    host = [ln for ln in cwds if not set(ln.split()[4:]) <= inside]      # OPEN cwd /proc/N now=(comm) names...
    assert not host, "a runtime process inside the container had a host cwd:\n" + report(host)
    assert any(f" now={RUNTIME_COMM} " in ln for ln in cwds), \
        f"no runtime process's cwd was ever opened: this run proves nothing; log: {lines[:20]}"


def _writable_host_exe(pid, skip=()):
    """None if /proc/PID/exe is no file a holder could ever write (a sealed memfd, as runc's; or a file on a
    read-only mount, as ociruntime's sealed interpreter: a reopen for writing fails with EROFS once nothing runs it,
    "Text file busy" until then) or is one of the files `skip` ((st_dev, st_ino) pairs); else its target. One handle for all three
    looks: the process may execve meanwhile."""
    fd = os.open(f"/proc/{pid}/exe", os.O_PATH | os.O_CLOEXEC)
    try:
        target, st = os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd)
        if target.startswith("/memfd:") or os.fstatvfs(fd).f_flag & os.ST_RDONLY or (st.st_dev, st.st_ino) in skip:
            return None
        return target
    finally:
        os.close(fd)


def test_a_created_containers_init_gives_a_ptrace_capable_process_no_writable_host_exe(runtime, bundle, cid):
    # until `start` init is the runtime (the host's Python interpreter for ociruntime), and CAP_SYS_PTRACE without a
    # user namespace passes the ptrace check on it: /proc/1/exe opens, and the handle reopens for writing once no
    # Python runs (CVE-2019-5736). Such a container's init runs a read-only copy of the interpreter (sealexe.py).
    grant_sys_ptrace(bundle)
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    pid = runtime.state(cid)["pid"]
    assert _writable_host_exe(pid) is None, f"init's exe is the host's writable {_writable_host_exe(pid)}"
    inside = runtime("exec", cid, "sh", "-c", "exec 3</proc/1/exe && readlink /proc/self/fd/3").stdout.strip()
    assert inside and inside != INTERPRETER, f"the container opened init's exe as the host file {inside}"
    runtime("start", cid)


def _writable_runtime_exes_during_execs(runtime, cid, busyboxes):
    """Exec `true` into `cid` many times while a poller on the host looks at every process of its init's pid
    namespace: (runtime processes seen there, those whose exe was a host file a holder could write). The poller is on
    the host, not in the container, so no "busy" reopen result can hide a writable file."""
    init = runtime.state(cid)["pid"]
    pidns = os.readlink(f"/proc/{init}/ns/pid")
    seen, writable, done = set(), [], []

    def poll():
        while not done:
            for e in os.scandir("/proc"):
                if not e.name.isdigit() or int(e.name) == init:
                    continue
                try:
                    if os.readlink(f"/proc/{e.name}/ns/pid") != pidns:
                        continue
                    with open(f"/proc/{e.name}/comm") as f:
                        comm = f.read().strip()
                    target = _writable_host_exe(e.name, skip=busyboxes)   # the containers' own program
                    if RUNTIME_COMM == f"({comm})":
                        seen.add(e.name)
                except OSError:          # gone meanwhile
                    continue
                if target is not None:
                    writable.append(f"{e.name} ({comm}) -> {target}")
    import threading
    t = threading.Thread(target=poll)
    t.start()
    try:
        for _ in range(EXEC_ROUNDS * EXECS_PER_ROUND):
            runtime("exec", cid, "true")
            if seen and _ >= EXECS_PER_ROUND:
                break
    finally:
        done.append(1)
        t.join()
    return seen, writable


def _busyboxes(*bundles):
    return {(st.st_dev, st.st_ino) for st in (os.stat(os.path.join(b.rootfs, "bin", "busybox")) for b in bundles)}


def test_every_runtime_process_a_ptrace_capable_container_sees_during_exec_has_no_writable_host_exe(runtime, bundle,
                                                                                                   cid):
    # exec's process is the runtime until its execve, visible in the container's pid namespace: every one the host
    # sees there must run a sealed or read-only interpreter
    grant_sys_ptrace(bundle)
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "30").write(), cid)
    seen, writable = _writable_runtime_exes_during_execs(runtime, cid, _busyboxes(bundle))
    assert not writable, "runtime processes in the container's pid namespace ran a writable host binary:\n" + \
        "\n".join(writable[:10])
    assert seen, "no runtime process was ever seen in the container's pid namespace: this run proves nothing"


def _joining_pid_namespace_of(first_cid, runtime, path, ptrace):
    """A bundle whose container joins the pid namespace of `first_cid`'s init by path (a pod sharing its pid
    namespace, a debug container); with CAP_SYS_PTRACE if `ptrace`."""
    b = Bundle(path)
    b.config["linux"]["namespaces"] = [{"type": "pid", "path": f"/proc/{runtime.state(first_cid)['pid']}/ns/pid"},
                                       {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]
    if ptrace:
        grant_sys_ptrace(b)
    return b


def test_a_container_joining_the_pid_namespace_of_a_ptrace_capable_one_gives_it_no_writable_host_exe(
        runtime, bundle, make_id, tmp_path):
    # b has no CAP_SYS_PTRACE, but a, whose pid namespace it joins, has: b's created init (the runtime until
    # `start`) is a process of a's pid namespace that a's processes can open /proc/<pid>/exe of
    a, b = make_id(), make_id()
    grant_sys_ptrace(bundle)
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "30").write(), a)
    second = _joining_pid_namespace_of(a, runtime, tmp_path / "second", ptrace=False)
    runtime("create", "--bundle", second.set_args("true").write(), b)
    try:
        pid = runtime.state(b)["pid"]
        assert _writable_host_exe(pid) is None, f"b's init's exe is the host's writable {_writable_host_exe(pid)}"
    finally:
        runtime("delete", "--force", b)
        reap()


def test_exec_into_a_container_whose_pid_namespace_a_ptrace_capable_one_joined_shows_no_writable_host_exe(
        runtime, bundle, make_id, tmp_path):
    # a has no CAP_SYS_PTRACE; b joined a's pid namespace with it (kubectl debug's ephemeral container, a pod with
    # shareProcessNamespace): exec's process in a is visible to b's processes, which pass the ptrace check on it
    a, b = make_id(), make_id()
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "30").write(), a)
    second = _joining_pid_namespace_of(a, runtime, tmp_path / "second", ptrace=True)
    runtime("run", "-d", "--bundle", second.set_args("sleep", "30").write(), b)
    try:
        seen, writable = _writable_runtime_exes_during_execs(runtime, a, _busyboxes(bundle, second))
    finally:
        runtime("delete", "--force", b)
        reap()
    assert not writable, "runtime processes in a's pid namespace, which b shares, ran a writable host binary:\n" + \
        "\n".join(writable[:10])
    assert seen, "no runtime process was ever seen in a's pid namespace: this run proves nothing"


def test_init_of_a_container_joining_a_pid_namespace_cannot_be_opened_through_proc(runtime, bundle, make_id,
                                                                                   tmp_path):
    # b joins a's PID namespace by path: from its fork until `start`, b's init (the runtime) is a process of a's
    before = host_binaries()
    a, b = make_id(), make_id()
    attacker = Attacker(runtime, bundle, a)
    second = Bundle(tmp_path / "second")
    second.config["linux"]["namespaces"] = [{"type": "pid", "path": f"/proc/{attacker.pid}/ns/pid"},
                                            {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
                                            {"type": "network"}]
    runtime("create", "--bundle", second.set_args("true").write(), b)
    try:
        # b's init waits for `start`: the attacker has all the time it needs, and goes at it many times over
        attacker.wait_for(lambda: attacker.seen(what="TRIED"), "race window never observed: b's init (the "
                          "runtime) never appeared in a's PID namespace", timeout=5)
        time.sleep(0.2)
        runtime("start", b)
    finally:
        runtime("delete", "--force", b)
        reap()               # b's init is our child (subreaper): a's PID namespace cannot end while it is a zombie
    lines = attacker.stop()
    found = runtime_findings(lines)
    assert not found, "phase create (joined PID namespace): b's init was opened from a:\n" + report(found)
    assert host_binaries() == before


def give_rootfs_the_interpreters_libraries(rootfs):
    """Copy the dynamic loader and the libraries the host interpreter links to the same paths in the rootfs: the
    image is then like any glibc-based one, in which the host's interpreter binary can start."""
    out = subprocess.run(["ldd", INTERPRETER], capture_output=True, text=True, check=True).stdout
    for word in out.split():
        if word.startswith("/") and os.path.exists(word):
            dest = os.path.join(rootfs, word.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy(word, dest)


def plant_proc_self_exe_script(rootfs):
    """/evil: a script whose interpreter is /proc/self/exe, in an image that has the interpreter's libraries."""
    give_rootfs_the_interpreters_libraries(rootfs)
    evil = os.path.join(rootfs, "evil")
    with open(evil, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(evil, 0o755)


def test_container_script_with_proc_self_exe_as_interpreter_gives_no_handle_on_a_host_binary(runtime, bundle, cid):
    # The original exploit: the program exec runs is a script whose interpreter is /proc/self/exe. The kernel
    # resolves it in the process doing the execve — the runtime — so the runtime's own binary starts as a
    # container process, dumpable, and the attacker opens its exe. Non-dumpable cannot help: the execve resets it.
    # Here the final execve is done by a sealed in-memory program that makes itself non-executable first: /evil's
    # interpreter is then that program, not executable, and exec fails with EACCES instead of starting anything.
    plant_proc_self_exe_script(bundle.rootfs)
    before = host_binaries()
    attacker = Attacker(runtime, bundle, cid)
    refused = []
    for _ in range(EXEC_ROUNDS * EXECS_PER_ROUND):
        p = runtime("exec", cid, "/evil", check=False)
        if p.returncode != 0 and "exec /evil: permission denied" in p.stderr:
            refused.append(p.stderr)
        if attacker.seen("(evil)") or len(refused) >= EXECS_PER_ROUND:
            break
    lines = attacker.stop()
    found = exe_handles(lines)
    assert not found, ("phase exec, final execve of a `#!/proc/self/exe` script: the container holds the host's "
                       f"interpreter {INTERPRETER} (writable once it no longer runs):\n" + report(found))
    assert refused or attacker.seen("(evil)"), "neither refused nor observed: the attack was never really tried"
    assert host_binaries() == before


def test_started_container_script_with_proc_self_exe_as_interpreter_gives_no_handle_on_a_host_binary(
        runtime, bundle, make_id, tmp_path):
    # the same through create + start: b's process is /evil, b joins a's PID namespace, a is the attacker
    before = host_binaries()
    attacker = Attacker(runtime, bundle, make_id())
    second = Bundle(tmp_path / "second")
    plant_proc_self_exe_script(second.rootfs)
    second.config["linux"]["namespaces"] = [{"type": "pid", "path": f"/proc/{attacker.pid}/ns/pid"},
                                            {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
                                            {"type": "network"}]
    second.set_args("/evil").write()
    refused = []
    for _ in range(EXEC_ROUNDS * 3):
        b = make_id()
        runtime("create", "--bundle", second.path, b)
        try:
            p = runtime("start", b, check=False)
            if p.returncode != 0 and "exec /evil: permission denied" in p.stderr:
                refused.append(p.stderr)
            Attacker.wait_for(lambda: runtime.state(b)["status"] == "stopped", "/evil did not end")
        finally:
            runtime("delete", "--force", b)
            reap()
        if attacker.seen("(evil)") or len(refused) >= 3:
            break
    lines = attacker.stop()
    found = exe_handles(lines)
    assert not found, ("phase start, init's execve of a `#!/proc/self/exe` script: the container holds the host's "
                       f"interpreter {INTERPRETER} (writable once it no longer runs):\n" + report(found))
    assert refused or attacker.seen("(evil)"), "neither refused nor observed: the attack was never really tried"
    assert host_binaries() == before


# -- CVE-2024-21626 class --------------------------------------------------------------------------------------

# fds 3..10 are where a leaked runtime fd would sit; the runtime keeps its own fds from 1000 up
HOSTILE_CWDS = [f"/proc/self/fd/{n}" for n in (*range(3, 11), 1000, 1001)] + \
    ["/proc/self/cwd/..", "/proc/1/cwd", "/proc/1/root/..", "/proc/thread-self/cwd/../.."]
PROBE = 'pwd -P; ls -a . .. ../..'


@pytest.fixture
def marker(tmp_path):
    """A directory on the host with a uniquely named file in it and in its parent (the bundle's parent)."""
    name = f"HOST-MARKER-{uuid.uuid4().hex[:8]}"
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    (hostdir / name).write_text("host")
    (tmp_path / name).write_text("host")
    return hostdir, name


def assert_not_on_host(p, cwd, name):
    where = f"cwd {cwd}: rc={p.returncode} stdout={p.stdout!r} stderr={p.stderr!r}"
    assert name not in p.stdout, "the process's cwd is on the host: " + where
    if p.returncode != 0:
        assert "cwd" in p.stderr, "refused, but the error does not name the cwd: " + where
        return
    # getcwd works only for a directory reachable from the process's root
    assert p.stdout.startswith("/"), "the process's cwd is outside its root (the host): " + where


def test_run_with_a_proc_cwd_never_starts_on_the_host(runtime, bundle, make_id, marker):
    for cwd in HOSTILE_CWDS:
        bundle.config["process"]["cwd"] = cwd
        p = runtime("run", "--bundle", bundle.set_args("sh", "-c", PROBE).write(), make_id(), check=False)
        assert_not_on_host(p, cwd, marker[1])


def test_exec_with_a_proc_cwd_never_starts_on_the_host(runtime, bundle, cid, marker):
    # (the container outlives the execs by far: under emulation, arm64 VM, they take minutes)
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "3600").write(), cid)
    for cwd in HOSTILE_CWDS:
        p = runtime("exec", "--cwd", cwd, cid, "sh", "-c", PROBE, check=False)
        assert_not_on_host(p, cwd, marker[1])


def with_dir_fd(runtime, n, hostdir, *args):
    """Run the runtime with an inheritable fd n on a host directory, as a buggy caller (a shim) would leak it —
    runc leaked its own such fd in the CVE. With --preserve-fds the fd is passed on on purpose."""
    return subprocess.run(["sh", "-c", f'exec {n}<"$0"; exec "$@"', str(hostdir), EXE, "--root", runtime.root, *args],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("n,extra", [(7, ()), (3, ("--preserve-fds", "1"))], ids=["leaked", "preserved"])
def test_run_with_cwd_through_a_host_directory_fd_never_starts_on_the_host(runtime, bundle, cid, marker, n, extra):
    bundle.config["process"]["cwd"] = f"/proc/self/fd/{n}"
    p = with_dir_fd(runtime, n, marker[0], "run", *extra, "--bundle", bundle.set_args("sh", "-c", PROBE).write(), cid)
    assert_not_on_host(p, f"/proc/self/fd/{n}", marker[1])


@pytest.mark.parametrize("n,extra", [(7, ()), (3, ("--preserve-fds", "1"))], ids=["leaked", "preserved"])
def test_exec_with_cwd_through_a_host_directory_fd_never_starts_on_the_host(runtime, bundle, cid, marker, n, extra):
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "30").write(), cid)
    p = with_dir_fd(runtime, n, marker[0], "exec", *extra, "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", PROBE)
    assert_not_on_host(p, f"/proc/self/fd/{n}", marker[1])


def fd_listing(out):
    """`ls -l /proc/self/fd` -> {fd: target}"""
    fds = {}
    for line in out.splitlines():
        if " -> " in line:
            left, target = line.split(" -> ", 1)
            fds[left.split()[-1]] = target
    return fds


def test_exec_passes_no_fd_but_stdio(runtime, bundle, cid, marker):
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "30").write(), cid)
    p = with_dir_fd(runtime, 7, marker[0], "exec", cid, "ls", "-l", "/proc/self/fd")  # the caller's fd 7 neither
    assert p.returncode == 0, p.stderr
    fds = fd_listing(p.stdout)
    assert {"0", "1", "2"} <= set(fds), p.stdout
    extra = {k: v for k, v in fds.items() if k not in ("0", "1", "2")}
    # the one fd beyond stdio is ls's own, on the directory it lists
    assert len(extra) <= 1 and all(v.startswith("/proc/") and v.endswith("/fd") for v in extra.values()), fds


RUNTIME_FILES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the checkout, its .venv inside


def test_a_created_containers_init_holds_no_runtime_file_a_ptrace_capable_process_could_open(runtime, bundle, cid):
    # init is forked from `create`, not exec'd: until its execve it holds what the runtime opened, close-on-exec or
    # not. Waiting for `start` it has the container's capabilities already, and a process of the container with
    # CAP_SYS_PTRACE (no user namespace) passes the ptrace check on the non-dumpable init: /proc/1/fd/N reopens its
    # fds, for writing where the file's mode allows. The launcher's .venv/ociruntime-hotpath.bin (root's, 0644) is
    # code every later runtime command runs as root. runc's waiting init holds no file of the runtime either.
    grant_sys_ptrace(bundle)
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    probe = ('for f in /proc/1/fd/*; do t=$(readlink $f) || continue; echo "FD $f -> $t"; case "$t" in "$0"/*) '
             '{ echo "WRITABLE $f -> $t"; } 2>/dev/null 3>>$f;; esac; done')
    out = runtime("exec", cid, "sh", "-c", probe, RUNTIME_FILES).stdout
    assert "FD /proc/1/fd/0 " in out, "init's fds are not visible: this run proves nothing\n" + out
    held = [ln for ln in out.splitlines() if ln.startswith("FD ") and ln.split(" -> ", 1)[1].startswith(RUNTIME_FILES)]
    assert not held and "WRITABLE" not in out, "init holds the runtime's own files:\n" + out


HOT_PATH_FILE = os.path.join(RUNTIME_FILES, ".venv", "ociruntime-hotpath.bin")


@pytest.mark.parametrize("command", ["run", "exec"])
def test_a_caller_with_stdin_closed_gets_no_runtime_file_chowned_to_the_process_user(runtime, bundle, cid, command):
    # the launcher's open of the hot-path file takes the lowest free fd: stdin when the caller closed it. init and
    # exec's child make stdio the process user's before the user switch (runc's fixStdioPermissions): with the file
    # still open there, it became uid 1000's, a host file every later runtime command runs as root
    if not os.path.exists(HOT_PATH_FILE):
        pytest.skip("no hot-path file: run make deps")
    before = os.stat(HOT_PATH_FILE)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    try:
        if command == "run":
            argv = ["run", "--bundle", bundle.set_args("true").write(), cid]
        else:
            runtime("run", "-d", "--bundle", bundle.set_args("sleep", "10").write(), cid)
            argv = ["exec", cid, "true"]
        p = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", EXE, "--root", runtime.root, *argv],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        after = os.stat(HOT_PATH_FILE)
        assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid), "the hot-path file was chowned"
    finally:
        os.chown(HOT_PATH_FILE, before.st_uid, before.st_gid)


def test_a_caller_with_stdin_closed_still_gives_a_terminal_process_the_pty_as_stdin(runtime, bundle, cid, tmp_path):
    # the hot-path file at fd 0 (see above) must be closed as itself, not by number after the pty took fd 0
    if not os.path.exists(HOT_PATH_FILE):
        # without it, fd 0 goes to the exec FIFO's O_PATH fd, which the pty's dup2 replaces: init dies (known, older)
        pytest.skip("no hot-path file: run make deps")
    from conftest import console_listener, read_pty_until
    sock_path = str(tmp_path / "console.sock")
    srv, t, got = console_listener(sock_path)
    bundle.config["process"]["terminal"] = True
    bundle.set_args("sh", "-c", "readlink /proc/self/fd/0; readlink /proc/self/fd/1; echo done").write()
    p = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", EXE, "--root", runtime.root, "create", "--bundle",
                        bundle.path, "--console-socket", sock_path, cid], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    t.join(10)
    srv.close()
    assert "fd" in got
    runtime("start", cid)
    data = read_pty_until(got["fd"])
    lines = data.decode().split()
    assert lines[:2] == [lines[1], lines[1]] and lines[1].startswith("/dev/pts/"), lines


# -- the sealed exec program under seccomp filters ------------------------------------------------------------

def with_filter(bundle, *rules):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [SECCOMP_ARCH],
                                         "syscalls": list(rules)}


def test_a_filter_refusing_the_exec_programs_fcntl_fails_start_instead_of_leaking_its_report_fd(runtime, bundle,
                                                                                                cid):
    # fail closed: exec'ing with the exec FIFO's write end still open would hand a runtime fd to the container
    with_filter(bundle, {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO"})
    runtime("create", "--bundle", bundle.set_args("sh", "-c", "ls -l /proc/self/fd").write(), cid)
    p = runtime("start", cid, check=False)
    assert p.returncode == 1 and "could not close its report fd" in p.stderr and "fifo" not in p.stdout


@pytest.mark.parametrize("killed", [["execveat"], ["chmod", "fchmodat"], ["getpid"]], ids=lambda k: k[0])
def test_the_program_runs_under_a_filter_killing_syscalls_it_does_not_need(runtime, bundle, cid, killed):
    # (arm64 has no chmod(2): the program's chmod is fchmodat there)
    with_filter(bundle, {"names": killed, "action": "SCMP_ACT_KILL_PROCESS"})
    p = runtime("run", "--bundle", bundle.set_args("echo", "ran").write(), cid, check=False)
    assert (p.returncode, p.stdout) == (0, "ran\n")


# -- leftovers of an interrupted start --------------------------------------------------------------------------

def test_start_after_a_start_that_died_reports_running_instead_of_waiting(runtime, bundle, cid):
    runtime("create", "--bundle", bundle.set_args("sleep", "30").write(), cid)
    fifo = os.path.join(runtime.root, cid, "exec.fifo")
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # a `start` that read init's byte, then died before unlinking

    def read_one():
        try:
            return os.read(fd, 1) == b"1"
        except BlockingIOError:
            return False
    try:
        Attacker.wait_for(read_one, "init never wrote to the exec FIFO")
        time.sleep(0.2)                               # init execs the container's program
    finally:
        os.close(fd)
    t0 = time.monotonic()
    p = runtime("start", cid, check=False, timeout=10)
    assert p.returncode == 1 and "already running" in p.stderr and time.monotonic() - t0 < 5
    assert runtime.state(cid)["status"] == "running"
    runtime("kill", cid, "KILL")


# -- cgroup namespace views ------------------------------------------------------------------------------------

def test_a_raw_cgroup2_mount_in_a_new_cgroup_namespace_shows_that_namespace_root(runtime, bundle, cid):
    # a `cgroup2` mounts[] entry must not be mounted before init is in its cgroup namespace: it would show the
    # runtime's whole hierarchy (root "/.." in mountinfo) instead of the container's own cgroup
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["type"] != "cgroup"] + [
        {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2", "options": ["ro", "nosuid"]}]
    if not any(n["type"] == "cgroup" for n in bundle.config["linux"]["namespaces"]):
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.set_args("sh", "-c", "grep ' /sys/fs/cgroup ' /proc/self/mountinfo")
    out = runtime("run", "--bundle", bundle.write(), cid).stdout
    assert out.split()[3] == "/", out


def test_without_executable_memfds_create_fails_closed_instead_of_execing_directly(runtime, bundle, cid):
    # vm.memfd_noexec=2 (per pid namespace) forbids the sealed exec program: a direct exec would reopen the
    # CVE-2019-5736 hole, so create must fail, naming the setting, and leave nothing behind
    if not os.path.exists("/proc/sys/vm/memfd_noexec"):
        pytest.skip("kernel without vm.memfd_noexec")
    bundle.set_args("true").write()
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
                        'echo 2 > /proc/sys/vm/memfd_noexec && exec "$@"', "sh", EXE, "--root", runtime.root,
                        "run", "--bundle", bundle.path, cid], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "vm.memfd_noexec" in p.stderr, p.stderr
    assert not os.listdir(runtime.root) if os.path.isdir(runtime.root) else True


def test_a_created_containers_init_shows_no_host_path_in_its_command_line(runtime, bundle, cid):
    # /proc/<pid>/cmdline is readable by whoever sees the pid, non-dumpable or not: until `start`, init's would name
    # the host's interpreter, launcher, --root and bundle to the container (and to `ps`). runc's reads "runc init".
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    with open(f"/proc/{runtime.state(cid)['pid']}/cmdline", "rb") as f:
        host_view = [w for w in f.read().split(b"\0") if w]
    inside = runtime("exec", cid, "cat", "/proc/1/cmdline").stdout.encode()
    assert host_view[1:] == [b"init"] and len(host_view) == 2, host_view
    assert [w for w in inside.split(b"\0") if w] == host_view
    assert bundle.path.encode() not in inside and runtime.root.encode() not in inside
    runtime("start", cid)
