"""Differential suite: the same bundle under runc (the control) and ociruntime; what the process inside observes
must be the same.

Each corpus case (conformance/diffcorpus.py: configs shaped like runc spec, containerd's CRI plugin, Docker,
podman, CRI-O and the spec's edge cases) runs once under each runtime with `run` (the probe of
conformance/differential.py prints what it sees), then one test per (case, section) compares the two after
normalising what legitimately differs (bundle paths, cgroup names, mount and peer-group ids, namespace inodes).
`test_state_json_through_the_lifecycle` compares `state` JSON and exit codes through create/start/kill/delete.

A difference is either fixed, or
* an xfail(strict=False) naming the issue 9 item (1-17) that is being fixed (diffcorpus.IN_FLIGHT; remove the
  item there when its fix lands), or
* an ACCEPTED difference below, with its reason (spec text or security).

Every run uses a private --root (0700), the session's one copy of the busybox rootfs and a relative cgroupsPath
(below this process's cgroups); the session checks that no cgroup or mount is left (the work dir, with every
--root, goes). Skips when runc (or the bundle) is missing.
"""
import copy
import json
import os
import re
import subprocess
import tempfile
import time
import uuid

import pytest

from conformance.differential import (BASE_ROOTFS, Normaliser, host_namespaces, observe, remove_tree,
                                      sections_of, shared_rootfs)
from conformance.diffcorpus import corpus
from conformance.runtimes import OCIRUNTIME, RUNTIMES
from conformance.sandbox import hierarchies, kill_and_wait

CASES = corpus()
RUNC = RUNTIMES["runc"]
TOKEN = uuid.uuid4().hex[:6]
CG_PREFIX = f"ocirt-diff-{TOKEN}"


# --- accepted differences ---------------------------------------------------------------------------------------
# Each: key -> (reason, sections it touches, fix(case, runtime, section, value, obs) -> value). `fix` rewrites
# exactly the accepted difference on one side (usually runc's) into the other's form, so everything else in the
# section is still compared.
def _cgroup_tmpfs_ro(case, runtime, section, value, obs):
    ro_cgroup = any(m.get("type") == "cgroup" and "ro" in m.get("options", ()) for m in case.config["mounts"])
    if runtime != "runc" or not ro_cgroup:
        return value
    if section == "mounts":  # the runtime's own tmpfs (src=tmpfs), not one that came with an rbind of /sys
        return [re.sub(r"^(/sys/fs/cgroup root=/ opts=)rw,(.* type=tmpfs src=tmpfs .*)$", r"\1ro,\2", x)
                for x in value]
    return ["/sys/fs/cgroup ro" if x == "/sys/fs/cgroup rw" else x for x in value]


def _domainname_ignored(case, runtime, section, value, obs):
    want = case.config.get("domainname")
    if runtime != "runc" or not want or len(value) < 2 or value[1] != "(none)":
        return value
    return [value[0], want]


def _mqueue_gid(case, runtime, section, value, obs):
    if runtime != "runc" or not any(n["type"] == "user" for n in case.config["linux"]["namespaces"]):
        return value
    return [re.sub(r"^(/dev/mqueue directory \d+ \d+) 65534 ", r"\1 0 ", x) for x in value]


def _systemd_source(case, runtime, section, value, obs):
    if runtime != "runc":
        return value
    return [x.replace("src=systemd super=rw,name=systemd", "src=cgroup super=rw,name=systemd") for x in value]


def _caps_not_held(case, runtime, section, value, obs):
    if runtime == "runc" and value == "runtime-failed" and "unable to apply caps: operation not permitted" in obs.stderr:
        return "started; capabilities the runtime lacks not granted"
    if runtime == "ociruntime" and value == 0 and "cannot grant" in obs.stderr:
        return "started; capabilities the runtime lacks not granted"
    return value


def _state_version(case, runtime, section, value, obs):
    for st in value.values():
        if isinstance(st, dict) and st.get("ociVersion"):
            st["ociVersion"] = "<the runtime's spec version>"
    return value


def _poststart_running(case, runtime, section, value, obs):
    st = value.get("poststart")
    if runtime == "runc" and isinstance(st, dict) and st.get("status") == "created":
        st["status"] = "running"
    return value


