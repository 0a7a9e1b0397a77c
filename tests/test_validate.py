"""config.json validation: the schema (types, REQUIRED, listed values) and the semantic MUSTs, with exact paths."""
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ociruntime.config.strict import validate_strict
from ociruntime.config.validate import validate
from ociruntime.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = REPO.parent / "shared" / "runtime-spec-v1.3.0"


# -- helpers (kept in this file) ---------------------------------------------------------------------------------

def runc_spec() -> dict:
    """What `runc spec` (runc 1.1.5) writes."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
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
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                            "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def typical_config() -> dict:
    """runc's spec plus the mounts, devices, resources, hooks and sysctls a container engine adds."""
    doc = runc_spec()
    doc["mounts"] += [
        {"destination": "/etc/resolv.conf", "type": "bind", "source": "/var/lib/x/resolv.conf",
         "options": ["rbind", "rprivate", "ro"]},
        {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts", "options": ["rbind", "ro"]},
        {"destination": "/data", "type": "none", "source": "/volumes/data", "options": ["rbind", "rw"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=64m"]},
    ]
    linux = doc["linux"]
    linux["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 438},
        {"path": "/dev/fifo", "type": "p"},
    ]
    linux["cgroupsPath"] = "/ociruntime/typical"
    linux["sysctl"] = {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"}
    linux["resources"].update({
        "memory": {"limit": 536870912, "reservation": 268435456, "swap": 1073741824, "swappiness": 0},
        "cpu": {"shares": 1024, "quota": 100000, "burst": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 1024},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 104857600}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
        "unified": {"memory.high": "400M"},
    })
    linux["resources"]["devices"] += [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
    ]
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                                     {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                      "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    doc["hooks"] = {"createRuntime": [{"path": "/usr/bin/netns-setup", "args": ["netns-setup", "up"]}],
                    "poststart": [{"path": "/usr/bin/notify", "timeout": 5}],
                    "poststop": [{"path": "/usr/bin/cleanup"}]}
    doc["annotations"] = {"com.example.a": "1", "org.opencontainers.image.os": "linux"}
    return doc


def userns_config() -> dict:
    """A rootless-style config: a new user namespace with mappings, as `runc spec --rootless` writes."""
    doc = typical_config()
    doc["linux"]["namespaces"].append({"type": "user"})
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    return doc


def error_of(doc, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        validate(doc, **kw)
    return str(info.value)


def mutated(mutate, base=typical_config):
    doc = base()
    mutate(doc)
    return doc


def _set(path, value):
    """A mutation setting doc[path...] = value (path: a tuple of keys/indexes)."""
    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _del(path):
    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


# -- accepting --------------------------------------------------------------------------------------------------

def test_runc_spec_output_is_valid():
    validate(runc_spec())


def test_typical_and_userns_configs_are_valid():
    validate(typical_config())
    validate(userns_config())


def test_spec_full_example_from_config_md_is_valid():
    text = (SPEC_DIR / "config.md").read_text() if (SPEC_DIR / "config.md").exists() else None
    if text is None:
        pytest.skip("shared/runtime-spec-v1.3.0 is absent")
    block = text.split("## Configuration Schema Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    validate(json.loads(block))


def test_unknown_properties_are_ignored_everywhere():
    doc = typical_config()
    doc["x-vendor"] = {"anything": [1, 2]}
    doc["process"]["x-extra"] = 5
    doc["linux"]["x-extra"] = None
    doc["linux"]["resources"]["x-extra"] = "y"
    doc["process"]["capabilities"]["x-extra"] = 7
    doc["windows"] = {"layerFolders": 7}         # other platforms' sections are not ours to check
    validate(doc)


def test_process_is_optional_when_not_creating():
    doc = mutated(_del(("process",)))
    validate(doc, for_create=False)
    assert error_of(doc) == "config.json: process: is required to create a container"


def test_relative_mount_destination_is_accepted_as_the_spec_allows_on_linux():
    validate(mutated(_set(("mounts", 0, "destination"), "proc")))


def test_new_user_namespace_without_mappings_is_rejected_naming_the_missing_field():
    doc = typical_config()
    doc["linux"]["namespaces"].append({"type": "user"})
    with pytest.raises(ConfigError, match=r"linux\.uidMappings: is required when linux\.namespaces creates"):
        validate(doc)
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    with pytest.raises(ConfigError, match=r"linux\.gidMappings: is required"):
        validate(doc)


def test_joined_user_namespace_needs_no_mappings():
    doc = typical_config()
    doc["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"})
    validate(doc)


@pytest.mark.parametrize("name", ["CAP_NOT_YET_INVENTED", "cap_kill", "KILL"])
def test_unknown_capability_names_are_left_to_the_capability_module(name):
    # config.md 1.3.0: an unknown capability MUST be logged as a warning and SHOULD NOT fail (runc warns, runs)
    validate(mutated(_set(("process", "capabilities", "bounding", 0), name)))


def test_hostname_with_joined_uts_namespace_is_accepted():
    validate(mutated(_set(("linux", "namespaces", 3), {"type": "uts", "path": "/proc/1/ns/uts"})))


def test_idmap_mount_with_its_own_mappings_or_a_user_namespace_is_accepted():
    ids = [{"containerID": 0, "hostID": 1000, "size": 1}]
    validate(mutated(_set(("mounts", 9), {"destination": "/data", "source": "/v", "options": ["rbind", "idmap"],
                                          "uidMappings": ids, "gidMappings": ids})))
    validate(mutated(_set(("mounts", 9, "options"), ["rbind", "ridmap"]), base=userns_config))


def test_time_offsets_with_new_time_namespace_are_accepted():
    doc = typical_config()
    doc["linux"]["namespaces"].append({"type": "time"})
    doc["linux"]["timeOffsets"] = {"monotonic": {"secs": 10, "nanosecs": 0}, "boottime": {"secs": -5}}
    validate(doc)


# -- schema violations: path and rule exactly --------------------------------------------------------------------

SCHEMA_CASES = [
    (_set(("linux", "namespaces", 2, "type"), "foo"),
     "linux.namespaces[2].type: 'foo' is not one of pid, network, mount, ipc, uts, user, cgroup, time"),
    (_set(("process", "user", "uid"), "0"), "process.user.uid: expected integer, got string"),
    (_set(("process", "user", "uid"), True), "process.user.uid: expected integer, got boolean"),
    (_set(("process", "user", "gid"), 1.0), "process.user.gid: expected integer, got number"),
    (_set(("process", "user", "uid"), -1), "process.user.uid: -1 is out of range 0..4294967295"),
    (_del(("process", "user", "gid")), "process.user.gid: is required"),
    (_del(("process", "cwd")), "process.cwd: is required"),
    (_del(("ociVersion",)), "ociVersion: is required"),
    (_del(("root",)), "root: is required"),
    (_del(("root", "path")), "root.path: is required"),
    (_set(("root", "readonly"), "yes"), "root.readonly: expected boolean, got string"),
    (_set(("mounts",), {}), "mounts: expected array, got object"),
    (_del(("mounts", 3, "destination")), "mounts[3].destination: is required"),
    (_set(("mounts", 1, "options", 2), 755), "mounts[1].options[2]: expected string, got integer"),
    (_set(("mounts", 0, "uidMappings"), [{"containerID": 0, "hostID": 0}]), "mounts[0].uidMappings[0].size: is required"),
    (_set(("process", "env", 1), None), "process.env[1]: expected string, got null"),
    (_set(("process", "consoleSize"), {"height": 25}), "process.consoleSize.width: is required"),
    (_set(("process", "rlimits", 0, "type"), "RLIMIT_FOO"), "process.rlimits[0].type: 'RLIMIT_FOO' is not one of "
     "RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, "
     "RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_RTPRIO, RLIMIT_RTTIME, RLIMIT_SIGPENDING, "
     "RLIMIT_STACK"),
    (_set(("process", "rlimits", 0, "hard"), 2**64), "process.rlimits[0].hard: 18446744073709551616 is out of range "
     "0..18446744073709551615"),
    (_set(("process", "capabilities", "ambient"), "CAP_KILL"),
     "process.capabilities.ambient: expected array, got string"),
    (_set(("process", "scheduler"), {"policy": "SCHED_FAST"}), "process.scheduler.policy: 'SCHED_FAST' is not one of "
     "SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE"),
    (_set(("process", "ioPriority"), {"class": "IOPRIO_CLASS_BE"}), "process.ioPriority.priority: is required"),
    (_set(("process", "execCPUAffinity"), {"final": "0-3,,7"}),
     "process.execCPUAffinity.final: '0-3,,7' must be a list like 0-3,7"),
    (_set(("process", "oomScoreAdj"), "100"), "process.oomScoreAdj: expected integer, got string"),
    (_set(("hostname",), 7), "hostname: expected string, got integer"),
    (_set(("hooks", "poststart", 0, "timeout"), 0), "hooks.poststart[0].timeout: 0 is less than the minimum 1"),
    (_del(("hooks", "poststop", 0, "path")), "hooks.poststop[0].path: is required"),
    (_set(("annotations", ""), "x"), "annotations: keys must not be empty"),
    (_set(("annotations", "com.example.a"), 1), "annotations['com.example.a']: expected string, got integer"),
    (_set(("linux", "sysctl", "net.core.somaxconn"), 256),
     "linux.sysctl['net.core.somaxconn']: expected string, got integer"),
    (_set(("linux", "namespaces", 0), "pid"), "linux.namespaces[0]: expected object, got string"),
    (_set(("linux", "devices", 0, "type"), "x"), "linux.devices[0].type: 'x' is not one of c, b, u, p"),
    (_set(("linux", "devices", 1, "uid"), -5), "linux.devices[1].uid: -5 is out of range 0..4294967295"),
    (_set(("linux", "uidMappings"), [{"containerID": 0, "hostID": 1000, "size": 2**32}]),
     "linux.uidMappings[0].size: 4294967296 is out of range 0..4294967295"),
    (_set(("linux", "timeOffsets"), {"monotonic": {"nanosecs": -1}}),
     "linux.timeOffsets.monotonic.nanosecs: -1 is out of range 0..4294967295"),
    (_set(("linux", "netDevices"), {"eth0": {"name": 0}}), "linux.netDevices['eth0'].name: expected string, got integer"),
    (_set(("linux", "rootfsPropagation"), "sideways"),
     "linux.rootfsPropagation: 'sideways' is not one of shared, slave, private, unbindable, rshared, rslave, rprivate, "
     "runbindable"),
    (_set(("linux", "resources", "devices", 0, "access"), "rwx"),
     "linux.resources.devices[0].access: 'rwx' must be a combination of r, w and m"),
    (_set(("linux", "resources", "devices", 1, "type"), "p"),
     "linux.resources.devices[1].type: 'p' is not one of a, c, b"),
    (_del(("linux", "resources", "devices", 0, "allow")), "linux.resources.devices[0].allow: is required"),
    (_set(("linux", "resources", "memory", "limit"), 2**63), "linux.resources.memory.limit: 9223372036854775808 is "
     "out of range -9223372036854775808..9223372036854775807"),
    (_set(("linux", "resources", "cpu", "cpus"), 3), "linux.resources.cpu.cpus: expected string, got integer"),
    (_set(("linux", "resources", "blockIO", "weight"), 70000),
     "linux.resources.blockIO.weight: 70000 is out of range 0..65535"),
    (_del(("linux", "resources", "blockIO", "weightDevice", 0, "weight")),
     "linux.resources.blockIO.weightDevice[0]: one of weight, leafWeight is required"),
    (_del(("linux", "resources", "blockIO", "throttleReadBpsDevice", 0, "rate")),
     "linux.resources.blockIO.throttleReadBpsDevice[0].rate: is required"),
    (_set(("linux", "resources", "hugepageLimits", 0, "pageSize"), "2M"),
     "linux.resources.hugepageLimits[0].pageSize: '2M' must be <size><unit-prefix>B, like 2MB"),
    (_set(("linux", "resources", "rdma"), {"mlx5_1": {}}),
     "linux.resources.rdma['mlx5_1']: one of hcaHandles, hcaObjects is required"),
    (_set(("linux", "resources", "unified", "memory.high"), 1),
     "linux.resources.unified['memory.high']: expected string, got integer"),
    (_set(("linux", "resources", "network", "priorities", 0), {"name": "eth0"}),
     "linux.resources.network.priorities[0].priority: is required"),
    (_set(("linux", "seccomp", "syscalls", 0, "names"), []), "linux.seccomp.syscalls[0].names: must have at least 1 entry"),
    (_set(("linux", "seccomp", "syscalls", 1, "args", 0, "op"), "EQ"), "linux.seccomp.syscalls[1].args[0].op: 'EQ' is "
     "not one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ"),
    (_del(("linux", "seccomp", "defaultAction")), "linux.seccomp.defaultAction: is required"),
    (_set(("linux", "personality"), {"flags": []}), "linux.personality.domain: is required"),
    (_set(("linux", "memoryPolicy"), {"mode": "MPOL_ANY"}), "linux.memoryPolicy.mode: 'MPOL_ANY' is not one of "
     "MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_LOCAL"),
    (_set(("linux", "intelRdt"), {"memBwSchema": "L3:0=ff"}),
     "linux.intelRdt.memBwSchema: 'L3:0=ff' must start with MB: and have no newlines"),
    (_set(("linux", "intelRdt"), {"memBwSchema": "MB:0=20\n"}),
     "linux.intelRdt.memBwSchema: 'MB:0=20\\n' must start with MB: and have no newlines"),
    (_set(("linux", "intelRdt"), {"schemata": ["L3:0=f\nMB:0=1"]}),
     "linux.intelRdt.schemata[0]: 'L3:0=f\\nMB:0=1' must not contain newlines"),
]


@pytest.mark.parametrize("mutate,message", SCHEMA_CASES, ids=[m.split(":")[0] for _, m in SCHEMA_CASES])
def test_schema_violation_names_path_and_rule(mutate, message):
    assert error_of(mutated(mutate)) == "config.json: " + message


def test_document_that_is_not_an_object_is_rejected_without_a_path():
    assert error_of([]) == "config.json: expected object, got array"


# -- semantic MUSTs ------------------------------------------------------------------------------------------------

def _append(path, value):
    def mutate(doc):
        node = doc
        for key in path:
            node = node.setdefault(key, []) if key == path[-1] else node[key]
        node.append(value)
    return mutate


def _both(*mutations):
    def mutate(doc):
        for m in mutations:
            m(doc)
    return mutate


SEMANTIC_CASES = [
    (_set(("ociVersion",), "1.0"), "ociVersion: '1.0' is not a SemVer 2.0.0 version"),
    (_set(("ociVersion",), "v1.0.0"), "ociVersion: 'v1.0.0' is not a SemVer 2.0.0 version"),
    (_set(("ociVersion",), "2.0.0"), "ociVersion: '2.0.0': major version 2 is not supported (1.x only)"),
    (_set(("process", "args"), []), "process.args: at least one entry is required"),
    (_del(("process", "args")), "process.args: at least one entry is required"),
    (_set(("process", "cwd"), "home"), "process.cwd: must be absolute"),
    (_append(("process", "rlimits"), {"type": "RLIMIT_NOFILE", "hard": 10, "soft": 10}),
     "process.rlimits[1].type: duplicate 'RLIMIT_NOFILE' (also rlimits[0])"),
    (_set(("process", "rlimits", 0, "soft"), 2048), "process.rlimits[0].soft: 2048 is greater than hard 1024"),
    (_set(("process", "oomScoreAdj"), 1001), "process.oomScoreAdj: 1001 is out of range -1000..1000"),
    (_set(("process", "ioPriority"), {"class": "IOPRIO_CLASS_BE", "priority": 8}),
     "process.ioPriority.priority: 8 is out of range 0..7"),
    (_append(("linux", "namespaces"), {"type": "pid"}), "linux.namespaces[5].type: duplicate 'pid' (also namespaces[0])"),
    (_set(("linux", "namespaces", 1, "path"), "var/run/netns/x"), "linux.namespaces[1].path: must be absolute"),
    (_set(("linux", "namespaces"), [{"type": "pid"}, {"type": "mount"}]),
     "hostname: requires a uts namespace in linux.namespaces"),
    (_both(_del(("hostname",)), _set(("domainname",), "example.org"), _set(("linux", "namespaces"), [{"type": "mount"}])),
     "domainname: requires a uts namespace in linux.namespaces"),
    (_set(("linux", "timeOffsets"), {"monotonic": {"secs": 1}}),
     "linux.timeOffsets: requires a new time namespace (no path) in linux.namespaces"),
    (_both(_append(("linux", "namespaces"), {"type": "time", "path": "/proc/1/ns/time"}),
           _set(("linux", "timeOffsets"), {"boottime": {"secs": 1}})),
     "linux.timeOffsets: requires a new time namespace (no path) in linux.namespaces"),
    (_both(_append(("linux", "namespaces"), {"type": "time"}), _set(("linux", "timeOffsets"), {"realtime": {"secs": 1}})),
     "linux.timeOffsets['realtime']: unknown clock (only monotonic, boottime)"),
    (_both(_set(("linux", "namespaces"), [{"type": "mount"}, {"type": "uts"}]),
           _set(("linux", "netDevices"), {"eth1": {}})),
     "linux.netDevices: requires a network namespace in linux.namespaces"),
    (_set(("linux", "namespaces"), [{"type": "uts"}]), "linux.maskedPaths: requires a mount namespace in linux.namespaces"),
    (_both(_del(("linux", "maskedPaths")), _set(("linux", "namespaces"), [{"type": "uts"}])),
     "linux.readonlyPaths: requires a mount namespace in linux.namespaces"),
    (_set(("linux", "devices", 0, "path"), "dev/fuse"), "linux.devices[0].path: must be absolute"),
    (_del(("linux", "devices", 0, "major")), "linux.devices[0].major: is required for type 'c'"),
    (_set(("linux", "devices", 2), {"path": "/dev/u", "type": "u", "major": 1}),
     "linux.devices[2].minor: is required for type 'u'"),
    (_set(("linux", "devices", 1, "fileMode"), 0o10666),
     "linux.devices[1].fileMode: 4534 has bits beyond permissions (max 4095 = 0o7777)"),
    (_set(("mounts", 2, "uidMappings"), [{"containerID": 0, "hostID": 1000, "size": 1}]),
     "mounts[2].gidMappings: is required with uidMappings"),
    (_set(("mounts", 2, "gidMappings"), [{"containerID": 0, "hostID": 1000, "size": 1}]),
     "mounts[2].uidMappings: is required with gidMappings"),
    (_set(("mounts", 9, "options"), ["rbind", "idmap"]),
     "mounts[9].options: 'idmap' needs uidMappings/gidMappings or a user namespace"),
    (_set(("linux", "maskedPaths", 3), "proc/keys"), "linux.maskedPaths[3]: must be absolute"),
    (_set(("linux", "readonlyPaths", 0), "proc/bus"), "linux.readonlyPaths[0]: must be absolute"),
    (_set(("linux", "seccomp", "listenerMetadata"), "x"),
     "linux.seccomp.listenerMetadata: must not be set without listenerPath"),
    (_set(("linux", "seccomp", "syscalls", 0, "errnoRet"), 1),
     "linux.seccomp.syscalls[0].errnoRet: is not allowed with action SCMP_ACT_ALLOW"),
    (_set(("linux", "seccomp", "defaultAction"), "SCMP_ACT_KILL"),
     "linux.seccomp.defaultErrnoRet: is not allowed with defaultAction SCMP_ACT_KILL"),
    (_set(("linux", "resources", "cpu", "burst"), 200000),
     "linux.resources.cpu.burst: 200000 is greater than quota 100000"),
    (_set(("linux", "personality"), {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
     "linux.personality.flags[0]: 'ADDR_NO_RANDOMIZE' is not supported (the spec defines no flags)"),
]


@pytest.mark.parametrize("mutate,message", SEMANTIC_CASES, ids=[m.split(":")[0] for _, m in SEMANTIC_CASES])
def test_semantic_violation_names_path_and_rule(mutate, message):
    doc = mutated(mutate)
    assert error_of(doc) == "config.json: " + message
    validate(doc, semantic=False)       # the schema alone accepts it: these are rules beyond the schema


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                                  "poststop"])
def test_every_hook_kind_needs_an_absolute_path(kind):
    doc = typical_config()
    doc["hooks"][kind] = [{"path": "/bin/true"}, {"path": "bin/true"}]
    assert error_of(doc) == f"config.json: hooks.{kind}[1].path: must be absolute"


def test_cpu_burst_is_free_when_quota_is_unlimited():
    validate(mutated(_both(_set(("linux", "resources", "cpu", "quota"), -1),
                           _set(("linux", "resources", "cpu", "burst"), 10**9))))


# -- the bundle's rootfs ---------------------------------------------------------------------------------------

def test_relative_root_path_resolves_against_bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    validate(typical_config(), bundle=str(tmp_path))


def test_missing_rootfs_directory_is_rejected(tmp_path):
    msg = error_of(typical_config(), bundle=str(tmp_path))
    assert msg == f"config.json: root.path: {str(tmp_path / 'rootfs')!r} is not a directory"


def test_rootfs_that_is_a_file_is_rejected(tmp_path):
    (tmp_path / "rootfs").write_text("")
    assert error_of(typical_config(), bundle=str(tmp_path)).startswith("config.json: root.path: ")


def test_absolute_root_path_ignores_bundle(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    doc = mutated(_set(("root", "path"), str(tmp_path / "elsewhere")))
    validate(doc, bundle="/nonexistent-bundle")


# -- strict mode ------------------------------------------------------------------------------------------------

def test_strict_reports_every_schema_error_in_validate_format():
    doc = typical_config()
    doc["process"]["user"]["uid"] = "0"
    doc["linux"]["namespaces"][2]["type"] = "foo"
    del doc["process"]["cwd"]
    doc["linux"]["sysctl"]["kernel.x"] = 1
    errors = validate_strict(doc)
    assert sorted(errors) == sorted([
        "config.json: process.cwd: is required",
        "config.json: process.user.uid: expected integer, got string",
        "config.json: linux.namespaces[2].type: 'foo' is not one of pid, network, mount, ipc, uts, user, cgroup, "
        "time",
        "config.json: linux.sysctl['kernel.x']: expected string, got integer",
    ])
    assert error_of(doc) in errors


@pytest.mark.parametrize("mutate,message", SCHEMA_CASES, ids=[m.split(":")[0] for _, m in SCHEMA_CASES])
def test_strict_says_what_validate_says_for_each_schema_rule(mutate, message):
    assert validate_strict(mutated(mutate)) == ["config.json: " + message]


def test_strict_reports_semantic_errors_once_the_schema_passes():
    doc = typical_config()
    doc["process"]["cwd"] = "rel"
    doc["linux"]["maskedPaths"][0] = "proc"
    assert validate_strict(doc) == ["config.json: process.cwd: must be absolute",
                                    "config.json: linux.maskedPaths[0]: must be absolute"]
    assert validate_strict(typical_config()) == []


# -- cost -------------------------------------------------------------------------------------------------------

def test_validate_median_of_200_calls_under_3ms():
    doc = typical_config()
    times = []
    for _ in range(200):
        start = time.perf_counter()
        validate(doc)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.003


def _run_python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env,
                          cwd=str(REPO)).stdout


def test_validate_never_imports_jsonschema():
    code = ("import sys, json\n"
            "from ociruntime.config.validate import validate\n"
            "from ociruntime.errors import ConfigError\n"
            f"doc = json.loads({json.dumps(json.dumps(typical_config()))})\n"
            "validate(doc)\n"
            "doc['linux']['namespaces'][0]['type'] = 'bad'\n"
            "try:\n    validate(doc)\nexcept ConfigError:\n    pass\n"
            "import ociruntime.config.strict\n"       # importing strict must not load it either: only calling it
            "print('jsonschema' in sys.modules, 'referencing' in sys.modules)\n")
    assert _run_python(code).split() == ["False", "False"]


def test_validate_module_imports_quickly():
    code = ("import time, json, ociruntime.errors\n"
            "t = time.perf_counter()\n"
            "import ociruntime.config.validate\n"
            "print(time.perf_counter() - t)\n")
    # generous bound (no .pyc in this environment: it includes compiling the source); the cost is ~1 ms with .pyc
    assert float(_run_python(code)) < 0.05


def test_validate_does_not_mutate_the_document():
    doc = typical_config()
    before = copy.deepcopy(doc)
    validate(doc, for_create=True)
    assert doc == before


def test_project_schema_is_itself_a_valid_draft7_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from ociruntime.config.schema import CONFIG_SCHEMA
    jsonschema.Draft7Validator.check_schema(CONFIG_SCHEMA)


def test_strict_on_a_document_that_is_not_an_object():
    assert validate_strict([]) == ["config.json: expected object, got array"]


def test_every_subschema_compiles_although_compilation_is_lazy():
    from ociruntime.config.validate import check_schema_compiles
    assert check_schema_compiles() > 100
