"""The read-only interpreter of containers that could write to it (linux/sealexe.py, launch.needs_sealed_interpreter)."""
import fcntl
import json
import os
import marshal
import subprocess
import sys

import pytest

from ociruntime import launch
from ociruntime.config import model
from ociruntime.linux import sealexe
from ociruntime.linux import syscalls as sc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = os.path.join(REPO, "build", "bundle")
PROBE = "import os; print(os.statvfs('/proc/self/exe').f_flag & os.ST_RDONLY, os.readlink('/proc/self/exe'))"


def _cfg(tmp_path, caps=None, userns=False):
    with open(os.path.join(BUNDLE, "config.json")) as f:
        doc = json.load(f)
    doc["root"]["path"] = os.path.join(BUNDLE, "rootfs")
    if caps is None:
        doc["process"].pop("capabilities", None)
    else:
        doc["process"]["capabilities"] = caps
    if userns:
        doc["linux"]["namespaces"].append({"type": "user"})
        doc["linux"]["uidMappings"] = doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    with open(tmp_path / "config.json", "w") as f:
        json.dump(doc, f)
    return model.load(str(tmp_path))[0]


@pytest.fixture(autouse=True)
def _bundle():
    if not os.path.exists(os.path.join(BUNDLE, "config.json")):
        pytest.skip("no build/bundle: run make bundle")


@pytest.mark.parametrize("caps", [None, {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]}, {}])
def test_a_container_without_cap_sys_ptrace_keeps_the_plain_interpreter(tmp_path, caps):
    assert launch.needs_sealed_interpreter(_cfg(tmp_path, caps)) is False


@pytest.mark.parametrize("capset", ["bounding", "effective", "permitted", "inheritable", "ambient"])
def test_cap_sys_ptrace_in_any_set_asks_for_the_sealed_interpreter(tmp_path, capset, monkeypatch):
    monkeypatch.setattr(launch, "_in_userns", lambda: False)
    assert launch.needs_sealed_interpreter(_cfg(tmp_path, {capset: ["CAP_SYS_PTRACE"]})) is True


def test_an_exec_process_with_cap_sys_ptrace_asks_for_it_too(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "_in_userns", lambda: False)
    cfg = _cfg(tmp_path, {"bounding": ["CAP_KILL"]})
    process = model.process_from_dict({"args": ["true"], "cwd": "/", "capabilities": {"bounding": ["CAP_SYS_PTRACE"]}})
    assert launch.needs_sealed_interpreter(cfg, process) is True


def test_a_user_namespace_makes_cap_sys_ptrace_harmless(tmp_path, monkeypatch):
    # its CAP_SYS_PTRACE is over its own namespace: our non-dumpable processes belong to the initial one
    monkeypatch.setattr(launch, "_in_userns", lambda: False)
    assert launch.needs_sealed_interpreter(_cfg(tmp_path, {"bounding": ["CAP_SYS_PTRACE"]}, userns=True)) is False


def _decision_in_a_user_namespace(*unshare_args):
    """needs_sealed_interpreter of a CAP_SYS_PTRACE container, asked by a runtime in a new user namespace."""
    import shutil
    import tempfile
    if os.geteuid() != 0 or launch._in_userns() or not shutil.which("unshare"):
        pytest.skip("needs root in the initial user namespace and unshare(1)")
    d = tempfile.mkdtemp(prefix="sealexe-")
    try:
        os.chmod(d, 0o755)           # readable by the unmapped uid too
        with open(os.path.join(BUNDLE, "config.json")) as f:
            doc = json.load(f)
        doc["root"]["path"] = os.path.join(BUNDLE, "rootfs")
        doc["process"]["capabilities"] = {"bounding": ["CAP_SYS_PTRACE"]}
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(doc, f)
        os.chmod(os.path.join(d, "config.json"), 0o644)
        code = (f"import sys; sys.path[:0] = [{REPO!r}]; from ociruntime import launch; "
                f"from ociruntime.config import model; print(launch._in_userns(), "
                f"launch.needs_sealed_interpreter(model.load({d!r}, validate=False)[0]))")
        p = subprocess.run(["unshare", *unshare_args, sys.executable, "-IS", "-c", code], capture_output=True,
                           text=True, cwd="/")
        assert p.returncode == 0, p.stderr
        return p.stdout.split()
    finally:
        shutil.rmtree(d)