def _unbindable_root(case, runtime, section, value, obs):
    if runtime == "runc" and value == "runtime-failed" and \
            case.config["linux"].get("rootfsPropagation", "").endswith("unbindable") and \
            "error preparing rootfs" in obs.stderr and "invalid argument" in obs.stderr:
        return 0
    return value


def _root_propagation_applied(case, runtime, section, value, obs):
    if case.config["linux"].get("rootfsPropagation") not in ("shared", "rshared"):
        return value
    # both sides: the propagation of every mount but a volume from a shared host mount (compared as is) is left
    # out; flags, types, sources and the set of mounts are still compared
    return [x if x.startswith("/vol ") else re.sub(r" prop=\S+ ", " prop=(see ACCEPTED) ", x) for x in value]


def _readonly_root_without_mount_ns(case, runtime, section, value, obs):
    no_mnt = not any(n["type"] == "mount" for n in case.config["linux"]["namespaces"])
    if runtime != "runc" or not no_mnt or not case.config["root"].get("readonly"):
        return value
    return [x[:-3] + " ro" if x.endswith(" rw") else x for x in value]


def _masks_under_readonly_dev(case, runtime, section, value, obs):
    dev = next((m for m in case.config["mounts"] if m["destination"] == "/dev"), {})
    if runtime != "runc" or "ro" not in dev.get("options", ()):
        return value
    return [re.sub(r"^(/\S+ root=/null opts=)ro,", r"\1rw,", x) for x in value]


ACCEPTED = {
    "rootfs-propagation-applied": (
        "rootfsPropagation shared/rshared: config-linux.md 'sets the rootfs's mount propagation' and issue 9 item 1 "
        "asks for it on the container's / after pivot; ociruntime applies it, so / and the mounts made in the "
        "container are shared (each in a peer group of the container's own). runc 1.1.5 makes the rootfs mount "
        "private again before pivot_root (rootfsParentMountPrivate), so they end private (its binds of host "
        "mounts stay shared). Volumes from a shared host mount (CRI's Bidirectional) are shared under both and "
        "still compared.",
        ("mounts",), _root_propagation_applied),
    "readonly-root-without-mount-namespace": (
        "config.md root.readonly: 'If true then the root filesystem MUST be read-only inside the container'. "
        "Without a mount namespace runc 1.1.5 leaves it writable; ociruntime makes its private self-bind of the "
        "rootfs read-only (issue 9 item 2).", ("writable",), _readonly_root_without_mount_ns),
    "masked-files-under-readonly-dev": (
        "A read-only /dev: runc binds /dev/null over masked files after /dev went read-only, so those binds are "
        "ro; ociruntime masks before its final read-only remount of /dev (issue 9 item 7), so they are rw. Either "
        "way the file is /dev/null, which discards writes.", ("mounts",), _masks_under_readonly_dev),
    "unbindable-rootfs-starts": (
        "rootfsPropagation (r)unbindable: runc 1.1.5 sets MS_UNBINDABLE on the rootfs before it binds it and the "
        "kernel refuses the bind (EINVAL: 'error preparing rootfs'); config-linux.md lists unbindable as a valid "
        "value and issue 9 item 1 asks ociruntime to apply it last, so the container starts.",
        ("exit",), _unbindable_root),
    "state-ociVersion": (
        "runtime.md state `ociVersion`: the version of the spec 'with which the state complies': each runtime "
        "reports its own (runc 1.1.5: 1.0.2-dev, ociruntime: 1.3.0), not the config's (issue 9 item 13).",
        ("hooks",), _state_version),
    "poststart-sees-running": (
        "runtime.md lifecycle: poststart hooks run after the user-specified process has started, so the state "
        "they get says `running` (issue 9 item 13 asks for it); runc 1.1.5 passes the state it had before start "
        "(`created`).", ("hooks",), _poststart_running),
    "cgroup-v1-tmpfs-read-only": (
        "A cgroup mount with `ro` on a v1 host: ociruntime remounts the /sys/fs/cgroup tmpfs read-only (the option "
        "the config gives, config.md mounts[].options); runc 1.1.5 leaves it rw and only chmods it 0555, so a "
        "process with CAP_DAC_OVERRIDE (every CRI/Docker container) can create entries there under runc. Stricter "
        "on purpose (security).", ("mounts", "writable"), _cgroup_tmpfs_ro),
    "domainname-set": (
        "config.md `domainname`: 'specifies the container's domainname as seen by processes running inside the "
        "container'; ociruntime sets it, runc 1.1.5 ignores the field (the process sees '(none)').",
        ("hostname",), _domainname_ignored),
    "mqueue-owner-in-userns": (
        "With a user namespace, runc 1.1.5 mounts /dev/mqueue before its setgid(0), so the mount's root shows the "
        "unmapped host gid (overflow 65534); ociruntime's shows the container's root group (0). Mode 1777 either "
        "way: no access differs.", ("dev",), _mqueue_gid),
    "cgroupns-systemd-source": (
        "In a cgroup namespace runc names the source of the name=systemd hierarchy's mount `systemd`, ociruntime "
        "`cgroup` like every other hierarchy: a label in mountinfo, nothing else differs.",
        ("mounts",), _systemd_source),
    "capabilities-not-held": (
        "config.md process.capabilities: a capability that 'cannot be granted ... MUST be logged as a warning ... "
        "Runtimes SHOULD NOT fail'; runc 1.1.5 fails ('unable to apply caps') when the config asks for one the "
        "runtime does not hold (this machine's root lacks CAP_SYS_RESOURCE), ociruntime warns and starts.",
        ("exit",), _caps_not_held),
}


