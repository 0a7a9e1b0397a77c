"""Our schema-level validator against the OFFICIAL runtime-spec JSON Schema (a test oracle, never shipped).

Mutations of a valid config (wrong types, bad values, missing fields, extra fields, extra array items) must get
the same accept/reject verdict from `validate(doc, for_create=False, semantic=False)` and from jsonschema with
shared/runtime-spec-v1.3.0/schema/config-schema.json (its $refs resolved locally with `referencing`).

Where the spec's prose says more than the official schema does, we follow the prose; each such place is listed
in STRICTER/LOOSER below with its reason, and test_each_documented_divergence_is_real proves every entry.
"""
import copy
import json
import re
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("jsonschema")
pytest.importorskip("referencing")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ociruntime.config import schema as our_schema  # noqa: E402
from ociruntime.config.validate import validate  # noqa: E402
from ociruntime.errors import ConfigError  # noqa: E402

try:
    from test_validate import typical_config
except ImportError:     # tests/ made a package
    from tests.test_validate import typical_config

SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "runtime-spec-v1.3.0" / "schema"

pytestmark = pytest.mark.skipif(not (SCHEMA_DIR / "config-schema.json").exists(),
                                reason=f"official schema not found at {SCHEMA_DIR}")


# -- the oracle ------------------------------------------------------------------------------------------------

_OFFICIAL = []


def official():
    """A Draft 4 validator for the official config schema, every $ref resolved from local files (no network)."""
    if not _OFFICIAL:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        files = {p.name: json.loads(p.read_text()) for p in SCHEMA_DIR.glob("*.json")}
        registry = Registry().with_resources(
            (name, Resource.from_contents(body, default_specification=DRAFT4)) for name, body in files.items())
        _OFFICIAL.append(jsonschema.Draft4Validator(files["config-schema.json"], registry=registry))
    return _OFFICIAL[0]


def ours(doc):
    """None if accepted, else the ConfigError."""
    try:
        validate(doc, for_create=False, semantic=False)
    except ConfigError as e:
        return e
    return None


def official_error_paths(doc):
    """(our-style path, jsonschema keyword) of every official error."""
    out = []
    for e in official().iter_errors(doc):
        path = ""
        for part in e.absolute_path:
            path = f"{path}[{part}]" if isinstance(part, int) else (f"{path}.{part}" if path else part)
        out.append((path, e.validator))
    return out


# -- where the prose is stricter (we reject, the official schema accepts) -----------------------------------------
# (regex on our error's path, regex on our rule, reason)
STRICTER = [
    (r"^root$", r"^is required$", "config.md: root is REQUIRED on every platform but Windows"),
    (r"^process\.user\.(uid|gid)$", r"^is required$", "config.md POSIX user: uid and gid are REQUIRED"),
    (r"^process\.ioPriority\.priority$", r"^is required$", "config.md ioPriority: priority (int, REQUIRED)"),
    (r"^process\.rlimits\[\d+\]\.type$", r"is not one of RLIMIT_AS", "getrlimit(2) names, not any RLIMIT_[A-Z]+"),
    (r"^process\.execCPUAffinity\.(initial|final)$", r"must be a list like",
     "'a comma-separated list, with dashes to represent ranges'"),
    (r"^annotations$", r"^keys must not be empty$", "config.md: annotation keys MUST NOT be an empty string"),
    (r"\[''\]$", r"", "values under an empty map key: the official schema's '.{1,}' patternProperties skips them"),
    (r"^linux\.personality\.domain$", r"^is required$", "config-linux.md: domain (string, REQUIRED)"),
    (r"^linux\.memoryPolicy\.mode$", r"^is required$", "config-linux.md: mode (string, REQUIRED)"),
    (r"^linux\.resources\.devices\[\d+\]\.type$", r"is not one of a, c, b", "allowed device list: a, c or b"),
    (r"^linux\.resources\.devices\[\d+\]\.access$", r"combination of r, w and m", "'a composition of r, w, m'"),
    (r"^linux\.resources\.blockIO\.weightDevice\[\d+\]$", r"^one of weight, leafWeight is required$",
     "'You MUST specify at least one of weight or leafWeight'"),
    (r"^linux\.resources\.blockIO\.throttle\w+Device\[\d+\]\.rate$", r"^is required$", "rate (uint64, REQUIRED)"),
    (r"^linux\.resources\.rdma\['.*'\]$", r"^one of hcaHandles, hcaObjects is required$",
     "'You MUST specify at least one of the hcaHandles or hcaObjects'"),
    (r"^linux\.intelRdt\.schemata\[\d+\]$", r"must not contain newlines", "schemata: 'MUST NOT contain newlines'"),
]

