"""--systemd-cgroup: runc's systemd driver places containers in transient scopes over systemd's D-Bus API
(StartTransientUnit on org.freedesktop.systemd1). This runtime has no D-Bus client and this machine no systemd, so
the option fails with a clear message rather than silently falling back to the cgroupfs driver."""
import os

from .common import SystemdCgroupUnavailable


def parse_path(cgroups_path: str | None, container_id: str) -> tuple[str, str, str]:
    """"slice:prefix:name" (runc's format) -> its three parts; none given -> ("", "runc", id)."""
    if not cgroups_path:
        return "", "runc", container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise SystemdCgroupUnavailable(f'linux.cgroupsPath: expected "slice:prefix:name" for systemd cgroups, '
                                       f'got {cgroups_path!r}')
    return parts[0], parts[1], parts[2]


def manager_for(cgroups_path: str | None, container_id: str):
    parse_path(cgroups_path, container_id)
    running = os.path.isdir("/run/systemd/system")
    why = "this runtime has no systemd D-Bus client" if running else "systemd is not running on this host"
    raise SystemdCgroupUnavailable(f"--systemd-cgroup: the systemd cgroup driver is not available: {why}; "
                                   f"run without --systemd-cgroup to use the cgroupfs driver")
