"""Run one bundle under runc (the control) and ociruntime; turn what the process inside saw into comparable sections.

The container's process is `sh -c PROBE`: it prints, section by section, what it observes (environment, cwd, ids,
capabilities, NoNewPrivs/Seccomp, umask, rlimits, mountinfo, /dev, hostname, cgroups, namespaces, ...), then exits
with the config's exit code. Hooks write their stdin (the state) and whether they inherited the runtime's
environment to files. `observe()` parses all of it and replaces what legitimately differs between two runs
(bundle paths, cgroup names, mount ids, peer group numbers, namespace inodes) by placeholders, so two
`Observation`s compare section by section with `==`.
"""
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

from conformance.rootfs import copy_rootfs
from conformance.sandbox import run_pty

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BASE_ROOTFS = os.path.join(REPO, "build", "bundle", "rootfs")
RUN_TIMEOUT = 20
# The runtime's environment carries this: a hook given no `env` shows whether it inherited the runtime's
ENV_MARK = "OCIRT_DIFF_MARK"

CGROUP_FILES = ("memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes", "memory/memory.swappiness",
                "memory/memory.soft_limit_in_bytes", "memory/memory.kmem.tcp.limit_in_bytes",
                "memory/memory.oom_control", "pids/pids.max", "cpu/cpu.shares", "cpu/cpu.cfs_quota_us",
                "cpu/cpu.cfs_period_us", "cpuset/cpuset.cpus", "cpuset/cpuset.mems", "devices/devices.list",
                "freezer/freezer.state", "hugetlb/hugetlb.2MB.limit_in_bytes", "net_cls/net_cls.classid",
                "net_prio/net_prio.ifpriomap", "unified/cgroup.controllers")

PROBE = r"""
s() { echo "@@@ $1"; }
st=/proc/$$/status
s env; env | grep -v '^PWD=\|^SHLVL=\|^_=' | sort
s cwd; readlink /proc/$$/cwd
s status; cat $st
s rlimits; tail -n +2 /proc/$$/limits | tr -s ' '
s pid; echo "pid=$$"
s oom; cat /proc/$$/oom_score_adj
s hostname; hostname; cat /proc/sys/kernel/domainname
s namespaces; ls -l /proc/$$/ns
s mounts; cat /proc/$$/mountinfo
s dev; stat -c '%N %F %a %u %g %t,%T' /dev/* /dev/.[!.]* /dev/pts/* /dev/shm/* /dev/mqueue/* 2>/dev/null
s cgroup; cat /proc/$$/cgroup
cd /sys/fs/cgroup 2>/dev/null && grep -H '' CGROUP_FILES 2>/dev/null; cd /
s sysctl; cd /proc/sys && grep -H '' net/ipv4/ip_forward net/ipv4/ping_group_range kernel/shm_rmid_forced kernel/msgmax net/core/somaxconn 2>&1; cd /
s writable; for d in / /tmp /dev /dev/shm /proc/sys /sys /sys/fs/cgroup /etc /vol /rovol; do [ -d $d ] || continue; if ( : > $d/.probe ) 2>/dev/null; then echo "$d rw"; p="$p $d/.probe"; else echo "$d ro"; fi; done; [ -z "$p" ] || rm -f $p
s extra
EXTRA
s end
exit EXIT
""".replace("CGROUP_FILES", " ".join(CGROUP_FILES))

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def probe_args(exit_code=0, extra=":"):
    return ["sh", "-c", PROBE.replace("EXTRA", extra).replace("EXIT", str(exit_code))]


@dataclass
class Observation:
    runtime: str
    rc: int
    stdout: str
    stderr: str
    sections: dict = field(default_factory=dict)

    def section(self, name):
        return self.sections.get(name)

    def describe(self):
        return f"{self.runtime}: exit {self.rc}\nstderr: {self.stderr.strip()[-1500:]}\nstdout tail: {self.stdout[-800:]}"