def _sections(case):
    """The sections a case compares: everything the probe prints, the terminal for terminal configs, the hooks'
    stdin/env for configs with hooks; only the exit status for processes that are not the probe."""
    args = case.config["process"]["args"]
    if args[:2] != ["sh", "-c"] or "@@@" not in args[2]:
        return ["exit"]
    names = ["exit", "env", "cwd", "ids", "caps", "security", "umask", "rlimits", "pid", "oom", "hostname",
             "namespaces", "mounts", "dev", "cgroup", "devices", "sysctl", "writable"]
    if "s extra\n:\n" not in args[2]:
        names.append("extra")
    if case.config["process"].get("terminal"):
        names.append("tty")
    if case.config.get("hooks"):
        names += ["hooks", "hook_env"]
    return names


def _params():
    out = []
    for case in CASES:
        for section in _sections(case):
            marks = []
            if section in case.xfail:
                marks.append(pytest.mark.xfail(reason=case.xfail[section], strict=False))
            out.append(pytest.param(case, section, marks=marks, id=f"{case.name}:{section}"))
    return out


@pytest.fixture(scope="session")
def diff_env():
    for path, why in ((OCIRUNTIME, "run `make deps`"), (RUNC, "apt-get install runc: the control"),
                      (os.path.join(BASE_ROOTFS, "bin", "busybox"), "run `make bundle`")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} missing: {why}")
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import ctypes
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: created containers' inits come back to us
    with open("/proc/self/mountinfo") as f:
        mounts_before = {line.split()[4] for line in f}
    work = tempfile.mkdtemp(prefix="ocirt-diff-", dir="/tmp")
    os.chmod(work, 0o755)
    env = {"work": work, "cache": {}, "host_ns": host_namespaces(), "subst": {}, "index": 0}
    # a shared mount (the source of the rslave/rshared volumes): a tmpfs with shared propagation
    shared = os.path.join(work, "shared")
    os.makedirs(shared)
    mounted = subprocess.run(["sh", "-c", f"mount -t tmpfs -o size=1m ocirt-diff {shared} && "
                                          f"mount --make-shared {shared} && touch {shared}/from-host"],
                             capture_output=True, text=True)
    env["subst"]["shared"] = shared if mounted.returncode == 0 else ""
    # a pod's namespaces (ipc, uts, net) held by a sleep, joined by path as CRI's containers join the sandbox's
    holder = subprocess.Popen(["unshare", "--ipc", "--uts", "--net", "sleep", "600"], stdin=subprocess.DEVNULL)
    for _ in range(100):
        if os.readlink(f"/proc/{holder.pid}/ns/net") != env["host_ns"].get("net"):
            break
        time.sleep(0.02)
    env["subst"].update({f"pod_{n}": f"/proc/{holder.pid}/ns/{n}" for n in ("ipc", "uts", "net")})
    try:
        yield env
    finally:
        kill_and_wait([holder.pid], grace=0.5)
        holder.wait()
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", shared], capture_output=True)
        left = _leftover_cgroups()
        for d in left:
            try:
                os.rmdir(d)
            except OSError:
                pass
        if os.environ.get("CONFORMANCE_KEEP") == "1":
            print(f"\ndifferential workdir kept: {work}")
        else:
            remove_tree(work)
        assert not left, f"cgroups left behind: {left}"
        with open("/proc/self/mountinfo") as f:
            mounts_left = {line.split()[4] for line in f} - mounts_before
        assert not mounts_left, f"mounts left behind: {sorted(mounts_left)}"