def test_a_runtime_in_a_user_namespace_that_cannot_write_the_interpreter_needs_no_seal():
    # rootless: the interpreter's file belongs to an id outside our namespace, nothing of ours can write it
    assert _decision_in_a_user_namespace("--user") == ["True", "False"]


def test_a_runtime_in_a_user_namespace_whose_root_owns_the_interpreter_seals_it():
    # a runtime nested in a container (the interpreter in that container's image, owned by its root): root of the
    # namespace, which a container without a user namespace of its own shares, can write it
    assert _decision_in_a_user_namespace("--user", "--map-root-user") == ["True", "True"]


def test_the_parsed_config_crosses_execve_by_value(tmp_path):
    cfg = _cfg(tmp_path, {"bounding": ["CAP_SYS_PTRACE"]})
    again = sealexe.unflatten(marshal.loads(marshal.dumps(sealexe.flatten({"cfg": cfg, "n": 3}))))["cfg"]
    assert again == cfg and again is not cfg
    assert again.process.capabilities.bounding == ("CAP_SYS_PTRACE",)
    assert type(again.process.args) is tuple


def test_no_value_of_config_json_can_pass_for_a_record_tag():
    # args that look like the encoding of a record stay strings: nothing is imported or called from them
    lookalike = ("r", "os", "system", ["true"])
    args = model.process_from_dict({"args": list(lookalike[:3]) + ["x"], "cwd": "/"})
    again = sealexe.unflatten(marshal.loads(marshal.dumps(sealexe.flatten(args))))
    assert again.args == ("r", "os", "system", "x")
    with pytest.raises(ValueError):
        sealexe.unflatten(lookalike)


def _exec_output(fd):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        try:
            os.execve(fd, [sys.executable, "-IS", "-c", PROBE], {})
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text.split(maxsplit=1)


def test_the_sealed_binary_runs_from_a_read_only_mount_nobody_can_write_through():
    try:
        os.close(sc.open_tree(-100, "/", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC))
    except sc.SyscallError as e:
        pytest.skip(f"this kernel or this process cannot clone a mount ({e}): the memfd copy is used instead")
    fd = sealexe.sealed_binary(os.path.realpath(sys.executable))
    try:
        assert os.fstatvfs(fd).f_flag & os.ST_RDONLY
        with pytest.raises(OSError):
            os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        ro, exe = _exec_output(fd)
        assert ro == str(os.ST_RDONLY) and exe != os.path.realpath(sys.executable)
    finally:
        os.close(fd)


def test_where_cloning_a_mount_is_refused_the_binary_is_a_sealed_memfd_copy(monkeypatch):
    def refuse(*_a, **_k):
        raise sc.SyscallError("open_tree", "x", 1)
    monkeypatch.setattr(sc, "open_tree", refuse)
    fd = sealexe.sealed_binary(os.path.realpath(sys.executable))
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL
        _, exe = _exec_output(fd)
        assert exe.startswith("/memfd:")
    finally:
        os.close(fd)


