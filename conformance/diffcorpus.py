"""The differential suite's corpus: configurations shaped like what real callers send to a runtime.

Each `Case` is one config.json (a dict built here, with "{bundle}", "{out}" and "{cgroup}" filled in per run) and
the process is always the differential probe (`differential.probe_args`). The shapes follow, field by field, what
the callers write (read from their sources, not copied): `runc spec` and `runc spec --rootless` (1.1.5, verbatim),
containerd 1.6's CRI plugin (populateDefaultUnixSpec + the CRI container/sandbox options: the 14 default
capabilities, /run and /etc/{hosts,hostname,resolv.conf} binds, /dev/termination-log, volume propagation
rprivate/rslave/rshared, devices deny-all + allow list, masked/read-only paths, oomScoreAdj, resources), Docker 20.10
(moby's default spec + daemon options), podman 4 (libpod's defaults: 11 capabilities, nofile/nproc, /run/.containerenv,
annotations, ping_group_range sysctl), CRI-O (rprivate root, bind options), and the spec's edge cases.

Paths and ids that cannot be the caller's (the sandbox's /etc/hosts, the pod's namespace paths) are files and
namespaces this suite makes; cgroupsPath is always relative (below the test's own cgroups).
"""
import copy
import os
from dataclasses import dataclass, field

from conformance.differential import hooks_for, probe_args

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUNC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
# moby/containerd's default set (oci/caps/defaults.go, containerd's oci.defaultUnixCaps)
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
               "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
               "CAP_AUDIT_WRITE"]
# podman 4's containers.conf default_capabilities
PODMAN_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
               "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]
RUNC_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
               "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
RUNC_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
CRI_MASKED = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
              "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
CRI_READONLY = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# containerd's / moby's default device allow list (after a deny-all)
DEFAULT_DEVICE_RULES = [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 136, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}]


@dataclass
class Case:
    name: str
    caller: str                       # whose shape: runc-spec, containerd-cri, docker, podman, crio, spec-edge
    config: dict
    prepare: object = None            # prepare(bundle, rootfs): files the config needs in the bundle's copy
    xfail: dict = field(default_factory=dict)     # section -> "issue 9 item N: why" (being fixed now)
    needs: tuple = ()                 # session resources: "shared" (a shared mount), "pod" (namespaces to join)
    runc_refuses: bool = False        # runc is expected not to start it (the case tests the refusal)
    own_mount_ns: bool = False        # run the runtime in a throw-away mount namespace (no mount namespace cases)


def _caps(names, ambient=False, inheritable=False):
    c = {"bounding": list(names), "effective": list(names), "permitted": list(names)}
    if ambient:
        c["ambient"] = list(names)
    if inheritable:
        c["inheritable"] = list(names)
    return c