def _own_cgroup(hierarchy):
    name = os.path.basename(hierarchy)
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if (name == "unified" and ctrls == "") or name in ctrls.split(",") or name == ctrls or \
                    ctrls == f"name={name}":
                return path
    return "/"


def _leftover_cgroups():
    found = []
    for h in hierarchies():
        base = os.path.join(h, _own_cgroup(h).lstrip("/"))
        try:
            names = os.listdir(base)
        except OSError:
            continue
        found += [os.path.join(base, n) for n in names if n.startswith(CG_PREFIX)]
    return found


def _observe_case(env, case):
    """Both runtimes' observations of `case` (cached: every section test of the case shares one run each)."""
    if case.name in env["cache"]:
        return env["cache"][case.name]
    missing = [n for n in case.needs if n == "shared" and not env["subst"].get("shared")]
    if missing:
        env["cache"][case.name] = f"no shared mount for the volume (mount --make-shared failed)"
        return env["cache"][case.name]
    env["index"] += 1
    cid = f"diff{env['index']}-{TOKEN}"
    result = {}
    for rt, binary in (("runc", RUNC), ("ociruntime", OCIRUNTIME)):
        cgroup = f"{CG_PREFIX}-{rt}-{env['index']}"
        obs, bundle, out = observe(rt, binary, case.config, env["work"], cid, cgroup, prepare=case.prepare,
                                   subst=env["subst"], own_mount_ns=case.own_mount_ns)
        norm = Normaliser({bundle: "<BUNDLE>", out: "<OUT>", cgroup: "<CG>", env["work"]: "<WORK>",
                           **{v: f"<{k}>" for k, v in env["subst"].items() if v}}, env["host_ns"])
        result[rt] = sections_of(obs, bundle, out, norm, bool(case.config["process"].get("terminal")),
                                 probe=_sections(case) != ["exit"], with_hooks=bool(case.config.get("hooks")))
        remove_tree(os.path.join(env["work"], rt, cid))
    env["cache"][case.name] = result
    return result


def _accepted(case, runtime, section, obs):
    """`obs`'s section with every accepted difference rewritten (see ACCEPTED)."""
    value = copy.deepcopy(obs.sections.get(section))
    if value is None:
        return None
    for _, sections, fix in ACCEPTED.values():
        if section in sections:
            value = fix(case, runtime, section, value, obs)
    return value


@pytest.mark.parametrize("case,section", _params())
def test_process_observes_the_same(diff_env, case, section):
    obs = _observe_case(diff_env, case)
    if isinstance(obs, str):
        pytest.skip(obs)
    runc, ours = obs["runc"], obs["ociruntime"]
    if section == "exit" and _sections(case) != ["exit"]:   # the control did what this case expects of it
        ran = isinstance(runc.sections.get("exit"), int)
        assert ran != case.runc_refuses, f"the control: runc {'started' if ran else 'refused'} {case.name}\n" \
                                         f"{runc.describe()}"
    if section != "exit":
        refused = [o.runtime for o in (runc, ours) if not isinstance(o.sections.get("exit"), int)]
        if refused:
            pytest.skip(f"{', '.join(refused)} did not run the probe: compared by the exit section")
    want = _accepted(case, "runc", section, runc)
    got = _accepted(case, "ociruntime", section, ours)
    if want != got:
        pytest.fail(f"{case.caller} config {case.name!r}, section {section!r}: ociruntime differs from runc\n"
                    f"{_diff(want, got)}\n--- runc ---\n{runc.describe()}\n--- ociruntime ---\n{ours.describe()}",
                    pytrace=False)


