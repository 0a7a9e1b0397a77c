"""The project's own JSON Schema (draft 7 subset) for a Linux config.json, runtime-spec v1.3.0.

Written from the prose of config.md and config-linux.md: types, REQUIRED fields, listed values, value ranges.
Cross-field MUSTs (absolute paths, unique namespace types, soft <= hard ...) are not here but in validate.py's
semantic checks. Unknown properties are allowed everywhere (config.md "Extensibility": runtimes MUST ignore them).

Only these keywords are used, so validate.py can compile the schema into closures: type, properties, required,
additionalProperties (a schema, for maps), propertyNames ({"minLength": 1} only), items, minItems, enum, minimum,
maximum, pattern (ECMA semantics: `$` is the end of the string), anyOf (of {"required": [...]} clauses only),
plus the annotations description and x-rule (the error text used when a pattern fails).
"""

# -- integers, as the spec names them -------------------------------------------------------------------------
INT32 = {"type": "integer", "minimum": -2**31, "maximum": 2**31 - 1}
INT64 = {"type": "integer", "minimum": -2**63, "maximum": 2**63 - 1}
UINT16 = {"type": "integer", "minimum": 0, "maximum": 2**16 - 1}
UINT32 = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
UINT64 = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}
INT = {"type": "integer"}

STRING = {"type": "string"}
BOOL = {"type": "boolean"}
STRINGS = {"type": "array", "items": STRING}
STRING_MAP = {"type": "object", "additionalProperties": STRING}

# "a comma-separated list, with dashes to represent ranges. For example, `0-3,7`" (empty: leave as is)
CPU_LIST = {"type": "string", "pattern": r"^$|^ *[0-9]+(-[0-9]+)? *(, *[0-9]+(-[0-9]+)? *)*$",
            "x-rule": "must be a list like 0-3,7"}
NO_NEWLINE = {"type": "string", "pattern": "^[^\n]*$", "x-rule": "must not contain newlines"}

# config-linux.md "User namespace mappings", also config.md mounts[].uidMappings
ID_MAPPING = {
    "type": "object",
    "required": ["containerID", "hostID", "size"],
    "properties": {"containerID": UINT32, "hostID": UINT32, "size": UINT32},
}
ID_MAPPINGS = {"type": "array", "items": ID_MAPPING}

# config.md "POSIX-platform Hooks": every one of the six lists has entries of this shape
HOOK = {
    "type": "object",
    "required": ["path"],
    "properties": {
        "path": STRING,
        "args": STRINGS,
        "env": STRINGS,
        "timeout": {"type": "integer", "minimum": 1},   # "If set, timeout MUST be greater than zero"
    },
}
HOOKS = {"type": "array", "items": HOOK}

# config.md "Mounts" + "POSIX-platform Mounts"
MOUNT = {
    "type": "object",
    "required": ["destination"],
    "properties": {
        "destination": STRING,
        "source": STRING,
        "options": STRINGS,
        "type": STRING,
        "uidMappings": ID_MAPPINGS,
        "gidMappings": ID_MAPPINGS,
    },
}

# getrlimit(2): "valid values are defined in the getrlimit(2) man page"
RLIMIT_TYPES = [
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS", "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
]

CAPABILITY_SETS = ["effective", "bounding", "inheritable", "permitted", "ambient"]

PROCESS = {
    "type": "object",
    "required": ["cwd"],
    "properties": {
        "terminal": BOOL,
        "consoleSize": {
            "type": "object",
            "required": ["height", "width"],
            "properties": {"height": UINT64, "width": UINT64},
        },
        "cwd": STRING,
        "env": STRINGS,
        "args": STRINGS,                     # non-empty is a semantic check (REQUIRED only off Windows)
        "user": {
            "type": "object",
            "required": ["uid", "gid"],          # POSIX-platform User: uid, gid REQUIRED
            "properties": {
                "uid": UINT32,
                "gid": UINT32,
                "umask": UINT32,
                "additionalGids": {"type": "array", "items": UINT32},
            },
        },
        "rlimits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "soft", "hard"],
                "properties": {
                    "type": {"type": "string", "enum": RLIMIT_TYPES},
                    "soft": UINT64,
                    "hard": UINT64,
                },
            },
        },
        "apparmorProfile": STRING,
        "capabilities": {"type": "object", "properties": {name: STRINGS for name in CAPABILITY_SETS}},
        "noNewPrivileges": BOOL,
        "oomScoreAdj": INT,
        "scheduler": {
            "type": "object",
            "required": ["policy"],
            "properties": {
                "policy": {"type": "string", "enum": [
                    "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE",
                    "SCHED_DEADLINE"]},
                "nice": INT32,
                "priority": INT32,
                "flags": {"type": "array", "items": {"type": "string", "enum": [
                    "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
                    "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
                    "SCHED_FLAG_UTIL_CLAMP_MAX"]}},
                "runtime": UINT64,
                "deadline": UINT64,
                "period": UINT64,
            },
        },
        "selinuxLabel": STRING,
        "ioPriority": {
            "type": "object",
            "required": ["class", "priority"],
            "properties": {
                "class": {"type": "string", "enum": ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]},
                "priority": INT32,           # 0..7 is a semantic check
            },
        },
        "execCPUAffinity": {"type": "object", "properties": {"initial": CPU_LIST, "final": CPU_LIST}},
    },
}

