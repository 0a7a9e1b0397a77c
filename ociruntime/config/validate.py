"""Fast config.json validation: schema.py compiled into closures once at import, then the semantic MUSTs.

`validate(doc)` raises ConfigError(path, rule) on the first violation, e.g.
    linux.namespaces[2].type: 'foo' is not one of pid, network, mount, ipc, uts, user, cgroup, time
No jsonschema here (it costs ~100 ms to import); `strict.py` runs it for `ociruntime validate --strict`.
"""
from .. import fastos as os

from ..errors import ConfigError
from .schema import CONFIG_SCHEMA

# -- rule texts: shared with strict.py so both say the same thing ---------------------------------------------

_JSON_TYPE = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
              type(None): "null"}
_PY_TYPES = {"object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "integer": (int,),
             "number": (int, float)}


def json_type(value) -> str:
    return _JSON_TYPE.get(type(value), type(value).__name__)


def type_rule(expected: str, value) -> str:
    return f"expected {expected}, got {json_type(value)}"


def enum_rule(value, enum) -> str:
    return f"{value!r} is not one of {', '.join(map(str, enum))}"


def range_rule(value, lo, hi) -> str:
    if hi is None:
        return f"{value} is less than the minimum {lo}"
    if lo is None:
        return f"{value} is greater than the maximum {hi}"
    return f"{value} is out of range {lo}..{hi}"


def pattern_rule(value, schema) -> str:
    return f"{value!r} {schema['x-rule']}" if "x-rule" in schema else f"{value!r} does not match {schema['pattern']}"


def min_items_rule(n: int) -> str:
    return f"must have at least {n} entr{'y' if n == 1 else 'ies'}"


def any_required_rule(names) -> str:
    return f"one of {', '.join(names)} is required"


REQUIRED_RULE = "is required"
EMPTY_KEY_RULE = "keys must not be empty"


# The patterns every typical config reaches, as plain predicates: compiling any regex imports `re` (~5 ms that
# every create would pay). The others compile on first use.
_FAST_PATTERNS = {
    "^[rwm]*$": lambda v: set(v) <= {"r", "w", "m"},
    "^[^\n]*$": lambda v: "\n" not in v,
}


class _Fast:
    __slots__ = ("pred",)

    def __init__(self, pred):
        self.pred = pred

    def search(self, v):
        return True if self.pred(v) else None


def ecma_regex(pattern: str):
    if pattern in _FAST_PATTERNS:
        return _Fast(_FAST_PATTERNS[pattern])
    return _ecma_regex(pattern)


def _ecma_regex(pattern: str):
    """Compile a JSON Schema pattern: in ECMA-262 a final `$` is the end of input, in Python it is not."""
    import re       # lazily: only configs that use a patterned field pay for it
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def map_key(path: str, key: str) -> str:
    return f"{path}[{key!r}]"


# -- schema compiler --------------------------------------------------------------------------------------------

_KNOWN = {"type", "properties", "required", "additionalProperties", "propertyNames", "items", "minItems", "enum",
          "minimum", "maximum", "pattern", "anyOf", "description", "x-rule", "$schema"}


def _compile(s: dict):
    unknown = set(s) - _KNOWN
    if unknown:             # schema.py and this compiler must not drift apart silently
        raise ValueError(f"schema keyword(s) the compiler does not know: {sorted(unknown)}")
    t = s["type"]
    if t == "object":
        return _compile_object(s)
    if t == "array":
        return _compile_array(s)
    return _compile_scalar(s)


def _lazy(s: dict):
    """A checker for s, compiled on first use: a typical config reaches a fraction of the schema, and compiling
    all of it up front would cost ~1 ms of every create. check_schema_compiles() compiles it all (tests)."""
    cell = []

    def check(v, path):
        if not cell:
            cell.append(_compile(s))
        cell[0](v, path)
    return check


def check_schema_compiles(s: dict = CONFIG_SCHEMA) -> int:
    """Compile every subschema now (what _lazy defers); the number compiled. Raises on a keyword _compile lacks."""
    _compile(s)
    subs = list(s.get("properties", {}).values())
    for key in ("additionalProperties", "items"):
        if isinstance(s.get(key), dict):
            subs.append(s[key])
    return 1 + sum(check_schema_compiles(sub) for sub in subs)


def _is_bare(s: dict) -> bool:
    return set(s) == {"type"} and s["type"] not in ("object", "array")