def test_the_boot_code_finds_the_runtime_from_an_isolated_interpreter():
    # real containers go through reexec/resume in spec-tests/test_security.py; here: what the new interpreter runs
    # first imports the runtime with nothing but the path it is given (-I: no site, no environment)
    boot = sealexe._BOOT % (sys.path, False, None, "main", 0)
    probe = boot.replace("resume(%r, %d)" % ("main", 0), "print(resume.__name__)")
    out = subprocess.run([sys.executable, "-IS", "-c", probe], capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() == "resume", out.stderr


def _in_new_pid_namespace(*cmd):
    """(process, /proc path of its new pid namespace) for `cmd` run as PID 1 of a new pid namespace."""
    import shutil
    import time
    if os.geteuid() != 0 or launch._in_userns() or not shutil.which("unshare"):
        pytest.skip("a new pid namespace needs root in the initial user namespace and unshare(1)")
    with open("/proc/self/status") as f:
        effective = int(next(ln.split()[1] for ln in f if ln.startswith("CapEff:")), 16)
    if not effective >> 19 & 1:
        pytest.skip("this test process lacks CAP_SYS_PTRACE: it cannot see other processes' namespaces, nor give "
                    "the process it starts the capability")
    p = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", *cmd])
    path = f"/proc/{p.pid}/ns/pid_for_children"
    deadline = time.monotonic() + 5
    while True:    # the link is ours until unshare(2), has a target once unshare has forked the namespace's process
        try:
            ns = os.readlink(path)
            if ns != os.readlink("/proc/self/ns/pid") and any(
                    os.readlink(f"/proc/{c}/ns/pid") == ns for c in os.listdir("/proc")
                    if c.isdigit() and os.path.exists(f"/proc/{c}/ns/pid")):
                return p, path
        except OSError:
            pass
        assert time.monotonic() < deadline, "the new pid namespace never got its process"
        time.sleep(0.01)


def _wait_for_comm(ns_path, comm):
    import time
    ns, deadline = os.readlink(ns_path), time.monotonic() + 5
    while True:
        for c in os.listdir("/proc"):
            try:
                if c.isdigit() and os.readlink(f"/proc/{c}/ns/pid") == ns:
                    with open(f"/proc/{c}/comm") as f:
                        if f.read().strip() == comm:
                            return
            except OSError:
                pass
        assert time.monotonic() < deadline, f"no {comm} in the pid namespace"
        time.sleep(0.01)


def _stop(p):
    p.kill()
    p.wait()


def test_a_pid_namespace_holding_a_ptrace_capable_process_asks_for_the_sealed_interpreter(tmp_path):
    # another container joined it with CAP_SYS_PTRACE (its bounding set is enough: an exec can give it back):
    # this container's own config asks for nothing
    p, ns = _in_new_pid_namespace("sleep", "30")
    try:
        assert launch._ptrace_capable_in(ns) is True
        assert launch.needs_sealed_interpreter(_cfg(tmp_path, {"bounding": ["CAP_KILL"]}), pidns=ns) is True
        assert launch.needs_sealed_interpreter(_cfg(tmp_path, {"bounding": ["CAP_KILL"]}, userns=True), pidns=ns) \
            is True, "a user namespace of this container does not take the other process's capability away"
    finally:
        _stop(p)


def test_a_pid_namespace_without_a_ptrace_capable_process_needs_no_seal(tmp_path):
    import shutil
    if not shutil.which("setpriv"):
        pytest.skip("no setpriv(1) to drop CAP_SYS_PTRACE")
    p, ns = _in_new_pid_namespace("setpriv", "--bounding-set", "-sys_ptrace", "--inh-caps", "-all", "--ambient-caps",
                                  "-all", "--", "sh", "-c", "exec setpriv --clear-groups --reuid 1 --regid 1 sleep 30")
    try:
        _wait_for_comm(ns, "sleep")  # the namespace's process has dropped the capability from every set
        assert launch._ptrace_capable_in(ns) is False
        assert launch.needs_sealed_interpreter(_cfg(tmp_path, {"bounding": ["CAP_KILL"]}), pidns=ns) is False
    finally:
        _stop(p)


def test_our_own_pid_namespace_needs_no_seal_whatever_it_holds(tmp_path):
    # a container without a pid namespace: the runtime's caller is visible there anyway, a sealed copy protects nothing
    assert launch._ptrace_capable_in("/proc/self/ns/pid") is False


def test_the_memfd_copy_runs_where_memfds_are_not_executable_unless_asked():
    # vm.memfd_noexec=1 (Linux 6.3, per pid namespace): a memfd made without MFD_EXEC is sealed non-executable, so
    # the fallback copy must ask for an executable one (=2 refuses that: then the fallback fails, as dmz.py's does)
    import shutil
    if os.geteuid() != 0 or not os.path.exists("/proc/sys/vm/memfd_noexec") or not shutil.which("unshare"):
        pytest.skip("needs root, vm.memfd_noexec (Linux 6.3) and unshare(1)")
    code = f"""
import os, sys
sys.path[:0] = [{REPO!r}]
from ociruntime.linux import sealexe, syscalls as sc
def refuse(*_a, **_k):
    raise sc.SyscallError("open_tree", "x", 1)
sc.open_tree = refuse
fd = sealexe.sealed_binary(os.path.realpath(sys.executable))
pid = os.fork()
if pid == 0:
    try:
        os.execve(fd, [sys.executable, "-IS", "-c", "print('ran')"], {{}})
    except OSError as e:
        print("execve:", e.strerror, flush=True)
    os._exit(1)
os.waitpid(pid, 0)
"""
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
                        'echo 1 > /proc/sys/vm/memfd_noexec && exec "$@"', "sh", sys.executable, "-IS", "-c", code],
                       capture_output=True, text=True, timeout=30, cwd="/")
    assert p.stdout.strip() == "ran", (p.stdout, p.stderr)