def runc_spec():
    """`runc spec` 1.1.5, verbatim (terminal: true, ambient capabilities, cgroup mount)."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {"terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"], "env": [PATH_ENV, "TERM=xterm"],
                    "cwd": "/", "capabilities": _caps(RUNC_CAPS, ambient=True),
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}],
        "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
                  "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                  "maskedPaths": list(RUNC_MASKED), "readonlyPaths": list(RUNC_READONLY)}}


def runc_spec_rootless():
    """`runc spec --rootless` 1.1.5 as root: a user namespace mapping 0 to 0, /sys bind, no network namespace."""
    c = runc_spec()
    c["mounts"][2]["options"].remove("gid=5")
    c["mounts"][5] = {"destination": "/sys", "type": "none", "source": "/sys",
                      "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    c["linux"] = {"uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}],
                  "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}],
                  "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")],
                  "maskedPaths": list(RUNC_MASKED), "readonlyPaths": list(RUNC_READONLY)}
    return c


def _etc_files(bundle):
    """The files a caller bind-mounts over /etc (containerd's sandbox dir, podman's userdata, docker's
    containers/<id>/) and a termination log."""
    d = os.path.join(bundle, "callerfiles")
    os.makedirs(d, exist_ok=True)
    for name, text in (("hosts", "127.0.0.1 localhost\n"), ("hostname", "pod\n"),
                       ("resolv.conf", "nameserver 127.0.0.53\n"), ("termination-log", ""),
                       (".containerenv", 'engine="podman-4.3.1"\nname="c"\n')):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    os.makedirs(os.path.join(bundle, "volume"), exist_ok=True)
    # a bind source only the host's root can reach (a user-namespaced container's root cannot)
    private = os.path.join(bundle, "private")
    os.makedirs(os.path.join(private, "data"), exist_ok=True)
    with open(os.path.join(private, "data", "secret"), "w") as f:
        f.write("only-root\n")
    os.chmod(private, 0o700)


def _bind(dest, src, opts):
    return {"destination": dest, "type": "bind", "source": src, "options": list(opts)}


def containerd_cri(propagation=None, readonly_root=False, privileged=False):
    """A CRI container as containerd 1.6 writes it (sandbox-less: the namespaces are new unless a case joins a
    pod's), with a volume whose propagation is `propagation` (CRI's mountPropagation: None -> rprivate,
    HostToContainer -> rslave, Bidirectional -> rshared)."""
    caps = DOCKER_CAPS
    c = {
        "ociVersion": "1.0.2-dev",
        "process": {"user": {"uid": 0, "gid": 0, "additionalGids": [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]},
                    "args": ["/pause"], "env": [PATH_ENV, "HOSTNAME=pod", "KUBERNETES_SERVICE_HOST=10.96.0.1"],
                    "cwd": "/", "capabilities": _caps(caps),
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                    "noNewPrivileges": False, "oomScoreAdj": 1000},
        "root": {"path": "rootfs", "readonly": readonly_root},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            _bind("/etc/hosts", "{bundle}/callerfiles/hosts", ["rbind", "rprivate", "rw"]),
            _bind("/dev/termination-log", "{bundle}/callerfiles/termination-log", ["rbind", "rprivate", "rw"]),
            _bind("/etc/hostname", "{bundle}/callerfiles/hostname", ["rbind", "rprivate", "rw"]),
            _bind("/etc/resolv.conf", "{bundle}/callerfiles/resolv.conf", ["rbind", "rprivate", "rw"]),
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            _bind("/out", "{out}", ["rbind", "rprivate", "rw"])],
        "annotations": {"io.kubernetes.cri.container-type": "container",
                        "io.kubernetes.cri.container-name": "app", "io.kubernetes.cri.sandbox-id": "0" * 64},
        "linux": {
            "resources": {"devices": copy.deepcopy(DEFAULT_DEVICE_RULES),
                          "memory": {"limit": 268435456, "swap": 268435456},
                          "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                          "pids": {"limit": 512}},
            "cgroupsPath": "{cgroup}",
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": list(CRI_MASKED), "readonlyPaths": list(CRI_READONLY)}}
    if propagation is not None:
        c["mounts"].append(_bind("/vol", "{shared}", ["rbind", propagation, "rw"]))
        if propagation in ("rshared", "rslave"):  # CRI sets the root's propagation to match (WithMounts)
            c["linux"]["rootfsPropagation"] = propagation
    if privileged:
        c["process"]["capabilities"] = _caps(held_capabilities())
        c["linux"].pop("maskedPaths")
        c["linux"].pop("readonlyPaths")
        c["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
        c["mounts"][4]["options"] = ["nosuid", "noexec", "nodev", "rw"]
        c["mounts"][5]["options"] = ["nosuid", "noexec", "nodev", "relatime", "rw"]
    return c


# in capability number order (linux/capability.h)
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
            "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
            "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
            "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE"]


def held_capabilities():
    """The capabilities this process holds (its bounding set): a privileged config asks for these, as a caller
    running with fewer than all (this machine's root lacks CAP_SYS_RESOURCE) would get."""
    try:
        with open("/proc/self/status") as f:
            bnd = int(next(line.split()[1] for line in f if line.startswith("CapBnd:")), 16)
    except (OSError, StopIteration, ValueError):
        return list(ALL_CAPS)
    return [c for i, c in enumerate(ALL_CAPS) if bnd >> i & 1]




def docker():
    """Docker 20.10's spec for `docker run` (moby daemon/oci_linux.go + oci/defaults.go): /dev/shm as a
    tmpfs, the 14 capabilities, binds of the container's hosts/hostname/resolv.conf, cgroup v1 mount."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"],
                    "env": [PATH_ENV, "HOSTNAME=0123456789ab"], "cwd": "/",
                    "capabilities": _caps(DOCKER_CAPS), "oomScoreAdj": 0},
        "root": {"path": "rootfs"},
        "hostname": "0123456789ab",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
            _bind("/etc/resolv.conf", "{bundle}/callerfiles/resolv.conf", ["rbind", "rprivate"]),
            _bind("/etc/hostname", "{bundle}/callerfiles/hostname", ["rbind", "rprivate"]),
            _bind("/etc/hosts", "{bundle}/callerfiles/hosts", ["rbind", "rprivate"]),
            _bind("/out", "{out}", ["rbind", "rprivate"])],
        "linux": {
            "resources": {"devices": copy.deepcopy(DEFAULT_DEVICE_RULES), "blkioWeightDevice": [],
                          "memory": {"disableOOMKiller": False}},
            "cgroupsPath": "{cgroup}",
            "namespaces": [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")],
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                            "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]}}


def podman():
    """podman 4.3's spec for `podman run` as root (libpod + containers-common defaults): 11 capabilities,
    nofile/nproc rlimits, /run/.containerenv, ping_group_range, the libpod annotations, cgroup namespace host."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {"user": {"uid": 0, "gid": 0, "umask": 18}, "args": ["sh"],
                    "env": [PATH_ENV, "TERM=xterm", "container=podman", "HOSTNAME=c", "HOME=/root"], "cwd": "/",
                    "capabilities": _caps(PODMAN_CAPS),
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                                {"type": "RLIMIT_NPROC", "hard": 4096, "soft": 4096}],
                    "oomScoreAdj": 0},
        "root": {"path": "rootfs"},
        "hostname": "c",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            _bind("/etc/hosts", "{bundle}/callerfiles/hosts", ["bind", "rprivate"]),
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["rw", "nosuid", "nodev", "noexec", "relatime", "size=65536k"]},
            _bind("/etc/hostname", "{bundle}/callerfiles/hostname", ["bind", "rprivate"]),
            _bind("/run/.containerenv", "{bundle}/callerfiles/.containerenv", ["bind", "rprivate"]),
            _bind("/etc/resolv.conf", "{bundle}/callerfiles/resolv.conf", ["bind", "rprivate"]),
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]},
            _bind("/out", "{out}", ["bind", "rprivate"])],
        "annotations": {"io.container.manager": "libpod", "io.podman.annotations.autoremove": "TRUE",
                        "org.opencontainers.image.stopSignal": "15"},
        "linux": {
            "sysctl": {"net.ipv4.ping_group_range": "0 0"},
            "resources": {"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 2048}},
            "cgroupsPath": "{cgroup}",
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                            "/sys/fs/selinux", "/sys/dev/block"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"]}}


def crio():
    """CRI-O 1.2x's container spec: rootfsPropagation rprivate, binds with bind/nodev/nosuid/noexec, /run tmpfs."""
    c = containerd_cri()
    c["linux"]["rootfsPropagation"] = "rprivate"
    c["process"]["oomScoreAdj"] = 1000
    c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/etc/hosts", "/etc/hostname",
                                                                      "/etc/resolv.conf", "/dev/termination-log")]
    c["mounts"] += [{"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                    _bind("/etc/hosts", "{bundle}/callerfiles/hosts", ["rw", "bind", "nodev", "nosuid", "noexec"]),
                    _bind("/etc/resolv.conf", "{bundle}/callerfiles/resolv.conf",
                          ["ro", "bind", "nodev", "nosuid", "noexec"]),
                    _bind("/etc/hostname", "{bundle}/callerfiles/hostname", ["rw", "bind"])]
    c["annotations"] = {"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.Name": "app"}
    return c


def _with(config, fn):
    c = copy.deepcopy(config)
    fn(c)
    return c


def _set(path, value):
    def fn(c):
        d = c
        keys = path.split(".")
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        d[keys[-1]] = value
    return fn


def _drop_ns(kind):
    def fn(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != kind]
    return fn


def _noterm(c):
    c["process"]["terminal"] = False


def _add_mount(m):
    def fn(c):
        c["mounts"].append(m)
    return fn


def _several(*fns):
    def fn(c):
        for f in fns:
            f(c)
    return fn


ITEM = {n: f"issue 9 item {n}" for n in range(1, 18)}
# issue 9 items not on main yet: only their xfails apply (a landed item's difference must be gone; remove it here
# when its fix lands)
IN_FLIGHT = {16}


def _in_flight(reason):
    import re
    m = re.match(r"issue 9 item (\d+)", reason)
    return m is None or int(m.group(1)) in IN_FLIGHT
PROP_XFAIL = {"exit": ITEM[1] + ": rootfsPropagation spellings refused / not applied",
              "mounts": ITEM[1] + ": rootfsPropagation not applied to /"}


# probe additions of some edge cases (the `extra` section)
EXTRA = {"userns-bind-under-private-dir": "cat /vol/secret; stat -c '%u %g %a' /vol /vol/secret",
         "seccomp-denylist": "mkdir /tmp/sc 2>&1; echo mkdir=$?; hostname x 2>&1; echo sethostname=$?",
         "terminal-user-nobody": "tty; stat -c '%u %g %a' $(tty)"}


def corpus():
    """Every Case, with the probe as its process. Known differences that issue 9's items 1-17 fix are xfail with
    the item; HOME (item 3) and the terminal (item 9) are marked where the config triggers them."""
    plain = _with(runc_spec(), _noterm)
    cases = [
        Case("runc-spec", "runc-spec", runc_spec()),
        Case("runc-spec-noterminal", "runc-spec", plain),
        Case("runc-spec-rootless", "runc-spec", _with(runc_spec_rootless(), _noterm)),
        Case("runc-spec-rootless-terminal", "runc-spec", runc_spec_rootless()),
        Case("containerd-cri", "containerd-cri", containerd_cri()),
        Case("containerd-cri-rprivate-volume", "containerd-cri", containerd_cri("rprivate"), needs=("shared",)),
        Case("containerd-cri-rslave-volume", "containerd-cri", containerd_cri("rslave"), xfail=dict(PROP_XFAIL),
             needs=("shared",)),
        Case("containerd-cri-rshared-volume", "containerd-cri", containerd_cri("rshared"), xfail=dict(PROP_XFAIL),
             needs=("shared",)),
        Case("containerd-cri-readonly-root", "containerd-cri", containerd_cri(readonly_root=True)),
        Case("containerd-cri-privileged", "containerd-cri", containerd_cri(privileged=True)),
        Case("containerd-cri-user-nobody", "containerd-cri",
             _with(containerd_cri(), _set("process.user", {"uid": 65534, "gid": 65534, "additionalGids": [65534]}))),
        Case("containerd-cri-pod-namespaces", "containerd-cri",
             _with(containerd_cri(), _set("linux.namespaces",
                                          [{"type": "pid"}, {"type": "mount"},
                                           {"type": "ipc", "path": "{pod_ipc}"}, {"type": "uts", "path": "{pod_uts}"},
                                           {"type": "network", "path": "{pod_net}"}])),
             needs=("pod",)),
        Case("docker-run", "docker", docker()),
        Case("docker-run-user-workdir", "docker",
             _with(docker(), _several(_set("process.user", {"uid": 65534, "gid": 65534}),
                                      _set("process.cwd", "/tmp"), _set("process.env", [PATH_ENV, "HOME=/"])))),
        Case("docker-run-readonly-tmpfs", "docker",
             _with(docker(), _several(_set("root.readonly", True),
                                      _add_mount({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                                  "options": ["rw", "nosuid", "nodev", "noexec", "mode=1777"]})))),
        Case("docker-run-memory-pids-cpuset", "docker",
             _with(docker(), _set("linux.resources", {"devices": copy.deepcopy(DEFAULT_DEVICE_RULES),
                                                      "memory": {"limit": 33554432, "swap": 67108864,
                                                                 "reservation": 16777216},
                                                      "pids": {"limit": 100},
                                                      "cpu": {"shares": 256, "cpus": "0", "mems": "0"}}))),
        Case("docker-run-rshared-volume", "docker",
             _with(docker(), _several(_add_mount(_bind("/vol", "{shared}", ["rbind", "rshared"])),
                                      _set("linux.rootfsPropagation", "rshared"))),
             xfail=dict(PROP_XFAIL), needs=("shared",)),
        Case("docker-run-rslave-volume", "docker",
             _with(docker(), _several(_add_mount(_bind("/vol", "{shared}", ["rbind", "rslave"])),
                                      _set("linux.rootfsPropagation", "rslave"))),
             xfail=dict(PROP_XFAIL), needs=("shared",)),
        Case("docker-run-privileged", "docker",
             _with(docker(), _several(_set("process.capabilities", _caps(held_capabilities())),
                                      _set("linux.maskedPaths", []), _set("linux.readonlyPaths", []),
                                      _set("linux.resources.devices", [{"allow": True, "access": "rwm"}])))),
        Case("podman-run", "podman", podman()),
        Case("podman-run-user", "podman",
             _with(podman(), _several(_set("process.user", {"uid": 65534, "gid": 65534, "umask": 63,
                                                             "additionalGids": [0]}),
                                      _set("process.cwd", "/tmp")))),
        Case("crio-rprivate", "crio", crio(), xfail=dict(PROP_XFAIL)),
        Case("crio-rslave-volume", "crio",
             _with(crio(), _several(_add_mount(_bind("/vol", "{shared}", ["rbind", "rslave", "rw"])),
                                    _set("linux.rootfsPropagation", "rslave"))),
             xfail=dict(PROP_XFAIL), needs=("shared",)),
    ]
    for c in cases:
        c.config["process"]["args"] = probe_args()
    # the spec's edge cases, on `runc spec` without a terminal
    edge = [
        ("rootfs-propagation-private", _set("linux.rootfsPropagation", "private"), {"mounts": PROP_XFAIL["mounts"]}),
        ("rootfs-propagation-slave", _set("linux.rootfsPropagation", "slave"), {"mounts": PROP_XFAIL["mounts"]}),
        ("rootfs-propagation-shared", _set("linux.rootfsPropagation", "shared"), {"mounts": PROP_XFAIL["mounts"]}),
        ("rootfs-propagation-unbindable", _set("linux.rootfsPropagation", "unbindable"), dict(PROP_XFAIL)),
        ("rootfs-propagation-runbindable", _set("linux.rootfsPropagation", "runbindable"), dict(PROP_XFAIL)),
        ("no-mount-namespace", _several(_drop_ns("mount"), _set("mounts", []), _set("linux.maskedPaths", []),
                                        _set("linux.readonlyPaths", [])),
         {"exit": ITEM[2] + ": no mount namespace refused"}),
        ("cwd-missing", _set("process.cwd", "/does/not/exist"), {"exit": ITEM[4] + ": missing cwd not created"}),
        ("user-nobody", _set("process.user", {"uid": 65534, "gid": 65534}), {}),
        ("user-groups-umask", _set("process.user", {"uid": 1000, "gid": 1000, "umask": 63,
                                                    "additionalGids": [5, 1000, 65534]}), {}),
        ("unknown-capability", _set("process.capabilities", _caps(RUNC_CAPS + ["CAP_NO_SUCH_THING"])),
         {"exit": ITEM[5] + ": an unknown capability is a warning"}),
        ("no-capabilities", _set("process.capabilities", {}), {}),
        ("all-capabilities-even-unheld", _set("process.capabilities", _caps(ALL_CAPS)), {}),
        ("inheritable-ambient", _set("process.capabilities", _caps(["CAP_NET_RAW", "CAP_KILL"], ambient=True,
                                                                  inheritable=True)), {}),
        ("no-new-privileges-off", _set("process.noNewPrivileges", False), {}),
        ("readonly-dev", lambda c: c["mounts"][1]["options"].append("ro"), {"exit": ITEM[7] + ": read-only /dev"}),
        ("rlimits-several", _set("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 512},
                                                     {"type": "RLIMIT_NPROC", "hard": 2000, "soft": 1000},
                                                     {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
                                                     {"type": "RLIMIT_STACK", "hard": 16777216, "soft": 8388608},
                                                     {"type": "RLIMIT_MEMLOCK", "hard": 65536, "soft": 65536}]), {}),
        ("no-rlimits", _set("process.rlimits", []), {}),
        ("sysctls", _set("linux.sysctl", {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1",
                                          "net.core.somaxconn": "1024", "kernel.msgmax": "16384"}), {}),
        ("hostname-and-sysctl-conflict", _set("linux.sysctl", {"kernel.hostname": "other"}),
         {"exit": ITEM[11] + ": kernel.hostname sysctl next to hostname is refused"}),
        ("domainname", _set("domainname", "example.org"), {}),
        ("env-duplicates-and-odd", _set("process.env", [PATH_ENV, "A=1", "A=2", "EMPTY=", "SPACES=a b  c",
                                                        "EQ=x=y"]), {}),
        ("masked-and-readonly-extra", _several(
            _set("linux.maskedPaths", RUNC_MASKED + ["/proc/cpuinfo", "/sys/kernel", "/does/not/exist"]),
            _set("linux.readonlyPaths", RUNC_READONLY + ["/etc", "/does/not/exist/either"])), {}),
        ("tmpfs-options", _add_mount({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                      "options": ["nosuid", "nodev", "noexec", "mode=700", "size=1m", "uid=1000",
                                                  "gid=1000", "nr_inodes=100"]}), {}),
        ("bind-ro-and-recursive", _several(_add_mount(_bind("/rovol", "{out}", ["rbind", "ro", "nosuid"])),
                                           _add_mount(_bind("/vol", "{bundle}/callerfiles",
                                                            ["bind", "rw", "noatime"]))), {}),
        ("oom-score-adj", _set("process.oomScoreAdj", 500), {}),
        ("cgroup-namespace", lambda c: c["linux"]["namespaces"].append({"type": "cgroup"}), {}),
        ("readonly-root-false", _set("root.readonly", False), {}),
        ("devices-explicit", _several(
            _set("linux.devices", [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
                                    "uid": 0, "gid": 0},
                                   {"path": "/dev/mydisk", "type": "b", "major": 7, "minor": 0, "fileMode": 432}]),
            _set("linux.resources.devices", [{"allow": False, "access": "rwm"},
                                             {"allow": True, "type": "c", "major": 10, "minor": 229,
                                              "access": "rw"}])), {}),
        ("cgroup-resources", _set("linux.resources", {"devices": [{"allow": False, "access": "rwm"}],
                                                      "memory": {"limit": 67108864, "reservation": 33554432,
                                                                 "swappiness": 10},
                                                      "cpu": {"shares": 100, "quota": 20000, "period": 50000},
                                                      "pids": {"limit": 64}}), {}),
        ("userns-mapped-range", _several(
            _set("linux.uidMappings", [{"containerID": 0, "hostID": 100000, "size": 65536}]),
            _set("linux.gidMappings", [{"containerID": 0, "hostID": 100000, "size": 65536}]),
            lambda c: c["linux"]["namespaces"].append({"type": "user"}),
            lambda c: c["mounts"].__setitem__(6, {"destination": "/sys/fs/cgroup", "type": "cgroup",
                                                  "source": "cgroup", "options": ["nosuid", "noexec", "nodev",
                                                                                  "relatime", "ro"]})), {}),
        ("terminal-user-nobody", _several(_set("process.terminal", True),
                                          _set("process.user", {"uid": 65534, "gid": 65534})), {}),
        ("seccomp-denylist", _set("linux.seccomp", {
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                                                 "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                         {"names": ["sethostname", "setdomainname"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}), {}),
        ("userns-bind-under-private-dir", _several(
            _set("linux.uidMappings", [{"containerID": 0, "hostID": 100000, "size": 65536}]),
            _set("linux.gidMappings", [{"containerID": 0, "hostID": 100000, "size": 65536}]),
            lambda c: c["linux"]["namespaces"].append({"type": "user"}),
            _add_mount(_bind("/vol", "{bundle}/private/data", ["rbind", "ro"]))), {}),
        ("hooks-with-env", None, {}),
        ("hooks-without-env", None, {"hook_env": ITEM[10] + ": hooks without env get the runtime's environment"}),
        ("exit-code-3", None, {}),
        ("killed-by-signal", None, {}),
        ("missing-binary", None, {}),
    ]
    for name, fn, xf in edge:
        cfg = _with(plain, fn) if fn is not None else copy.deepcopy(plain)
        cfg["process"]["args"] = probe_args(3 if name == "exit-code-3" else 0, EXTRA.get(name, ":"))
        if name == "killed-by-signal":   # not PID 1 of a pid namespace: SIGKILL from inside would not reach it
            cfg["process"]["args"] = ["sh", "-c", "kill -9 $$"]
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
        if name == "missing-binary":
            cfg["process"]["args"] = ["/no/such/binary"]
        if name.startswith("hooks-"):
            cfg["mounts"].append(_bind("/out", "{out}", ["rbind", "rw"]))
            cfg["hooks"] = hooks_for("/out", "{bundle}", env=[PATH_ENV, "HOOKVAR=1"] if name == "hooks-with-env"
                                     else None)
            xf = {**xf, "hooks": ITEM[13] + ": the state hooks see (ociVersion, status)"}
        # runc 1.1.5 refuses: the hostname conflict (on purpose), MS_UNBINDABLE on the rootfs before binding it
        # (EINVAL), capabilities it does not hold (this machine's root lacks some)
        refuses = name in ("hostname-and-sysctl-conflict", "rootfs-propagation-unbindable",
                           "rootfs-propagation-runbindable") or \
            (name == "all-capabilities-even-unheld" and set(ALL_CAPS) - set(held_capabilities()))
        cases.append(Case(name, "spec-edge", cfg, xfail=xf, runc_refuses=bool(refuses),
                          own_mount_ns=name == "no-mount-namespace"))
    for c in cases:
        c.prepare = _etc_files
        c.config["linux"].setdefault("cgroupsPath", "{cgroup}")  # relative: below the test's own cgroups
        env = c.config["process"].get("env", [])
        if not any(e.startswith("HOME=") for e in env):
            c.xfail.setdefault("env", ITEM[3] + ": HOME from /etc/passwd when process.env has none")
        if c.config["linux"].get("resources", {}).get("devices", [{}])[0].get("allow") is False:
            c.xfail.setdefault("devices", ITEM[12] + ": runc's default allow list has c 10:200 rwm (tun/tap)")
        if c.config["process"].get("terminal"):
            c.xfail.setdefault("tty", ITEM[9] + ": the foreground terminal keeps onlcr (\\r\\n)")
            c.xfail.setdefault("dev", ITEM[9] + ": the pty belongs to the process user")
        c.xfail = {k: v for k, v in c.xfail.items() if _in_flight(v)}
    return cases