def _compile_scalar(s: dict):
    t = s["type"]
    pytypes = _PY_TYPES[t]     # matched with `type(v) in`, so a bool (an int subclass) is not an integer
    enum = s.get("enum")
    members = frozenset(enum) if enum else None
    lo, hi = s.get("minimum"), s.get("maximum")
    pattern = s.get("pattern")
    if members is None and lo is None and hi is None and pattern is None:
        def check(v, path):
            if type(v) not in pytypes:
                raise ConfigError(path, type_rule(t, v))
        return check
    compiled = []       # the regex, compiled on first use: most configs never reach most patterns

    def check(v, path):
        if type(v) not in pytypes:
            raise ConfigError(path, type_rule(t, v))
        if members is not None and v not in members:
            raise ConfigError(path, enum_rule(v, enum))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(path, range_rule(v, lo, hi))
        if pattern is not None:
            if not compiled:
                compiled.append(ecma_regex(pattern))
            if compiled[0].search(v) is None:
                raise ConfigError(path, pattern_rule(v, s))
    return check


def _compile_array(s: dict):
    min_items = s.get("minItems", 0)
    item_schema = s.get("items")
    if item_schema is None:
        def check(v, path):
            if type(v) is not list:
                raise ConfigError(path, type_rule("array", v))
            if len(v) < min_items:
                raise ConfigError(path, min_items_rule(min_items))
        return check
    if _is_bare(item_schema):      # arrays of plain strings/ints (env, args, paths): no per-item path building
        item_type = item_schema["type"]
        item_types = _PY_TYPES[item_type]

        def check(v, path):
            if type(v) is not list:
                raise ConfigError(path, type_rule("array", v))
            if len(v) < min_items:
                raise ConfigError(path, min_items_rule(min_items))
            for i, x in enumerate(v):
                if type(x) not in item_types:
                    raise ConfigError(f"{path}[{i}]", type_rule(item_type, x))
        return check
    item = _lazy(item_schema)

    def check(v, path):
        if type(v) is not list:
            raise ConfigError(path, type_rule("array", v))
        if len(v) < min_items:
            raise ConfigError(path, min_items_rule(min_items))
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]")
    return check


def _compile_object(s: dict):
    props = {k: _lazy(sub) for k, sub in s.get("properties", {}).items()}
    required = tuple(s.get("required", ()))
    extra = s.get("additionalProperties")
    extra = _lazy(extra) if isinstance(extra, dict) else None
    names = s.get("propertyNames")
    if names not in (None, {"minLength": 1}):
        raise ValueError("schema: propertyNames supports only {'minLength': 1}")
    no_empty_keys = names is not None
    any_of = []
    for clause in s.get("anyOf", ()):
        if set(clause) != {"required"}:
            raise ValueError("schema: anyOf supports only clauses of 'required'")
        any_of.append(tuple(clause["required"]))
    any_of = tuple(any_of)
    any_of_names = tuple(n for clause in any_of for n in clause)

    def check(v, path):
        if type(v) is not dict:
            raise ConfigError(path, type_rule("object", v))
        for k in required:
            if k not in v:
                raise ConfigError(join(path, k), REQUIRED_RULE)
        if any_of and not any(all(k in v for k in clause) for clause in any_of):
            raise ConfigError(path, any_required_rule(any_of_names))
        for k, x in v.items():
            f = props.get(k)
            if f is not None:
                f(x, f"{path}.{k}" if path else k)
            elif extra is not None:
                if no_empty_keys and not k:
                    raise ConfigError(path, EMPTY_KEY_RULE)
                extra(x, map_key(path, k))
            elif no_empty_keys and not k:
                raise ConfigError(path, EMPTY_KEY_RULE)
    return check


_check_schema = _compile(CONFIG_SCHEMA)


# -- semantic checks: the MUSTs a schema cannot say -------------------------------------------------------------
# Each is a generator of (path, rule); it runs only on a document that passed the schema, so types are known.

_ALNUM_DASH = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")
_ERRNO_ACTIONS = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
_CLOCKS = ("monotonic", "boottime")
_HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
_NEEDS_NUMBERS = frozenset({"c", "b", "u"})


def _namespaces(doc) -> dict:
    """type -> path (None for a new namespace) of the namespaces listed; the first entry of a type wins."""
    out = {}
    for ns in doc.get("linux", {}).get("namespaces", ()):
        out.setdefault(ns["type"], ns.get("path"))
    return out