def _diff(want, got):
    if isinstance(want, list) and isinstance(got, list):
        only_runc = [x for x in want if x not in got]
        only_ours = [x for x in got if x not in want]
        if only_runc or only_ours:
            return "only under runc:\n  " + "\n  ".join(map(str, only_runc)) + \
                   "\nonly under ociruntime:\n  " + "\n  ".join(map(str, only_ours))
    return f"runc:       {json.dumps(want, indent=None, sort_keys=True, default=str)}\n" \
           f"ociruntime: {json.dumps(got, indent=None, sort_keys=True, default=str)}"


# --- state JSON through the lifecycle ------------------------------------------------------------------------------
STATE_CASES = ("runc-spec-noterminal", "runc-spec-rootless", "containerd-cri", "docker-run", "podman-run")


def _lifecycle(env, rt, binary, case, index):
    """create, state, start, state, kill, state, delete, state: [(step, exit code, normalised JSON or None)]."""
    cid = f"life{index}-{TOKEN}"
    base = os.path.join(env["work"], rt, cid)
    bundle, out, root = (os.path.join(base, d) for d in ("bundle", "out", "root"))
    for d in (bundle, out, root):
        os.makedirs(d)
    cfg = json.loads(json.dumps(case.config).replace("{bundle}", bundle).replace("{out}", out)
                     .replace("{cgroup}", f"{CG_PREFIX}-{rt}-life{index}"))
    cfg["root"]["path"] = shared_rootfs(env["work"])
    cfg["process"]["args"] = ["sleep", "30"]
    cfg["process"]["terminal"] = False
    case.prepare(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    steps = []

    def call(step, *args):
        with open(os.path.join(base, "stdio"), "a") as o:
            p = subprocess.run([binary, "--root", root, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=o, text=True, timeout=20)
        doc = None
        if p.stdout.strip().startswith("{"):
            doc = json.loads(p.stdout)
            for key, ph in (("pid", "<pid>"), ("created", "<time>")):
                if doc.get(key):
                    doc[key] = ph
            for key in ("bundle", "rootfs"):
                if isinstance(doc.get(key), str):
                    doc[key] = doc[key].replace(bundle, "<BUNDLE>").replace(env["work"], "<WORK>")
            doc["ociVersion"] = "<version>" if doc.get("ociVersion") else doc.get("ociVersion")
        steps.append((step, p.returncode, doc))
        return p

    try:
        with open(os.path.join(base, "stdio"), "w") as o:
            p = subprocess.run([binary, "--root", root, "create", "--bundle", bundle, cid],
                               stdin=subprocess.DEVNULL, stdout=o, stderr=o, timeout=20)
        steps.append(("create", p.returncode, None))
        if p.returncode != 0:
            with open(os.path.join(base, "stdio")) as o:
                raise AssertionError(f"{rt} create failed: {o.read()[-1000:]}")
        call("state created", "state", cid)
        call("start", "start", cid)
        call("state running", "state", cid)
        call("kill", "kill", cid, "KILL")
        for _ in range(200):
            if '"stopped"' in call("poll", "state", cid).stdout:
                break
            time.sleep(0.02)
        steps[:] = [s for s in steps if s[0] != "poll"]
        call("state stopped", "state", cid)
        call("kill stopped", "kill", cid, "KILL")
        call("delete", "delete", cid)
        call("state deleted", "state", cid)
    finally:
        subprocess.run([binary, "--root", root, "delete", "--force", cid], capture_output=True, timeout=20)
        _reap()
        if os.environ.get("CONFORMANCE_KEEP") != "1":
            remove_tree(base)
    return steps


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.mark.parametrize("name", STATE_CASES)
def test_state_json_through_the_lifecycle(diff_env, name):
    """`state` after create, start, kill and delete, and each command's exit code, as runc (ociVersion's value
    differs on purpose: each runtime reports the spec version it implements, runtime.md `state`)."""
    case = next(c for c in CASES if c.name == name)
    diff_env["index"] += 1
    runc = _lifecycle(diff_env, "runc", RUNC, case, diff_env["index"])
    ours = _lifecycle(diff_env, "ociruntime", OCIRUNTIME, case, diff_env["index"])
    assert ours == runc, "\n".join(f"{a}\n{b}\n" for a, b in zip(runc, ours) if a != b)