# -- where the prose is looser (the official schema rejects, we accept) -------------------------------------------
# (regex on the official error's path, its keyword, reason)
LOOSER = [
    (r"^linux\.resources\.pids$", "required", "config-linux.md: pids.limit is OPTIONAL"),
    (r"^linux\.devices\[\d+\]\.fileMode$", "maximum",
     "fileMode is uint32 in the prose; our semantic check allows the 07777 bits, not just 0777"),
    (r"^linux\.rootfsPropagation$", "enum",
     "runc's rshared/rslave/rprivate/runbindable too: containerd's CRI plugin sends rshared and rslave"),
]


def _known_stricter(err: ConfigError) -> bool:
    return any(re.search(p, err.path) and re.search(r, err.rule) for p, r, _ in STRICTER)


def _known_looser(path: str, keyword: str) -> bool:
    return any(re.search(p, path) and keyword == k for p, k, _ in LOOSER)


def assert_agree(doc):
    mine, theirs = ours(doc), official().is_valid(doc)
    if (mine is None) == theirs:
        return
    if mine is not None:
        assert _known_stricter(mine), f"we reject what the official schema accepts: {mine}"
    else:
        unexplained = [pk for pk in official_error_paths(doc) if not _known_looser(*pk)]
        assert not unexplained, f"the official schema rejects what we accept: {unexplained}"


# -- a config that uses (nearly) every field ----------------------------------------------------------------------

def rich_config() -> dict:
    doc = typical_config()
    ids = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    doc["domainname"] = "example.org"
    doc["mounts"].append({"destination": "/shared", "type": "none", "source": "/srv/shared",
                          "options": ["rbind", "idmap"], "uidMappings": ids, "gidMappings": ids})
    proc = doc["process"]
    proc["consoleSize"] = {"height": 25, "width": 80}
    proc["user"].update({"umask": 18, "additionalGids": [5, 6]})
    proc["capabilities"]["inheritable"] = ["CAP_KILL"]
    proc.update({
        "apparmorProfile": "docker-default", "selinuxLabel": "system_u:system_r:container_t:s0", "oomScoreAdj": 100,
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": 0, "priority": 0, "flags": ["SCHED_FLAG_RESET_ON_FORK"],
                      "runtime": 10000000, "deadline": 20000000, "period": 30000000},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
    })
    linux = doc["linux"]
    linux["namespaces"] += [{"type": "user"}, {"type": "cgroup"}, {"type": "time"}]
    linux["uidMappings"], linux["gidMappings"] = ids, copy.deepcopy(ids)
    linux["timeOffsets"] = {"monotonic": {"secs": 172800, "nanosecs": 0}, "boottime": {"secs": 604800}}
    linux["netDevices"] = {"eth1": {"name": "ctr1"}, "eth2": {}}
    linux["rootfsPropagation"] = "slave"
    linux["mountLabel"] = "system_u:object_r:container_file_t:s0"
    linux["personality"] = {"domain": "LINUX", "flags": []}
    linux["intelRdt"] = {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70",
                         "schemata": ["L2:0=f"], "enableMonitoring": True}
    linux["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}
    res = linux["resources"]
    res["memory"].update({"kernel": -1, "kernelTCP": -1, "disableOOMKiller": False, "useHierarchy": True,
                          "checkBeforeUpdate": False})
    res["cpu"].update({"realtimeRuntime": 950000, "realtimePeriod": 1000000, "idle": 0})
    res["blockIO"].update({
        "leafWeight": 10,
        "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 300}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
    })
    res["blockIO"]["weightDevice"].append({"major": 8, "minor": 16, "leafWeight": 20})
    res["rdma"] = {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 1000}}
    sc = linux["seccomp"]
    sc.update({"flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/agent.sock", "listenerMetadata": "m"})
    sc["syscalls"].append({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                           "args": [{"index": 1, "value": 0o700, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]})
    hook = {"path": "/usr/bin/hook", "args": ["hook", "x"], "env": ["A=1"], "timeout": 3}
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        doc["hooks"][kind] = [copy.deepcopy(hook)]
    return doc


def test_rich_config_is_valid_for_both_validators_and_our_semantics():
    doc = rich_config()
    validate(doc)
    assert official().is_valid(doc)


def test_official_schema_accepts_the_typical_config_we_accept():
    doc = typical_config()
    validate(doc)
    assert official().is_valid(doc), [e.message for e in official().iter_errors(doc)]


# -- mutations ------------------------------------------------------------------------------------------------------

def _walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def _property_names(s, out):
    for k, sub in s.get("properties", {}).items():
        out.add(k)
        _property_names(sub, out)
    for key in ("items", "additionalProperties"):
        if isinstance(s.get(key), dict):
            _property_names(s[key], out)
    return out


BASE = rich_config()
PATHS = [p for p, _ in _walk(BASE)]
KEYS = sorted(_property_names(our_schema.CONFIG_SCHEMA, set()) | {"x-extra", "", "eth9", "dev0"})

SCALARS = st.sampled_from([
    None, True, False, 0, 1, -1, 7, 8, 255, 256, 511, 512, 4095, 4096, 65535, 65536, 2**31 - 1, 2**31, -2**31 - 1,
    2**32 - 1, 2**32, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64 - 1, 2**64, 1.5, 1.0, -0.5,
    "", "x", "/abs", "rel", "c", "b", "u", "p", "a", "rwm", "rwx", "2MB", "2M", "0MB", "0-3,7", "1-", "0-3, 7",
    "MB:0=1", "L3:0=f", "RLIMIT_NOFILE", "RLIMIT_FOO", "CAP_KILL", "pid", "user", "time", "SCMP_ACT_ALLOW",
    "SCMP_ACT_FOO", "SCMP_ARCH_X86_64", "SCMP_CMP_EQ", "SCHED_FIFO", "SCHED_FLAG_RECLAIM", "LINUX", "LINUX64",
    "IOPRIO_CLASS_BE", "IOPRIO_CLASS_NONE", "MPOL_BIND", "MPOL_F_STATIC_NODES", "shared", "rshared", "1.0.0",
    "SECCOMP_FILTER_FLAG_LOG",
]) | st.integers() | st.text(alphabet="abcxyzABCXYZ0123456789_-:,/. ", max_size=6)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3), max_leaves=6)


