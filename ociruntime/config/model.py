"""Typed, frozen view of a validated config.json. Parse once at the edge; nothing downstream reads raw JSON,
except the opaque sub-documents handed whole to one driver (linux.resources -> cgroups, linux.seccomp -> seccomp).
"""
from .. import fastos as os
from ..record import factory, record


@record
class IdMap:
    container_id: int
    host_id: int
    size: int


@record
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple = ()
    uid_mappings: tuple = ()
    gid_mappings: tuple = ()


@record
class Namespace:
    type: str            # pid network mount ipc uts user cgroup time
    path: str | None = None


@record
class Device:
    path: str
    type: str            # c b u p
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@record
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple = ()


@record
class Rlimit:
    type: str            # RLIMIT_NOFILE ...
    soft: int
    hard: int


@record
class Capabilities:
    bounding: tuple | None = None
    effective: tuple | None = None
    permitted: tuple | None = None
    inheritable: tuple | None = None
    ambient: tuple | None = None


@record
class Process:
    args: tuple = ()
    cwd: str = "/"
    env: tuple = ()
    terminal: bool = False
    console_size: tuple | None = None          # (height, width)
    user: User = factory(User)
    capabilities: Capabilities | None = None
    rlimits: tuple = ()                          # of Rlimit
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    selinux_label: str | None = None
    oom_score_adj: int | None = None
    scheduler: dict | None = None
    io_priority: dict | None = None
    exec_cpu_affinity: dict | None = None


@record
class Hook:
    path: str
    args: tuple = ()
    env: tuple | None = None       # None: absent (the hook gets the runtime's environment); (): an empty one
    timeout: int | None = None


@record
class Hooks:
    prestart: tuple = ()
    create_runtime: tuple = ()
    create_container: tuple = ()
    start_container: tuple = ()
    poststart: tuple = ()
    poststop: tuple = ()


@record
class Linux:
    namespaces: tuple = ()                       # of Namespace
    uid_mappings: tuple = ()                     # of IdMap
    gid_mappings: tuple = ()
    time_offsets: dict | None = None
    devices: tuple = ()                          # of Device
    cgroups_path: str | None = None
    resources: dict | None = None                # handed whole to the cgroup driver
    rootfs_propagation: str | None = None
    masked_paths: tuple = ()
    readonly_paths: tuple = ()
    mount_label: str | None = None
    sysctl: dict | None = None
    seccomp: dict | None = None                  # handed whole to linux.seccomp
    personality: dict | None = None
    intel_rdt: dict | None = None
    net_devices: dict | None = None
    memory_policy: dict | None = None

    def namespace(self, nstype: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == nstype:
                return ns
        return None


@record
class Config:
    oci_version: str
    bundle: str                                  # absolute bundle directory
    root_path: str                               # absolute rootfs path
    root_readonly: bool = False
    mounts: tuple = ()                           # of Mount
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    hooks: Hooks = factory(Hooks)
    annotations: dict = factory(dict)
    linux: Linux = factory(Linux)


def _idmaps(items):
    return tuple(IdMap(m["containerID"], m["hostID"], m["size"]) for m in items or ())


def _hooks(items):
    return tuple(Hook(h["path"], tuple(h.get("args", ())), tuple(h["env"]) if "env" in h else None,
                      h.get("timeout"))
                 for h in items or ())


def _caps(c):
    if c is None:
        return None
    g = lambda k: tuple(c[k]) if k in c else None  # noqa: E731
    return Capabilities(g("bounding"), g("effective"), g("permitted"), g("inheritable"), g("ambient"))


def process_from_dict(p):
    if p is None:
        return None
    u = p.get("user", {})
    cs = p.get("consoleSize")
    return Process(
        args=tuple(p.get("args", ())), cwd=p.get("cwd", "/"), env=tuple(p.get("env", ())),
        terminal=bool(p.get("terminal", False)),
        console_size=(cs["height"], cs["width"]) if cs else None,
        user=User(u.get("uid", 0), u.get("gid", 0), u.get("umask"), tuple(u.get("additionalGids", ()))),
        capabilities=_caps(p.get("capabilities")),
        rlimits=tuple(Rlimit(r["type"], r["soft"], r["hard"]) for r in p.get("rlimits", ())),
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        apparmor_profile=p.get("apparmorProfile") or None, selinux_label=p.get("selinuxLabel") or None,
        oom_score_adj=p.get("oomScoreAdj"), scheduler=p.get("scheduler"), io_priority=p.get("ioPriority"),
        exec_cpu_affinity=p.get("execCPUAffinity"))


def from_dict(doc: dict, bundle: str) -> Config:
    """Build the typed config from an already validated config.json document."""
    bundle = os.path.abspath(bundle)
    root = doc.get("root", {})
    rpath = root.get("path", "rootfs")
    h = doc.get("hooks", {})
    lx = doc.get("linux", {})
    return Config(
        oci_version=doc["ociVersion"], bundle=bundle,
        root_path=os.path.normpath(os.path.join(bundle, rpath)), root_readonly=bool(root.get("readonly", False)),
        mounts=tuple(Mount(m["destination"], m.get("type"), m.get("source"), tuple(m.get("options", ())),
                           _idmaps(m.get("uidMappings")), _idmaps(m.get("gidMappings")))
                     for m in doc.get("mounts", ())),
        process=process_from_dict(doc.get("process")),
        hostname=doc.get("hostname"), domainname=doc.get("domainname"),
        hooks=Hooks(_hooks(h.get("prestart")), _hooks(h.get("createRuntime")), _hooks(h.get("createContainer")),
                    _hooks(h.get("startContainer")), _hooks(h.get("poststart")), _hooks(h.get("poststop"))),
        annotations=dict(doc.get("annotations", {})),
        linux=Linux(
            namespaces=tuple(Namespace(n["type"], n.get("path")) for n in lx.get("namespaces", ())),
            uid_mappings=_idmaps(lx.get("uidMappings")), gid_mappings=_idmaps(lx.get("gidMappings")),
            time_offsets=lx.get("timeOffsets"),
            devices=tuple(Device(d["path"], d["type"], d.get("major", 0), d.get("minor", 0), d.get("fileMode"),
                                 d.get("uid"), d.get("gid")) for d in lx.get("devices", ())),
            cgroups_path=lx.get("cgroupsPath"), resources=lx.get("resources"),
            rootfs_propagation=lx.get("rootfsPropagation"),
            masked_paths=tuple(lx.get("maskedPaths", ())), readonly_paths=tuple(lx.get("readonlyPaths", ())),
            mount_label=lx.get("mountLabel") or None, sysctl=lx.get("sysctl"), seccomp=lx.get("seccomp"),
            personality=lx.get("personality"), intel_rdt=lx.get("intelRdt"), net_devices=lx.get("netDevices"),
            memory_policy=lx.get("memoryPolicy")))


def load(bundle: str, validate=True, name: str = "config.json") -> tuple[Config, dict]:
    """Read <bundle>/config.json (or the file `name`, relative to the bundle: create/run --config), validate it
    (schema + semantic MUSTs), return (typed config, raw doc)."""
    from .. import fastjson
    from ..errors import ConfigError
    path = os.path.join(bundle, name)
    try:
        with open(path, "rb") as f:
            doc = fastjson.loads(f.read())
    except FileNotFoundError:
        raise ConfigError("", f"{path}: no such file (is --bundle right?)") from None
    except ValueError as e:
        raise ConfigError("", f"{path}: invalid JSON: {e}") from None
    if validate:
        from .validate import validate as _validate
        _validate(doc, bundle=bundle)
    return from_dict(doc, bundle), doc