def _is_number(part: str) -> bool:
    return part.isascii() and part.isdigit() and (part == "0" or part[0] != "0")


def _semver_major(version: str):
    """The major number of a SemVer 2.0.0 version string, or None if it is not one (no regex: import cost)."""
    rest, _, build = version.partition("+")
    if "+" in version and not all(p and set(p) <= _ALNUM_DASH for p in build.split(".")):
        return None
    core, dash, pre = rest.partition("-")
    if dash and not all(p and set(p) <= _ALNUM_DASH and (not p.isdigit() or _is_number(p)) for p in pre.split(".")):
        return None
    nums = core.split(".")
    if len(nums) != 3 or not all(_is_number(n) for n in nums):
        return None
    return int(nums[0])


def _oci_version(doc, ctx):
    version = doc["ociVersion"]
    major = _semver_major(version)
    if major is None:
        yield "ociVersion", f"{version!r} is not a SemVer 2.0.0 version"
    elif major != 1:
        yield "ociVersion", f"{version!r}: major version {major} is not supported (1.x only)"


def _root(doc, ctx):
    bundle = ctx["bundle"]
    if bundle is None:
        return
    path = os.path.join(bundle, doc["root"]["path"])      # an absolute root.path wins over the bundle
    if not os.path.isdir(path):
        yield "root.path", f"{path!r} is not a directory"


def _process(doc, ctx):
    proc = doc.get("process")
    if proc is None:
        if ctx["for_create"]:
            yield "process", "is required to create a container"
        return
    if not proc.get("args"):
        yield "process.args", "at least one entry is required"
    if not proc["cwd"].startswith("/"):
        yield "process.cwd", "must be absolute"
    for i, entry in enumerate(proc.get("env", ())):      # environ's NAME=value (runc: invalid environment variable)
        name, eq, value = entry.partition("=")
        if not eq or not name:
            yield f"process.env[{i}]", f"{entry!r} is not NAME=value"
        elif "\0" in entry:
            yield f"process.env[{i}]", f"{name!r} holds a NUL byte"
    seen = {}
    for i, rl in enumerate(proc.get("rlimits", ())):
        if rl["type"] in seen:
            yield f"process.rlimits[{i}].type", f"duplicate {rl['type']!r} (also rlimits[{seen[rl['type']]}])"
        seen.setdefault(rl["type"], i)
        if rl["soft"] > rl["hard"]:
            yield f"process.rlimits[{i}].soft", f"{rl['soft']} is greater than hard {rl['hard']}"
    # a capability name the runtime does not know is not an error (config.md: "MUST be logged as a warning ...
    # SHOULD NOT fail"; runc warns and skips it): linux/capabilities.py warns when applying the sets
    adj = proc.get("oomScoreAdj")
    if adj is not None and not -1000 <= adj <= 1000:
        yield "process.oomScoreAdj", f"{adj} is out of range -1000..1000"
    prio = proc.get("ioPriority")
    if prio is not None and not 0 <= prio["priority"] <= 7:
        yield "process.ioPriority.priority", f"{prio['priority']} is out of range 0..7"


def _linux_namespaces(doc, ctx):
    seen = {}
    for i, ns in enumerate(doc.get("linux", {}).get("namespaces", ())):
        t = ns["type"]
        if t in seen:
            yield f"linux.namespaces[{i}].type", f"duplicate {t!r} (also namespaces[{seen[t]}])"
        seen.setdefault(t, i)
        if "path" in ns and not ns["path"].startswith("/"):
            yield f"linux.namespaces[{i}].path", "must be absolute"


def _needs_namespace(doc, ctx):
    """Settings that can only be applied inside a namespace of the container's own (else they'd hit the host)."""
    ns = ctx["namespaces"]
    linux = doc.get("linux", {})
    for key in ("hostname", "domainname"):
        if doc.get(key) and "uts" not in ns:     # else it would rename the host (runc refuses too)
            yield key, "requires a uts namespace in linux.namespaces"
    # uidMappings/gidMappings without a user namespace: ignored, as runc 1.1.5 (it reads them only with one)
    if "user" in ns and ns["user"] is None:
        # a new user namespace: the runtime writes the maps the config gives (it picks none itself, as runc)
        for key in ("uidMappings", "gidMappings"):
            if not linux.get(key):
                yield f"linux.{key}", "is required when linux.namespaces creates a user namespace (no path)"
    offsets = linux.get("timeOffsets", {})
    for clock in offsets:
        if clock not in _CLOCKS:
            yield map_key("linux.timeOffsets", clock), f"unknown clock (only {', '.join(_CLOCKS)})"
    if offsets and ("time" not in ns or ns["time"] is not None):
        yield "linux.timeOffsets", "requires a new time namespace (no path) in linux.namespaces"
    if linux.get("netDevices") and "network" not in ns:
        yield "linux.netDevices", "requires a network namespace in linux.namespaces"
    for key in ("maskedPaths", "readonlyPaths"):      # else they would mask the host's /proc (runc refuses too)
        if linux.get(key) and "mount" not in ns:
            yield f"linux.{key}", "requires a mount namespace in linux.namespaces"


