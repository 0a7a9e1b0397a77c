"""Rootless containers, as an unprivileged user, ociruntime and runc side by side (every test runs once per runtime,
runc 1.1.5 being the control): the state under $XDG_RUNTIME_DIR, a user namespace with the user's own ids (no
helper) or several ranges (newuidmap/newgidmap), create/start/exec/kill/delete/run, and what cannot work without
privileges failing clearly (resources on a host whose cgroups the user cannot write; no user namespace).

The session makes a throw-away user (useradd, with /etc/subuid and /etc/subgid ranges) and removes it at the end. It
skips when not root, when useradd or unprivileged user namespaces are missing; the multi-range test skips without
newuidmap (Debian package uidmap). On a cgroup v1 host (this one) cgroups are skipped, as runc skips them.
"""
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BASE_BUNDLE, copy_rootfs, EXE, reap

RUNC = shutil.which("runc") or "/usr/sbin/runc"
RUNTIMES = [EXE] + ([RUNC] if os.path.exists(RUNC) else [])
STATE_DIR = {EXE: "ociruntime", RUNC: "runc"}


def _sub_range(path: str, name: str):
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] == name:
                    return int(parts[1]), int(parts[2])
    except OSError:
        pass
    return None


@pytest.fixture(scope="session")
def user():
    """A fresh unprivileged user (uid, gid, name), removed with its subordinate ranges at the end."""
    if os.geteuid() != 0:
        pytest.skip("makes a test user: needs root")
    if not shutil.which("useradd") or not shutil.which("userdel"):
        pytest.skip("useradd/userdel are missing (Debian package passwd)")
    name = f"ocirl{uuid.uuid4().hex[:6]}"
    for _ in range(10):      # another session's useradd may hold the lock on /etc/passwd for a moment
        p = subprocess.run(["useradd", "-M", "-N", "-s", "/bin/sh", name], capture_output=True, text=True)
        if p.returncode == 0 or "lock" not in p.stderr:
            break
        time.sleep(0.5)
    if p.returncode != 0 and os.environ.get("OCIRUNTIME_VM") == "1":
        _add_user_by_hand(name)   # the VM's 9p/overlay /etc refuses useradd's /etc/shadow rewrite; it is private
    elif p.returncode != 0:
        pytest.skip(f"useradd {name}: {p.stderr.strip()}")
    try:
        pw = pwd.getpwnam(name)
        if not _sub_range("/etc/subuid", name) and shutil.which("usermod"):
            start = 200000 + (pw.pw_uid % 1000) * 65536
            subprocess.run(["usermod", "--add-subuids", f"{start}-{start + 65535}",
                            "--add-subgids", f"{start}-{start + 65535}", name], capture_output=True)
        probe = subprocess.run(["unshare", "-U", "true"], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"unprivileged user namespaces are not available: {probe.stderr.strip()}")
        yield pw.pw_uid, pw.pw_gid, name
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        for f in ("/etc/subuid", "/etc/subgid", "/etc/passwd"):     # older userdel keeps the ranges; by hand
            with open(f) as fh:
                if any(line.startswith(f"{name}:") for line in fh):
                    subprocess.run(["sed", "-i", f"/^{name}:/d", f], capture_output=True)


def _add_user_by_hand(name: str) -> None:
    """A passwd line and subordinate ranges (newuidmap looks the user up by uid), for the throw-away VM only."""
    used = {p.pw_uid for p in pwd.getpwall()}
    uid = next(u for u in range(2000, 60000) if u not in used)
    with open("/etc/passwd", "a") as f:
        f.write(f"{name}:x:{uid}:100::/nonexistent:/bin/sh\n")
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path, "a") as f:
            f.write(f"{name}:{300000 + (uid - 2000) * 65536}:65536\n")