def _parent(doc, path):
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def mutate(kind, path, value, key):
    """Apply one mutation to a copy of BASE; None when it does not apply at `path`."""
    doc = copy.deepcopy(BASE)
    if kind == "replace":
        if not path:
            return None
        _parent(doc, path)[path[-1]] = value
    elif kind == "delete":
        if not path or not isinstance(_parent(doc, path), dict):
            return None
        del _parent(doc, path)[path[-1]]
    elif kind == "add":
        target = _parent(doc, path + (None,))
        if not isinstance(target, dict):
            return None
        target[key] = value
    elif kind == "append":
        target = _parent(doc, path + (None,))
        if not isinstance(target, list):
            return None
        target.append(value)
    return doc


@settings(max_examples=600, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["replace", "delete", "add", "append"]), path=st.sampled_from(PATHS), value=VALUES,
       key=st.sampled_from(KEYS))
def test_mutations_get_the_same_verdict_as_the_official_schema(kind, path, value, key):
    doc = mutate(kind, path, value, key)
    hypothesis.assume(doc is not None)
    assert_agree(doc)


def test_deleting_any_single_field_gets_the_same_verdict():
    for path in PATHS:
        doc = mutate("delete", path, None, None)
        if doc is not None:
            assert_agree(doc)


_OTHER_TYPE = {dict: [], list: {}, str: 0, bool: "true", int: "1", float: "1", type(None): 0}


def test_every_field_with_a_value_of_another_type_gets_the_same_verdict():
    for path, node in list(_walk(BASE)):
        if path:
            for value in (_OTHER_TYPE[type(node)], None, 1.5):
                _in_place(path, value, assert_agree)


# -- every documented divergence exists, in the documented direction --------------------------------------------

def _set(doc, path, value):
    _parent(doc, path)[path[-1]] = value
    return doc