NAMESPACE_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]

MAJOR_MINOR = {"major": INT64, "minor": INT64}

DEVICE_THROTTLE = {
    "type": "object",
    "required": ["major", "minor", "rate"],
    "properties": {**MAJOR_MINOR, "rate": UINT64},
}
DEVICE_THROTTLES = {"type": "array", "items": DEVICE_THROTTLE}

RESOURCES = {
    "type": "object",
    "properties": {
        "devices": {        # "Allowed Device list"
            "type": "array",
            "items": {
                "type": "object",
                "required": ["allow"],
                "properties": {
                    "allow": BOOL,
                    "type": {"type": "string", "enum": ["a", "c", "b"]},
                    **MAJOR_MINOR,
                    "access": {"type": "string", "pattern": "^[rwm]*$",
                               "x-rule": "must be a combination of r, w and m"},
                },
            },
        },
        "memory": {
            "type": "object",
            "properties": {
                "limit": INT64, "reservation": INT64, "swap": INT64, "kernel": INT64, "kernelTCP": INT64,
                "swappiness": UINT64,
                "disableOOMKiller": BOOL, "useHierarchy": BOOL, "checkBeforeUpdate": BOOL,
            },
        },
        "cpu": {
            "type": "object",
            "properties": {
                "shares": UINT64, "quota": INT64, "burst": UINT64, "period": UINT64,
                "realtimeRuntime": INT64, "realtimePeriod": UINT64,
                "cpus": STRING, "mems": STRING, "idle": INT64,
            },
        },
        "blockIO": {
            "type": "object",
            "properties": {
                "weight": UINT16,
                "leafWeight": UINT16,
                "weightDevice": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["major", "minor"],
                        "properties": {**MAJOR_MINOR, "weight": UINT16, "leafWeight": UINT16},
                        # "You MUST specify at least one of weight or leafWeight in a given entry"
                        "anyOf": [{"required": ["weight"]}, {"required": ["leafWeight"]}],
                    },
                },
                "throttleReadBpsDevice": DEVICE_THROTTLES,
                "throttleWriteBpsDevice": DEVICE_THROTTLES,
                "throttleReadIOPSDevice": DEVICE_THROTTLES,
                "throttleWriteIOPSDevice": DEVICE_THROTTLES,
            },
        },
        "hugepageLimits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pageSize", "limit"],
                "properties": {
                    "pageSize": {"type": "string", "pattern": "^[1-9][0-9]*[KMG]B$",
                                 "x-rule": "must be <size><unit-prefix>B, like 2MB"},
                    "limit": UINT64,
                },
            },
        },
        "network": {
            "type": "object",
            "properties": {
                "classID": UINT32,
                "priorities": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "priority"],
                        "properties": {"name": STRING, "priority": UINT32},
                    },
                },
            },
        },
        "pids": {"type": "object", "properties": {"limit": INT64}},
        "rdma": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"hcaHandles": UINT32, "hcaObjects": UINT32},
                # "You MUST specify at least one of the hcaHandles or hcaObjects in a given entry"
                "anyOf": [{"required": ["hcaHandles"]}, {"required": ["hcaObjects"]}],
            },
        },
        "unified": STRING_MAP,
    },
}

SECCOMP_ACTIONS = [
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
]