class UserRuntime:
    """A runtime run as the test user, with XDG_RUNTIME_DIR set and no --root (runc's default for a user)."""

    def __init__(self, exe, user, work):
        self.exe, (self.uid, self.gid, self.name), self.work = exe, user, work
        self.xdg = os.path.join(work, "xdg")
        os.mkdir(self.xdg, 0o700)
        os.chown(self.xdg, self.uid, self.gid)
        self.ids = []

    @property
    def root(self):
        return os.path.join(self.xdg, STATE_DIR[self.exe])

    cgroup = None     # a cgroup v2 directory delegated to the user: each command starts in it

    def __call__(self, *args, check=True, timeout=60):
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": self.work, "XDG_RUNTIME_DIR": self.xdg,
               "USER": self.name}
        argv, who = [self.exe, *args], {"user": self.uid, "group": self.gid, "extra_groups": []}
        if self.cgroup:          # placed by root, then the user's ids (as a login in a delegated cgroup would be)
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && u=$1 g=$2 && shift 2 && '
                    'exec setpriv --reuid="$u" --regid="$g" --clear-groups "$@"',
                    self.cgroup, str(self.uid), str(self.gid), *argv]
            who = {}
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True,
                               timeout=timeout, env=env, cwd=self.work, **who)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"{os.path.basename(self.exe)} {' '.join(args)} -> {p.returncode}\n"
                                 f"{p.stdout}{p.stderr}")
        return p

    def new_id(self):
        c = f"r{uuid.uuid4().hex[:8]}"
        self.ids.append(c)
        return c

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def wait_status(self, cid, want, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state(cid)["status"] == want:
                return
            time.sleep(0.02)
        raise AssertionError(f"{cid} never became {want}")

    def spec(self) -> dict:
        d = tempfile.mkdtemp(dir=self.work)
        os.chown(d, self.uid, self.gid)
        self("spec", "--rootless", "--bundle", d)
        with open(os.path.join(d, "config.json")) as f:
            return json.load(f)

    def bundle(self, *args, config=None) -> str:
        """A busybox bundle owned by the user, from `spec --rootless` of this runtime."""
        b = tempfile.mkdtemp(dir=self.work)
        copy_rootfs(os.path.join(b, "rootfs"))
        cfg = config or self.spec()
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        cfg["root"]["readonly"] = False
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f)
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", b], check=True)
        return b

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid, check=False)
        reap()
        left = os.listdir(self.root) if os.path.isdir(self.root) else []
        assert not left, f"state left under {self.root}: {left}"


@pytest.fixture(params=RUNTIMES, ids=[os.path.basename(r) for r in RUNTIMES])
def rt(request, user):
    work = tempfile.mkdtemp(prefix="ocirl-")
    os.chmod(work, 0o755)
    os.chown(work, user[0], user[1])
    r = UserRuntime(request.param, user, work)
    try:
        yield r
        r.cleanup()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_spec_rootless_maps_the_user_and_drops_what_needs_root(rt, user):
    cfg = rt.spec()
    lx = cfg["linux"]
    assert {"type": "user"} in lx["namespaces"]
    assert "network" not in [n["type"] for n in lx["namespaces"]]
    assert lx["uidMappings"] == [{"containerID": 0, "hostID": user[0], "size": 1}]
    assert lx["gidMappings"] == [{"containerID": 0, "hostID": user[1], "size": 1}]
    assert "resources" not in lx
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert sys_mount["source"] == "/sys" and "rbind" in sys_mount["options"]
    assert not [o for m in cfg["mounts"] for o in m.get("options", []) if o.startswith(("gid=", "uid="))]


def test_spec_rootless_has_runcs_mounts_and_namespaces(user):
    if RUNC not in RUNTIMES:
        pytest.skip("runc is not installed")
    work = tempfile.mkdtemp(prefix="ocirl-")
    os.chmod(work, 0o755)
    os.chown(work, user[0], user[1])
    try:
        ours = UserRuntime(EXE, user, work).spec()
        os.rename(os.path.join(work, "xdg"), os.path.join(work, "xdg-ours"))
        theirs = UserRuntime(RUNC, user, work).spec()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for key in ("mounts", "process"):
        assert ours[key] == theirs[key] or key == "process", key
    assert ours["linux"]["uidMappings"] == theirs["linux"]["uidMappings"]
    assert ours["linux"]["gidMappings"] == theirs["linux"]["gidMappings"]
    # runc adds a cgroup namespace on cgroup v2 hosts only; ours has one everywhere (its default spec does)
    assert [n for n in ours["linux"]["namespaces"] if n["type"] != "cgroup"] == \
        [n for n in theirs["linux"]["namespaces"] if n["type"] != "cgroup"]
    assert ours["process"]["user"] == theirs["process"]["user"]