def _mounts(doc, ctx):
    for i, m in enumerate(doc.get("mounts", ())):
        has_uid, has_gid = "uidMappings" in m, "gidMappings" in m
        if has_uid != has_gid:
            missing = "gidMappings" if has_uid else "uidMappings"
            yield f"mounts[{i}].{missing}", f"is required with {'uidMappings' if has_uid else 'gidMappings'}"
        if not has_uid and "user" not in ctx["namespaces"]:
            for opt in m.get("options", ()):
                if opt == "idmap" or opt == "ridmap":
                    yield f"mounts[{i}].options", f"{opt!r} needs uidMappings/gidMappings or a user namespace"


def _hooks(doc, ctx):
    hooks = doc.get("hooks", {})
    for kind in _HOOK_KINDS:
        for i, hook in enumerate(hooks.get(kind, ())):
            if not hook["path"].startswith("/"):
                yield f"hooks.{kind}[{i}].path", "must be absolute"


def _devices(doc, ctx):
    for i, dev in enumerate(doc.get("linux", {}).get("devices", ())):
        if not dev["path"].startswith("/"):
            yield f"linux.devices[{i}].path", "must be absolute"
        if dev["type"] in _NEEDS_NUMBERS:
            for key in ("major", "minor"):
                if key not in dev:
                    yield f"linux.devices[{i}].{key}", f"is required for type {dev['type']!r}"
        mode = dev.get("fileMode")
        if mode is not None and mode > 0o7777:
            yield f"linux.devices[{i}].fileMode", f"{mode} has bits beyond permissions (max 4095 = 0o7777)"


def _linux_paths(doc, ctx):
    linux = doc.get("linux", {})
    for key in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(linux.get(key, ())):
            if not p.startswith("/"):
                yield f"linux.{key}[{i}]", "must be absolute"


def _seccomp(doc, ctx):
    sc = doc.get("linux", {}).get("seccomp")
    if sc is None:
        return
    if "listenerMetadata" in sc and "listenerPath" not in sc:
        yield "linux.seccomp.listenerMetadata", "must not be set without listenerPath"
    if "defaultErrnoRet" in sc and sc["defaultAction"] not in _ERRNO_ACTIONS:
        yield "linux.seccomp.defaultErrnoRet", f"is not allowed with defaultAction {sc['defaultAction']}"
    for i, rule in enumerate(sc.get("syscalls", ())):
        if "errnoRet" in rule and rule["action"] not in _ERRNO_ACTIONS:
            yield f"linux.seccomp.syscalls[{i}].errnoRet", f"is not allowed with action {rule['action']}"


def _resources(doc, ctx):
    cpu = doc.get("linux", {}).get("resources", {}).get("cpu", {})
    quota, burst = cpu.get("quota"), cpu.get("burst")
    if quota is not None and burst is not None and quota > 0 and burst > quota:
        yield "linux.resources.cpu.burst", f"{burst} is greater than quota {quota}"


def _personality(doc, ctx):
    for i, flag in enumerate(doc.get("linux", {}).get("personality", {}).get("flags", ())):
        yield f"linux.personality.flags[{i}]", f"{flag!r} is not supported (the spec defines no flags)"


def _ifname_rule(name: str, template: bool):
    """Linux's dev_valid_name(): 1..15 bytes, not . or .., no '/', ':' or whitespace; `template`: one %d allowed
    (the kernel picks the number), else no '%' at all."""
    if not name or len(name.encode()) > 15 or name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        return f"{name!r} is not an interface name (1-15 bytes, no '/', ':' or whitespace, not . or ..)"
    if "%" in name and not (template and name.count("%") == 1 and "%d" in name):
        return f"{name!r}: '%' is only allowed as one %d template in a container-side name"
    return None