def hooks_for(out_dir_in_container, bundle, env=None):
    """Hooks of every kind; each writes its stdin and environment to a file: runtime-namespace hooks to
    BUNDLE/hooks/, createContainer (container namespaces, before pivot_root: the host's paths) to {out},
    startContainer (after pivot_root: the container's paths) to the /out volume."""
    hooks = {}
    for kind in HOOK_KINDS:
        d = {"createContainer": "{out}", "startContainer": out_dir_in_container}.get(kind,
                                                                                  os.path.join(bundle, "hooks"))
        h = {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {d}/{kind}.json; env > {d}/{kind}.env"]}
        if env is not None:
            h["env"] = env
        hooks[kind] = [h]
    return hooks


class Normaliser:
    """What legitimately differs between the two runs, replaced by placeholders."""

    def __init__(self, replacements, host_ns):
        self.replacements = sorted(replacements.items(), key=lambda kv: -len(kv[0]))
        self.host_ns = host_ns

    def text(self, s):
        for old, new in self.replacements:
            if old:
                s = s.replace(old, new)
        return s

    def mountinfo(self, lines):
        out = []
        for line in lines:
            f = line.split()
            if len(f) < 7 or "-" not in f:
                continue
            sep = f.index("-")
            optional = sorted(o.split(":")[0] for o in f[6:sep])
            root, mp, opts = self.text(f[3]), f[4], f[5]
            fstype, source, superopts = f[sep + 1], self.text(f[sep + 2]), f[sep + 3] if len(f) > sep + 3 else ""
            out.append(f"{mp} root={root} opts={opts} prop={','.join(optional) or 'private'} "
                       f"type={fstype} src={source} super={superopts}")
        return sorted(out)

    def namespaces(self, lines):
        out = []
        for line in lines:
            name, _, link = line.partition(" ")
            out.append(f"{name} {'host' if link == self.host_ns.get(name) else ('new' if link else 'none')}")
        return out


def parse(stdout):
    sections, cur = {}, None
    for line in stdout.replace("\r\n", "\n").splitlines():
        if line.startswith("@@@ "):
            cur = line[4:].strip()
            sections[cur] = []
        elif cur is not None:
            sections[cur].append(line)
    return sections


def host_namespaces():
    out = {}
    for n in ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts"):
        try:
            out[n] = os.readlink(f"/proc/self/ns/{n}")
        except OSError:
            pass
    return out


def _hooks_seen(bundle, out_dir, norm):
    states, envs = {}, {}
    for kind in HOOK_KINDS:
        base = os.path.join(out_dir if kind in ("createContainer", "startContainer") else
                            os.path.join(bundle, "hooks"), kind)
        for _ in range(40 if kind == "poststop" else 1):  # poststop may still be writing when run returns
            if os.path.exists(base + ".json"):
                break
            time.sleep(0.05)
        try:
            with open(base + ".json") as f:
                raw = f.read()
        except FileNotFoundError:
            continue
        try:
            st = json.loads(norm.text(raw))
        except ValueError:
            states[kind] = f"not JSON: {raw[:200]!r}"
            continue
        if isinstance(st, dict) and "pid" in st:
            st["pid"] = "<pid>" if isinstance(st["pid"], int) and st["pid"] > 0 else st["pid"]
        states[kind] = st
        try:
            with open(base + ".env") as f:
                env = f.read().splitlines()
        except FileNotFoundError:
            env = []
        envs[kind] = sorted(e for e in env if e.startswith((ENV_MARK + "=", "PATH=", "HOOKVAR=")))
    return states, envs


MOUNTPOINTS = ("vol", "rovol", "out", "run/.containerenv", "etc/hostname", "etc/hosts")


def shared_rootfs(workdir):
    """One copy of the busybox rootfs for every run of the session (copying it per run costs ~0.3 s on a busy
    machine): the mount points the corpus uses exist already, so no runtime has to create them, and no probe
    writes to it (the writable check removes what it touched)."""
    rootfs = os.path.join(workdir, "rootfs")
    if not os.path.isdir(rootfs):
        copy_rootfs(BASE_ROOTFS, rootfs)
        for m in MOUNTPOINTS:
            p = os.path.join(rootfs, m)
            if "." in os.path.basename(m) or m.startswith("etc/"):
                open(p, "a").close()
            else:
                os.makedirs(p, exist_ok=True)
    return rootfs


def observe(runtime, binary, config, workdir, cid, cgroup, prepare=None, subst=None, own_mount_ns=False,
            terminal_size=(24, 80)):
    """Run `config` (a dict; "{bundle}", "{out}", "{cgroup}" and each "{KEY}" of `subst` in its strings are
    replaced) under `binary` with a private --root and the session's rootfs; `prepare(bundle)` writes the files
    the config names. Returns (Observation, bundle dir, out dir)."""
    base = os.path.join(workdir, runtime, cid)
    bundle, out, root = os.path.join(base, "bundle"), os.path.join(base, "out"), os.path.join(base, "root")
    for d in (bundle, out, root, os.path.join(bundle, "hooks")):
        os.makedirs(d, exist_ok=True)
    os.chmod(base, 0o755)
    os.chmod(root, 0o700)   # as runc's default /run/runc and `mktemp -d` make it
    rootfs = shared_rootfs(workdir)
    text = json.dumps(config).replace("{bundle}", bundle).replace("{out}", out).replace("{cgroup}", cgroup)
    for key, value in (subst or {}).items():
        text = text.replace("{%s}" % key, value)
    cfg = json.loads(text)
    cfg["root"]["path"] = rootfs
    if prepare is not None:
        prepare(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    argv = [binary, "--root", root, "run", "--bundle", bundle, cid]
    if own_mount_ns:
        # the container inherits the runtime's mount namespace: give the runtime a throw-away one (with /proc in
        # the rootfs), since runc binds the rootfs onto itself there and leaves it
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'mount --rbind /proc "{rootfs}/proc" && exec "$@"', "sh", *argv]
    env = {**os.environ, ENV_MARK: "1"}
    terminal = cfg.get("process", {}).get("terminal", False)
    try:
        if terminal:
            rc, stdout = run_pty(argv, RUN_TIMEOUT, rows=terminal_size[0], cols=terminal_size[1], env=env)
            stderr = stdout
        else:
            with open(os.path.join(base, "stdout"), "w+") as o, open(os.path.join(base, "stderr"), "w+") as e:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=RUN_TIMEOUT, env=env)
                o.seek(0)
                e.seek(0)
                rc, stdout, stderr = p.returncode, o.read(), e.read()
    finally:
        subprocess.run([binary, "--root", root, "delete", "--force", cid], capture_output=True, timeout=RUN_TIMEOUT)
    return Observation(runtime, rc, stdout, stderr), bundle, out