def test_create_start_exec_kill_delete_as_a_user(rt, user):
    cid = rt.new_id()
    b = rt.bundle("sleep", "300")
    rt("create", "--bundle", b, cid)
    assert os.path.isdir(os.path.join(rt.root, cid)), "state is kept under $XDG_RUNTIME_DIR"
    assert rt.state(cid)["status"] == "created"
    rt("start", cid)
    assert rt.state(cid)["status"] == "running"
    pid = rt.state(cid)["pid"]
    assert os.stat(f"/proc/{pid}").st_uid == user[0], "the container runs as the user on the host"
    out = rt("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map").stdout.split()
    assert out == ["0", "0", str(user[0]), "1"]
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt("delete", cid)
    reap()
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_run_passes_the_exit_status_and_denies_setgroups(rt):
    cid = rt.new_id()
    b = rt.bundle("sh", "-c", "cat /proc/self/setgroups; exit 7")
    p = rt("run", "--bundle", b, cid, check=False)
    reap()
    assert p.returncode == 7, p.stderr
    assert p.stdout.split() == ["deny"]      # one's own gid alone: the kernel wants setgroups denied first


def test_several_ranges_are_mapped_through_newuidmap(rt, user):
    if not shutil.which("newuidmap") or not shutil.which("newgidmap"):
        pytest.skip("newuidmap/newgidmap are missing (Debian package uidmap)")
    sub_u, sub_g = _sub_range("/etc/subuid", user[2]), _sub_range("/etc/subgid", user[2])
    if not sub_u or not sub_g:
        pytest.skip(f"no /etc/subuid or /etc/subgid range for {user[2]}")
    cfg = rt.spec()
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user[0], "size": 1},
                                   {"containerID": 1, "hostID": sub_u[0], "size": 1000}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": user[1], "size": 1},
                                   {"containerID": 1, "hostID": sub_g[0], "size": 1000}]
    for caps in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][caps].append("CAP_CHOWN")
    cid = rt.new_id()
    b = rt.bundle("sh", "-c", "cat /proc/self/uid_map; touch /f; chown 100:100 /f; stat -c %u /f", config=cfg)
    p = rt("run", "--bundle", b, cid)
    reap()
    assert p.stdout.split() == ["0", str(user[0]), "1", "1", str(sub_u[0]), "1000", "100"]
    assert os.stat(os.path.join(b, "rootfs", "f")).st_uid == sub_u[0] + 99    # container 100 = host sub+99


def test_resources_fail_clearly_where_cgroups_are_not_writable(rt):
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("cgroup v2: whether the user's cgroup is delegated decides; this host case is v1")
    cfg = rt.spec()
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    cid = rt.new_id()
    b = rt.bundle("true", config=cfg)
    p = rt("run", "--bundle", b, cid, check=False)
    reap()
    assert p.returncode != 0
    if rt.exe == EXE:
        assert "linux.resources.memory" in p.stderr and "rootless" in p.stderr, p.stderr
    else:
        assert "cannot set memory limit" in p.stderr, p.stderr
    assert not rt("list", "-q").stdout.split()


def test_without_a_user_namespace_it_is_refused(rt):
    cfg = rt.spec()
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] not in ("user", "uts")]
    cfg.pop("hostname", None)
    cfg["linux"].pop("uidMappings")
    cfg["linux"].pop("gidMappings")
    cid = rt.new_id()
    b = rt.bundle("true", config=cfg)
    p = rt("run", "--bundle", b, cid, check=False)
    reap()
    assert p.returncode != 0
    assert "rootless container requires user namespaces" in p.stderr, p.stderr


def _nofile_hard() -> int:
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]     # the user's commands inherit ours


def _oom_score_adj() -> int:
    with open("/proc/self/oom_score_adj") as f:                 # the user's commands inherit ours
        return int(f.read())


def test_an_rlimit_up_to_the_hard_limit_is_set_as_a_user(rt):
    hard = _nofile_hard()
    cfg = rt.spec()
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": hard}]
    cid = rt.new_id()
    p = rt("run", "--bundle", rt.bundle("sh", "-c", "ulimit -Hn; ulimit -Sn", config=cfg), cid)
    reap()
    assert p.stdout.split() == [str(hard), str(hard)]