DIVERGENCE_EXAMPLES = [   # (mutation of BASE, True if we are the stricter side)
    (lambda d: d.pop("root"), True),
    (lambda d: d["process"]["user"].pop("uid"), True),
    (lambda d: d["process"]["ioPriority"].pop("priority"), True),
    (lambda d: _set(d, ("process", "rlimits", 0, "type"), "RLIMIT_FOO"), True),
    (lambda d: _set(d, ("process", "execCPUAffinity", "final"), "1-"), True),
    (lambda d: _set(d, ("annotations", ""), "x"), True),
    (lambda d: _set(d, ("linux", "sysctl", ""), 1), True),
    (lambda d: d["linux"]["personality"].pop("domain"), True),
    (lambda d: d["linux"]["memoryPolicy"].pop("mode"), True),
    (lambda d: _set(d, ("linux", "resources", "devices", 1, "type"), "x"), True),
    (lambda d: _set(d, ("linux", "resources", "devices", 1, "access"), "rwx"), True),
    (lambda d: d["linux"]["resources"]["blockIO"]["weightDevice"][0].pop("weight"), True),
    (lambda d: d["linux"]["resources"]["blockIO"]["throttleReadBpsDevice"][0].pop("rate"), True),
    (lambda d: _set(d, ("linux", "resources", "rdma", "mlx4_0"), {}), True),
    (lambda d: _set(d, ("linux", "intelRdt", "schemata", 0), "L2:0=f\nL3:0=f"), True),
    (lambda d: d["linux"]["resources"]["pids"].pop("limit"), False),
    (lambda d: _set(d, ("linux", "devices", 0, "fileMode"), 0o1666), False),
    (lambda d: _set(d, ("linux", "rootfsPropagation"), "rshared"), False),
]


@pytest.mark.parametrize("index", range(len(DIVERGENCE_EXAMPLES)))
def test_each_documented_divergence_is_real(index):
    change, we_are_stricter = DIVERGENCE_EXAMPLES[index]
    doc = copy.deepcopy(BASE)
    change(doc)
    mine, theirs = ours(doc), official().is_valid(doc)
    assert (mine is not None, theirs) == ((True, True) if we_are_stricter else (False, False))
    if we_are_stricter:
        assert _known_stricter(mine)
    else:
        assert all(_known_looser(*pk) for pk in official_error_paths(doc))


def test_every_documented_divergence_has_an_example():
    hit = set()
    for change, we_are_stricter in DIVERGENCE_EXAMPLES:
        doc = copy.deepcopy(BASE)
        change(doc)
        if we_are_stricter:
            err = ours(doc)
            hit |= {i for i, (p, r, _) in enumerate(STRICTER) if re.search(p, err.path) and re.search(r, err.rule)}
        else:
            hit |= {len(STRICTER) + i for i, (p, k, _) in enumerate(LOOSER)
                    for path, kw in official_error_paths(doc) if re.search(p, path) and kw == k}
    assert hit == set(range(len(STRICTER) + len(LOOSER)))


# -- deterministic sweeps: every integer field at every boundary, every enum field with every listed name ---------

BOUNDARIES = [-2**63 - 1, -2**63, -2**31 - 1, -2**31, -1, 0, 1, 511, 512, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
              2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64]


def _in_place(path, value, check):
    """Set BASE[path] = value and run check on a document of only that top-level section (plus the always
    required fields): the other sections are valid and untouched, and the oracle is slow on big documents."""
    parent = _parent(BASE, path)
    old = parent[path[-1]]
    parent[path[-1]] = value
    try:
        check({"ociVersion": BASE["ociVersion"], "root": BASE["root"], path[0]: BASE[path[0]]})
    finally:
        parent[path[-1]] = old


def test_every_integer_field_agrees_at_every_boundary():
    int_paths = [p for p, node in _walk(BASE) if type(node) is int]
    assert len(int_paths) > 60
    for path in int_paths:
        for value in BOUNDARIES:
            _in_place(path, value, assert_agree)


def _enum_lists():
    """Every enum list of the official schema files and of ours."""
    lists = []

    def collect(node):
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                lists.append([v for v in node["enum"] if isinstance(v, str)])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)
    for name in ("config-schema.json", "config-linux.json", "defs.json", "defs-linux.json"):
        collect(json.loads((SCHEMA_DIR / name).read_text()))
    collect(our_schema.CONFIG_SCHEMA)
    return lists


def test_every_enum_field_agrees_on_every_listed_name():
    lists = _enum_lists()
    names = {n for values in lists for n in values}
    enum_paths = [(p, node) for p, node in _walk(BASE) if type(node) is str and node in names]
    assert len(enum_paths) > 15
    for path, current in enum_paths:
        family = {n for values in lists if current in values for n in values}     # every list it belongs to
        for value in sorted(family) + ["SCMP_X", "x", "RLIMIT_X", "c", "p"]:
            _in_place(path, value, assert_agree)
