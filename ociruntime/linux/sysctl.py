"""linux.sysctl: only keys namespaced for the container may be set (else they would change the host), written to
/proc/sys inside the container's namespaces."""
from .. import fastos as os

from ..errors import ConfigError, SyscallError
from ..fastos import write_file

# key (dotted) or prefix ending in '.' -> the namespace type that makes it per-container
_IPC = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
        "kernel.shmmni", "kernel.shm_rmid_forced", "fs.mqueue.")
NAMESPACED = {**{k: "ipc" for k in _IPC}, "net.": "network", "kernel.hostname": "uts", "kernel.domainname": "uts"}


def _dotted(key: str) -> str:
    return key.replace("/", ".") if "/" in key else key


def _relpath(key: str) -> str:
    """sysctl(8) naming: with a '/' the key is a path (dots literal, e.g. an interface eth0.100), else dots."""
    return key.strip("/") if "/" in key else key.replace(".", "/")


def namespace_of(key: str) -> str | None:
    k = _dotted(key)
    for name, ns in NAMESPACED.items():
        if k == name or (name.endswith(".") and k.startswith(name)):
            return ns
    return None


def _is_host_ns(path: str, nstype: str) -> bool:
    try:
        a, b = os.stat(path), os.stat(f"/proc/self/ns/{nstype}")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check(sysctl: dict, namespaces: set, *, net_path: str | None = None) -> None:
    """Refuse keys the container's namespaces do not isolate. `namespaces`: types the container has (new or
    joined); `net_path`: the network namespace joined by path, refused when it is the runtime's own."""
    for key in sysctl or {}:
        rel = _relpath(key)
        if not rel or any(p in ("", ".", "..") for p in rel.split("/")):
            raise ConfigError(f"linux.sysctl.{key}", "not a sysctl name")
        ns = namespace_of(key)
        if ns is None:
            raise ConfigError(f"linux.sysctl.{key}", "not isolated by any kernel namespace: it would change the host")
        if ns not in namespaces:
            raise ConfigError(f"linux.sysctl.{key}", f"needs a {ns} namespace of its own; the container shares the "
                              f"host's (add {{\"type\": \"{ns}\"}} to linux.namespaces)")
        if ns == "network" and net_path and _is_host_ns(net_path, "net"):
            raise ConfigError(f"linux.sysctl.{key}", f"the network namespace {net_path} is the host's")


def apply(sysctl: dict, *, proc_root: str = "/proc", namespaces: set | None = None) -> None:
    """Write each value to <proc_root>/sys/<key>; run inside the container's namespaces. Keys no namespace
    isolates are refused here too (a second guard: they would change the host); with `namespaces`, check() first."""
    if namespaces is not None:
        check(sysctl, namespaces)
    for key, value in (sysctl or {}).items():
        if namespace_of(key) is None:
            raise ConfigError(f"linux.sysctl.{key}", "not isolated by any kernel namespace: it would change the host")
        path = f"{proc_root}/sys/{_relpath(key)}"
        try:
            write_file(path, str(value).encode(), os.O_NOFOLLOW)
        except OSError as e:
            raise SyscallError("write", f"{path} (linux.sysctl.{key}={value!r})", e.errno) from None