def test_an_rlimit_above_the_hard_limit_fails_clearly_as_a_user(rt):
    """Raising a hard limit needs CAP_SYS_RESOURCE in the host's user namespace, which no rootless container has:
    both runtimes fail (runc too has no fallback), ours in one line naming the entry and the reason."""
    import resource
    hard = _nofile_hard()
    if hard == resource.RLIM_INFINITY:
        pytest.skip("RLIMIT_NOFILE has no hard limit here: nothing is above it")
    cfg = rt.spec()
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard + 1, "soft": 1024}]
    cid = rt.new_id()
    p = rt("run", "--bundle", rt.bundle("true", config=cfg), cid, check=False)
    reap()
    assert p.returncode != 0, p.stdout
    if rt.exe == EXE:
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "process.rlimits[0] RLIMIT_NOFILE" in p.stderr and f"above the current {hard}" in p.stderr \
            and "CAP_SYS_RESOURCE" in p.stderr, p.stderr
    else:
        assert "error setting rlimit type 7: operation not permitted" in p.stderr, p.stderr
    assert not rt("list", "-q").stdout.split()


def test_oom_score_adj_above_the_current_is_set_as_a_user(rt):
    """Raising oom_score_adj needs no privilege; ours failed (EACCES) while it wrote the value after making itself
    non-dumpable inside the user namespace, where /proc/self belongs to the host's root."""
    cur = _oom_score_adj()
    if cur >= 1000:
        pytest.skip("oom_score_adj is at its maximum already")
    want = min(1000, cur + 100)
    cfg = rt.spec()
    cfg["process"]["oomScoreAdj"] = want
    cid = rt.new_id()
    p = rt("run", "--bundle", rt.bundle("cat", "/proc/self/oom_score_adj", config=cfg), cid)
    reap()
    assert p.stdout.split() == [str(want)]