# a process whose main thread drops CAP_SYS_PTRACE from every set while another thread keeps it (capabilities are
# per thread): /proc/PID/status shows the main thread only
_THREAD_KEEPS_PTRACE = """
import ctypes, struct, threading, time
libc = ctypes.CDLL(None, use_errno=True)
threading.Thread(target=lambda: time.sleep(60), daemon=True).start()
assert libc.prctl(24, 19, 0, 0, 0) == 0                  # PR_CAPBSET_DROP CAP_SYS_PTRACE
hdr = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0), 8)
data = ctypes.create_string_buffer(24)
assert libc.syscall(125, hdr, data) == 0                 # capget (x86_64; see below)
words = list(struct.unpack("6I", data.raw))
for i in (0, 1, 2):                                      # effective, permitted, inheritable of the low word
    words[i] &= ~(1 << 19)
data = ctypes.create_string_buffer(struct.pack("6I", *words), 24)
assert libc.syscall(126, hdr, data) == 0                 # capset
print("dropped", flush=True)
time.sleep(60)
"""


def test_a_thread_that_keeps_cap_sys_ptrace_behind_its_main_thread_is_seen():
    import platform
    if platform.machine() != "x86_64":
        pytest.skip("the probe's capget/capset numbers are x86_64's")
    p, ns = _in_new_pid_namespace(sys.executable, "-IS", "-c", _THREAD_KEEPS_PTRACE)
    try:
        deadline = __import__("time").monotonic() + 5
        pid = None
        while pid is None:           # the namespace's python, once its main thread has dropped the capability
            for c in os.listdir("/proc"):
                try:
                    if c.isdigit() and os.readlink(f"/proc/{c}/ns/pid") == os.readlink(ns) and \
                            len(os.listdir(f"/proc/{c}/task")) == 2:
                        with open(f"/proc/{c}/status") as f:
                            bnd = next(ln for ln in f if ln.startswith("CapBnd:"))
                        if not int(bnd.split()[1], 16) >> 19 & 1:
                            pid = c
                except OSError:
                    pass
            assert __import__("time").monotonic() < deadline, "the probe never dropped the capability"
        kept = []
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/status") as f:
                kept += [t for ln in f if ln.startswith("CapBnd:") and int(ln.split()[1], 16) >> 19 & 1]
        assert kept, "no thread kept the capability: this run proves nothing"
        assert launch._ptrace_capable_in(ns) is True
    finally:
        _stop(p)


def test_a_failure_to_rebuild_the_arguments_reaches_the_parent_as_one_error(tmp_path):
    # before run_child there is no init to report through: resume itself sends ERR over the sync socket and exits 1
    from ociruntime import sync
    parent, child = sync.pair()
    data = os.memfd_create("args", 0)
    os.write(data, marshal.dumps(("InitArgs", {"sock": child.fileno(), "cfg": ("x", "os", "system", [])}, {}, [])))
    os.lseek(data, 0, os.SEEK_SET)
    pid = os.fork()
    if pid == 0:
        try:
            sealexe.resume("main", data)
        finally:
            os._exit(99)
    child.close()
    os.close(data)
    _, status = os.waitpid(pid, 0)
    tag, payload = sync.recv_or_eof(parent)
    parent.close()
    assert os.waitstatus_to_exitcode(status) == 1
    assert tag == sync.ERR and payload.startswith("sealed interpreter: ") and "\n" not in payload, payload