def _net_devices(doc, ctx):
    """linux.netDevices: valid names on both sides, and no two devices given the same name in the container."""
    taken = {}
    for host, dev in (doc.get("linux", {}).get("netDevices") or {}).items():
        rule = _ifname_rule(host, template=False)
        if rule:
            yield f"linux.netDevices.{host}", rule
            continue
        target = dev.get("name") or host
        if dev.get("name"):
            rule = _ifname_rule(target, template=True)
            if rule:
                yield f"linux.netDevices.{host}.name", rule
                continue
        if "%" not in target:
            if target in taken:
                yield f"linux.netDevices.{host}", f"{target!r} is also the container-side name of " \
                                                  f"linux.netDevices.{taken[target]}"
            taken.setdefault(target, host)


_RESCTRL_RESERVED = ("info", "mon_groups", "mon_data")


def _intel_rdt(doc, ctx):
    clos = doc.get("linux", {}).get("intelRdt", {}).get("closID")
    if clos is not None and clos != "/" and (not clos or "/" in clos or clos in (".", "..")
                                              or clos in _RESCTRL_RESERVED):
        yield "linux.intelRdt.closID", f"{clos!r} is not a resctrl group name (one path component, not " \
                                       f"{', '.join(_RESCTRL_RESERVED)}; or / for the root group)"


def _sysctl_names_fields(doc, ctx):
    """runc refuses sysctl kernel.hostname outright: it conflicts with the `hostname` field (runc's wording).
    kernel.domainname: runc 1.1.5 lets it override a `domainname` field (its rule predates that field, added in
    spec 1.1); the conflict is the same, so it is refused when the field is set too with another value, allowed
    alone (as runc) or with the same value (as crun: no conflict then)."""
    for key, value in doc.get("linux", {}).get("sysctl", {}).items():
        name = key.strip("/").replace("/", ".") if "/" in key else key
        field = {"kernel.hostname": "hostname", "kernel.domainname": "domainname"}.get(name)
        if field == "hostname" or (field and field in doc and doc[field] != value):
            yield map_key("linux.sysctl", key), f"sysctl {name!r} is not allowed as it conflicts with the OCI " \
                                                f"{field!r} field"


def _nul_in_paths(doc, ctx):
    """A path holding a NUL byte reaches no syscall intact: refused up front (runc fails on each, EINVAL or its own
    validation; Python's os would raise ValueError)."""
    linux = doc.get("linux", {})
    paths = [("root.path", doc.get("root", {}).get("path")), ("process.cwd", doc.get("process", {}).get("cwd")),
             ("linux.cgroupsPath", linux.get("cgroupsPath"))]
    for i, m in enumerate(doc.get("mounts", ())):
        paths += [(f"mounts[{i}].destination", m.get("destination")), (f"mounts[{i}].source", m.get("source"))]
    for key in ("maskedPaths", "readonlyPaths"):
        paths += [(f"linux.{key}[{i}]", p) for i, p in enumerate(linux.get(key, ()))]
    paths += [(f"linux.devices[{i}].path", d.get("path")) for i, d in enumerate(linux.get("devices", ()))]
    paths += [(f"linux.namespaces[{i}].path", n.get("path")) for i, n in enumerate(linux.get("namespaces", ()))]
    for where, path in paths:
        if isinstance(path, str) and "\0" in path:
            yield where, "holds a NUL byte"


SEMANTIC_CHECKS = (_nul_in_paths, _oci_version, _root, _process, _linux_namespaces, _needs_namespace, _mounts, _hooks,
                   _devices, _linux_paths, _seccomp, _resources, _personality, _net_devices, _intel_rdt, _sysctl_names_fields)


def semantic_errors(doc: dict, bundle: str | None = None, for_create: bool = True):
    """Yield a ConfigError for every semantic rule `doc` (which passed the schema) breaks."""
    ctx = {"bundle": bundle, "for_create": for_create, "namespaces": _namespaces(doc)}
    for check in SEMANTIC_CHECKS:
        for path, rule in check(doc, ctx):
            yield ConfigError(path, rule)


def validate(doc: dict, bundle: str | None = None, for_create: bool = True, semantic: bool = True) -> None:
    """Raise ConfigError on the first schema violation, then (if `semantic`) on the first semantic one.

    bundle: the bundle directory, to check that root.path is a directory. for_create: `process` is required.
    """
    _check_schema(doc, "")
    if semantic:
        for err in semantic_errors(doc, bundle, for_create):
            raise err
