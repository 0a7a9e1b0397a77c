"""Linux security modules: process.apparmorProfile, process.selinuxLabel, linux.mountLabel.

A label asked for on a host without that LSM is an error, never silently ignored. The process labels take effect
at execve: they are written to /proc/thread-self/attr/... just before it."""
import os

from ..errors import RuntimeErr, SyscallError
from ..fastos import write_file

APPARMOR_PARAM = "/sys/module/apparmor/parameters/enabled"
APPARMOR_FS = "/sys/kernel/security/apparmor"
SELINUX_MNTS = ("/sys/fs/selinux", "/selinux")


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace").strip().rstrip("\0")
    except OSError:
        return None


def apparmor_enabled() -> bool:
    """AppArmor is loaded and enabled (securityfs shows it and the module parameter says Y), as runc checks."""
    return os.path.isdir(APPARMOR_FS) and (_read(APPARMOR_PARAM) or "").startswith("Y")


def _selinuxfs_mounted() -> bool:
    if any(os.path.exists(f"{m}/enforce") for m in SELINUX_MNTS):
        return True
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            return any(b" - selinuxfs " in line for line in f)
    except OSError:
        return False


def selinux_enabled() -> bool:
    """SELinux is active: selinuxfs is mounted and this process has a context that is not 'kernel'."""
    if not _selinuxfs_mounted():
        return False
    con = _read("/proc/thread-self/attr/current") or _read("/proc/self/attr/current")
    return bool(con) and con != "kernel"


def check(process, mount_label: str | None) -> None:
    """Fail early, naming the field, when a label needs an LSM the host does not run."""
    if process is not None and process.apparmor_profile and not apparmor_enabled():
        raise RuntimeErr(f"process.apparmorProfile {process.apparmor_profile!r}: AppArmor is not enabled on this "
                         f"host ({APPARMOR_PARAM} is not Y or {APPARMOR_FS} is missing)")
    if process is not None and process.selinux_label and not selinux_enabled():
        raise RuntimeErr(f"process.selinuxLabel {process.selinux_label!r}: SELinux is not enabled on this host "
                         "(no selinuxfs mounted)")
    if mount_label and not selinux_enabled():
        raise RuntimeErr(f"linux.mountLabel {mount_label!r}: SELinux is not enabled on this host "
                         "(no selinuxfs mounted)")


def _write_attr(proc_root: str, names: tuple, value: str, field: str) -> None:
    """Write `value` to the first of /proc/thread-self/attr/<name> that exists (one write, as the LSMs need)."""
    base = f"{proc_root}/thread-self/attr"
    if not os.path.isdir(base):
        base = f"{proc_root}/self/attr"
    paths = [f"{base}/{n}" for n in names]
    path = next((p for p in paths if os.path.exists(p)), paths[-1])
    try:
        write_file(path, value.encode(), os.O_NOFOLLOW)
    except OSError as e:
        raise SyscallError("write", f"{path} ({field}={value!r})", e.errno) from None


def apply_key_label(process, *, proc_root: str = "/proc") -> None:
    """SELinux: label the keys this process creates (call before joining the session keyring, as runc)."""
    if process is not None and process.selinux_label:
        _write_attr(proc_root, ("keycreate",), process.selinux_label, "process.selinuxLabel")


def apply_exec_labels(process, *, proc_root: str = "/proc") -> None:
    """Label the next execve: AppArmor 'exec <profile>' (the stacked attr/apparmor/exec when present, else
    attr/exec); SELinux the label to attr/exec, and to attr/keycreate for the session keyring."""
    if process is None:
        return
    if process.apparmor_profile:
        _write_attr(proc_root, ("apparmor/exec", "exec"), f"exec {process.apparmor_profile}",
                    "process.apparmorProfile")
    if process.selinux_label:
        apply_key_label(process, proc_root=proc_root)
        _write_attr(proc_root, ("exec",), process.selinux_label, "process.selinuxLabel")
