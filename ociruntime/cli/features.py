SUMMARY = "show the enabled features"
USAGE = ""
DESCRIPTION = """
Prints the runtime-spec "features" document (features.md, features-linux.md): what this build supports,
read from the same tables the runtime applies configs with."""
OPTIONS = ()
NARGS = (0, 0)


def features() -> dict:
    from .. import SPEC_VERSION
    from ..config.schema import NAMESPACE_TYPES
    from ..linux import capabilities, mounts, procattrs, seccomp
    from ..linux.hooks import KINDS
    opts = sorted(set(mounts.FLAGS) | set(mounts.BINDS) | set(mounts.PROPAGATION) | set(mounts.RECURSIVE)
                  | set(mounts.EXTENSIONS))
    try:
        seccomp.preload()
        sc_enabled = True
    except Exception:  # noqa: BLE001 — libseccomp missing: say so rather than fail
        sc_enabled = False
    known_flags = sorted(seccomp.FLAGS)
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(KINDS),
        "mountOptions": opts,
        "linux": {
            "namespaces": sorted(NAMESPACE_TYPES),     # runc lists them sorted
            "capabilities": list(capabilities.NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True, "rdma": True},
            "seccomp": {"enabled": sc_enabled, "actions": sorted(seccomp.ACTIONS),
                        "operators": sorted(seccomp.OPERATORS), "archs": sorted(seccomp.ARCHES),
                        "knownFlags": known_flags, "supportedFlags": known_flags if sc_enabled else []},
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "memoryPolicy": {"modes": sorted(procattrs.MPOL_MODES), "flags": sorted(procattrs.MPOL_FLAGS)},
            "intelRdt": {"enabled": True, "schemata": True, "monitoring": True},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        "annotations": {"org.opencontainers.runtime-spec.features.version": SPEC_VERSION,
                        "io.github.ociruntime.version": __import__("ociruntime").__version__,
                        # checkpoint/restore are implemented (they need a working criu at run time, as runc's);
                        # runc's key, the one its clients read
                        "org.opencontainers.runc.checkpoint.enabled": "true"},
    }


def run(g, o, args):
    from ..fastjson import dumps
    from . import out
    out(dumps(features(), indent=4) + "\n")
    return 0