SECCOMP = {
    "type": "object",
    "required": ["defaultAction"],
    "properties": {
        "defaultAction": {"type": "string", "enum": SECCOMP_ACTIONS},
        "defaultErrnoRet": UINT32,
        "architectures": {"type": "array", "items": {"type": "string", "enum": [
            "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
            "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB"]}},
        "flags": {"type": "array", "items": {"type": "string", "enum": [
            "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}},
        "listenerPath": STRING,
        "listenerMetadata": STRING,
        "syscalls": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["names", "action"],
                "properties": {
                    "names": {"type": "array", "items": STRING, "minItems": 1},
                    "action": {"type": "string", "enum": SECCOMP_ACTIONS},
                    "errnoRet": UINT32,
                    "args": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["index", "value", "op"],
                            "properties": {
                                "index": UINT32,
                                "value": UINT64,
                                "valueTwo": UINT64,
                                "op": {"type": "string", "enum": [
                                    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
                                    "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]},
                            },
                        },
                    },
                },
            },
        },
    },
}

TIME_OFFSET = {"type": "object", "properties": {"secs": INT64, "nanosecs": UINT32}}

LINUX = {
    "type": "object",
    "properties": {
        "namespaces": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": NAMESPACE_TYPES}, "path": STRING},
            },
        },
        "uidMappings": ID_MAPPINGS,
        "gidMappings": ID_MAPPINGS,
        # clock names (the keys) other than these two are rejected by a semantic check
        "timeOffsets": {"type": "object", "properties": {"monotonic": TIME_OFFSET, "boottime": TIME_OFFSET}},
        "devices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "path"],     # major/minor REQUIRED unless type is p: semantic check
                "properties": {
                    "type": {"type": "string", "enum": ["c", "b", "u", "p"]},
                    "path": STRING,
                    **MAJOR_MINOR,
                    "fileMode": UINT32,
                    "uid": UINT32,
                    "gid": UINT32,
                },
            },
        },
        "netDevices": {"type": "object", "additionalProperties": {"type": "object", "properties": {"name": STRING}}},
        "cgroupsPath": STRING,
        "resources": RESOURCES,
        "rootfsPropagation": {"type": "string", "enum": ["shared", "slave", "private", "unbindable",
                                                          # runc's spellings (containerd's CRI sends rshared/rslave)
                                                          "rshared", "rslave", "rprivate", "runbindable"]},
        "seccomp": SECCOMP,
        "sysctl": STRING_MAP,
        "maskedPaths": STRINGS,
        "readonlyPaths": STRINGS,
        "mountLabel": STRING,
        "personality": {
            "type": "object",
            "required": ["domain"],
            "properties": {"domain": {"type": "string", "enum": ["LINUX", "LINUX32"]}, "flags": STRINGS},
        },
        "intelRdt": {
            "type": "object",
            "properties": {
                "closID": STRING,
                "l3CacheSchema": STRING,
                "memBwSchema": {"type": "string", "pattern": "^MB:[^\n]*$",
                                "x-rule": "must start with MB: and have no newlines"},
                "schemata": {"type": "array", "items": NO_NEWLINE},
                "enableMonitoring": BOOL,
            },
        },
        "memoryPolicy": {
            "type": "object",
            "required": ["mode"],
            "properties": {
                "mode": {"type": "string", "enum": [
                    "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED",
                    "MPOL_PREFERRED_MANY", "MPOL_LOCAL"]},
                "nodes": STRING,
                "flags": {"type": "array", "items": {"type": "string", "enum": [
                    "MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]}},
            },
        },
    },
}

CONFIG_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "description": "ociruntime: config.json for Linux, runtime-spec v1.3.0",
    "type": "object",
    "required": ["ociVersion", "root"],       # root: "On all other platforms [than Windows], REQUIRED"
    "properties": {
        "ociVersion": STRING,                  # SemVer with major 1: semantic check
        "root": {"type": "object", "required": ["path"], "properties": {"path": STRING, "readonly": BOOL}},
        "mounts": {"type": "array", "items": MOUNT},
        "process": PROCESS,                    # REQUIRED for create/start: semantic check
        "hostname": STRING,
        "domainname": STRING,
        "hooks": {"type": "object", "properties": {
            name: HOOKS for name in
            ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")}},
        "annotations": {"type": "object", "additionalProperties": STRING, "propertyNames": {"minLength": 1}},
        "linux": LINUX,
    },
}