def test_oom_score_adj_below_the_current_fails_clearly_as_a_user(rt, user):
    """Lowering oom_score_adj (below the last value set with CAP_SYS_RESOURCE) needs CAP_SYS_RESOURCE, which a
    rootless container lacks: both runtimes fail (runc has no fallback), ours in one line naming the field."""
    probe = subprocess.run(["sh", "-c", "echo -1000 > /proc/self/oom_score_adj"], user=user[0], group=user[1],
                           extra_groups=[], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("the kernel lets this user lower oom_score_adj to -1000 here")
    cfg = rt.spec()
    cfg["process"]["oomScoreAdj"] = -1000
    cid = rt.new_id()
    p = rt("run", "--bundle", rt.bundle("true", config=cfg), cid, check=False)
    reap()
    assert p.returncode != 0, p.stdout
    if rt.exe == EXE:
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "process.oomScoreAdj -1000" in p.stderr and "CAP_SYS_RESOURCE" in p.stderr, p.stderr
    else:
        assert "failed to update /proc/self/oom_score_adj: Permission denied" in p.stderr, p.stderr
    assert not rt("list", "-q").stdout.split()


@pytest.fixture
def delegated(rt, user):
    """A cgroup v2 subtree delegated to the user (chown of the directory, cgroup.procs, cgroup.subtree_control and
    cgroup.threads, as systemd's Delegate=yes does) with memory and pids enabled; the user's commands start in its
    leaf `shell`. Made below the confined root only."""
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("cgroup v1 host: delegation is a cgroup v2 feature (make test-cgroup2 runs this in a v2 VM)")
    if os.environ.get("OCIRUNTIME_CONFINED") != "1":
        pytest.skip("creates cgroups: run under spec-tests/confine.sh")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is missing")
    name = f"ocirl-{uuid.uuid4().hex[:6]}"
    d = f"/sys/fs/cgroup/{name}"
    os.mkdir(d)
    try:
        for ctrl in ("memory", "pids"):
            with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
                f.write(f"+{ctrl}")
            with open(f"{d}/cgroup.subtree_control", "w") as f:
                f.write(f"+{ctrl}")
        os.mkdir(f"{d}/shell")
        for path in (d, f"{d}/cgroup.procs", f"{d}/cgroup.subtree_control", f"{d}/cgroup.threads",
                     f"{d}/shell", f"{d}/shell/cgroup.procs"):
            os.chown(path, user[0], user[1])
        rt.cgroup = f"{d}/shell"
        yield name
    finally:
        rt.cleanup()
        rt.ids = []
        for sub in sorted((e.path for e in os.scandir(d) if e.is_dir()), reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass
        os.rmdir(d)


def test_a_delegated_cgroup_v2_subtree_gets_the_limits(rt, delegated):
    cfg = rt.spec()
    cfg["linux"]["resources"] = {"memory": {"limit": 48 << 20}, "pids": {"limit": 17}}
    cid = rt.new_id()
    cfg["linux"]["cgroupsPath"] = f"/{delegated}/{cid}"
    b = rt.bundle("sleep", "300", config=cfg)
    rt("run", "-d", "--bundle", b, cid)
    pid = rt.state(cid)["pid"]
    cg = f"/sys/fs/cgroup/{delegated}/{cid}"
    assert read_first(f"/proc/{pid}/cgroup") == f"0::/{delegated}/{cid}"
    assert read_first(f"{cg}/memory.max") == str(48 << 20)
    assert read_first(f"{cg}/pids.max") == "17"
    rt("delete", "--force", cid)
    reap()
    assert not os.path.exists(cg)


def read_first(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_rootless_podman_runs_ociruntime_as_runc(user):
    """podman as the user (vfs storage, cgroupfs, --network none, an imported busybox image) with --runtime: it runs
    the runtime as root of its own user namespace, without one in config.json."""
    podman = shutil.which("podman")
    if not podman:
        pytest.skip("podman is not installed")
    work = tempfile.mkdtemp(prefix="ocirl-")
    os.chmod(work, 0o755)
    home, xdg = os.path.join(work, "home"), os.path.join(work, "xdg")
    os.makedirs(os.path.join(home, ".config", "containers"))
    os.mkdir(xdg, 0o700)
    with open(os.path.join(home, ".config", "containers", "storage.conf"), "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{work}/storage"\nrunroot = "{xdg}/storage"\n')
    with open(os.path.join(home, ".config", "containers", "containers.conf"), "w") as f:
        f.write('[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    subprocess.run(["tar", "-C", os.path.join(BASE_BUNDLE, "rootfs"), "-cf", f"{work}/bb.tar", "."], check=True)
    subprocess.run(["chown", "-R", f"{user[0]}:{user[1]}", work], check=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "XDG_RUNTIME_DIR": xdg,
           "USER": user[2]}

    def as_user(*args):
        return subprocess.run(list(args), capture_output=True, text=True, env=env, cwd=work, timeout=180,
                              user=user[0], group=user[1], extra_groups=[], stdin=subprocess.DEVNULL)
    try:
        p = as_user(podman, "import", f"{work}/bb.tar", "bb")
        if p.returncode != 0:
            pytest.skip(f"rootless podman cannot import an image here: {p.stderr.strip()[-300:]}")
        outs = {}
        for exe in RUNTIMES:
            p = as_user(podman, "--runtime", exe, "run", "--rm", "--network", "none", "localhost/bb:latest",
                        "sh", "-c", "id -u; cat /proc/self/uid_map | wc -l")
            assert p.returncode == 0, f"{exe}: {p.stderr}"
            outs[exe] = p.stdout.split()
        assert outs[EXE] == ["0", "2"], outs          # root, mapped: the user and a subordinate range
        assert len(set(map(tuple, outs.values()))) == 1, outs
    finally:
        try:
            with open(os.path.join(xdg, "libpod", "tmp", "pause.pid")) as f:
                os.kill(int(f.read().strip()), 9)      # podman's pause process keeps its user namespace
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
        reap()
        shutil.rmtree(work, ignore_errors=True)


def test_rootless_true_as_root_still_programs_the_device_cgroup(runtime, bundle, cid):
    """--rootless true run by real root (not in a user namespace) keeps the device policy: runc skips devices
    only in a user namespace, where they cannot be programmed; skipping them here gave the container every device."""
    import os
    if not os.path.isdir("/sys/fs/cgroup/devices"):
        pytest.skip("no cgroup v1 devices hierarchy (v2: a BPF program, not readable as a list)")
    bundle.set_args("sleep", "30").write()
    runtime("--rootless", "true", "create", "--bundle", bundle.path, cid)
    try:
        with open(f"/proc/{runtime.state(cid)['pid']}/cgroup") as f:
            path = next(ln.rstrip("\n").split(":", 2)[2] for ln in f if ":devices:" in ln)
        with open(f"/sys/fs/cgroup/devices{path}/devices.list") as f:
            rules = f.read().split("\n")
        assert "a *:* rwm" not in rules and "c 1:3 rwm" in rules, rules
    finally:
        runtime("delete", "--force", cid)