def sections_of(obs, bundle, out, norm, terminal, probe=True, with_hooks=False):
    """The comparable sections of one run."""
    raw = parse(obs.stdout)
    s = {}
    status = [" ".join(x.split()) for x in raw.pop("status", [])]
    for name, keys in (("ids", ("Uid:", "Gid:", "Groups:")), ("caps", ("Cap",)),
                       ("security", ("NoNewPrivs:", "Seccomp:", "Seccomp_filters:")), ("umask", ("Umask:",))):
        if status:
            raw[name] = [x for x in status if x.startswith(keys)]
    if "namespaces" in raw:   # `ls -l`: "... name -> type:[inode]"
        raw["namespaces"] = [f"{x.split(' -> ')[0].split()[-1]} {x.split(' -> ')[1]}" for x in raw["namespaces"]
                             if " -> " in x]
    for name in ("env", "cwd", "ids", "caps", "security", "umask", "rlimits", "pid", "oom", "hostname", "cgroup",
                 "sysctl", "writable", "extra"):
        if name in raw:
            s[name] = [norm.text(x) for x in raw[name]]
    if "cgroup" in s:
        # the device rules apart (the kernel lists them in the order they were written: compare as a set)
        devices = [x for x in s["cgroup"] if x.startswith("devices/devices.list:")]
        s["cgroup"] = sorted(x for x in s["cgroup"] if x not in devices)
        s["devices"] = sorted(x.split(":", 1)[1] for x in devices)
    if "dev" in raw:
        s["dev"] = sorted(norm.text(x) for x in raw["dev"])
    if "mounts" in raw:
        s["mounts"] = norm.mountinfo(raw["mounts"])
    if "namespaces" in raw:
        s["namespaces"] = norm.namespaces(raw["namespaces"])
    # a run that did not reach the probe's end: the runtime refused (or the probe died); compare only that
    if probe:
        s["exit"] = obs.rc if "end" in raw else ("runtime-failed" if obs.rc != 0 else "no-output")
    else:
        s["exit"] = obs.rc
    if terminal:
        s["tty"] = {"crlf": "\r\n" in obs.stdout}
    hooks, hook_env = _hooks_seen(bundle, out, norm) if with_hooks else ({}, {})
    if hooks:
        s["hooks"] = hooks
        s["hook_env"] = hook_env
    obs.sections = s
    return obs


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
