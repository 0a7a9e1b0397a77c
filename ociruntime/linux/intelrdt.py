"""linux.intelRdt (config-linux.md "IntelRdt"): the container's resctrl group. Parent side of `create`, like the
cgroups: before GO, so init and every process it forks start in the group.

    group    closID "/" -> the resctrl root; closID set -> that group (joined if it exists, else created when a
             schema is given, else an error); no closID -> a new group named after the container id
    schemata l3CacheSchema, then memBwSchema, then schemata[] lines, in one write to a group we created; an existing
             group must already hold the same values (compared per resource and domain, as numbers)
    tasks    the pid, then, with enableMonitoring, a MON group mon_groups/<container id> and the pid again;
             `exec` adds its process the same way (add_task), as runc does
    delete   the MON group always; the group only if we created it and closID was not set (a failed create also
             removes a closID group it created)

The host feature is checked before fork (check()); every path takes `root` so tests can use a fake tree.
"""
import os

from ..errors import ConfigError, SyscallError
from ..fastos import write_file

ROOT = "/sys/fs/resctrl"
DECIMAL = frozenset({"MB", "SMBA"})     # bandwidth resources: decimal values; the cache ones are hex bitmasks


def check(root: str = ROOT, mountinfo: str = "/proc/self/mountinfo") -> None:
    """resctrl must be mounted at `root` in the runtime's mount namespace (the spec: else generate an error)."""
    if not is_mounted(root, mountinfo):
        raise ConfigError("linux.intelRdt", f"resctrl filesystem not mounted at {root} (the host has no Intel RDT "
                          "or it is not mounted)")


def is_mounted(root: str = ROOT, mountinfo: str = "/proc/self/mountinfo") -> bool:
    try:
        with open(mountinfo) as f:
            for line in f:
                fields, _, tail = line.partition(" - ")
                if tail.split(" ", 1)[0] == "resctrl" and fields.split(" ")[4] == root:
                    return True
    except OSError:
        pass
    return False


def schemata_lines(rdt: dict) -> list:
    """The lines to write, in the order the spec gives: l3CacheSchema, memBwSchema, then schemata[]."""
    lines = [rdt[k] for k in ("l3CacheSchema", "memBwSchema") if rdt.get(k)]
    return lines + [ln for ln in rdt.get("schemata") or () if ln.strip()]


def plan(rdt: dict, cid: str, root: str = ROOT) -> dict:
    """What apply() may create, as facts for destroy(rollback=True): create saves them BEFORE apply(), so if it
    dies in between (SIGKILL), `delete --force` removes what exists of them. A group or MON group that exists
    already is never among them (apply() refuses or joins it; it is not ours)."""
    clos = rdt.get("closID")
    group = root if clos == "/" else os.path.join(root, clos or cid)
    mine = clos != "/" and not os.path.isdir(group)
    mon = os.path.join(group, "mon_groups", cid) if rdt.get("enableMonitoring") else None
    return {"group": group, "created": mine, "remove": mine and clos is None,
            "mon": mon if mon and not os.path.isdir(mon) else None}


def apply(rdt: dict, cid: str, pid: int, root: str = ROOT) -> dict:
    """Put `pid` into the container's resctrl group (see the module doc). Returns the facts destroy() needs.
    On failure, whatever this call created is removed again."""
    clos = rdt.get("closID")
    lines = schemata_lines(rdt)
    group = root if clos == "/" else os.path.join(root, clos or cid)
    facts = {"group": group, "created": False, "remove": False, "mon": None}
    try:
        if clos is None:
            _mkdir(group, "linux.intelRdt", "exists already (set closID to join an existing group)")
            facts.update(created=True, remove=True)
        elif not os.path.isdir(group):
            if not lines:
                raise ConfigError("linux.intelRdt.closID", f"no resctrl group {group} (and no schema to create "
                                  "it with)")
            _mkdir(group, "linux.intelRdt.closID", "exists already")
            facts["created"] = True
        elif lines:
            _compare(group, lines)
        if lines and facts["created"]:
            _write(os.path.join(group, "schemata"), "".join(ln + "\n" for ln in lines), root)
        _write(os.path.join(group, "tasks"), str(pid), root)
        if rdt.get("enableMonitoring"):
            mon = os.path.join(group, "mon_groups", cid)
            _mkdir(mon, "linux.intelRdt.enableMonitoring", "exists already")
            facts["mon"] = mon
            _write(os.path.join(mon, "tasks"), str(pid), root)   # after the CTRL group: a MON group takes only its
    except BaseException:                                         # parent's tasks
        destroy(facts, rollback=True)
        raise
    return facts


def add_task(facts: dict, pid: int, root: str = ROOT) -> None:
    """`exec`: put another process (before it enters the container) in the container's group and MON group."""
    for d in (facts["group"], facts.get("mon")):
        if d:
            _write(os.path.join(d, "tasks"), str(pid), root)


def destroy(facts: dict, rollback: bool = False) -> None:
    """Remove the MON group, and the group when it is ours to remove. Already gone is fine."""
    dirs = [facts.get("mon")]
    if facts.get("remove") or (rollback and facts.get("created")):
        dirs.append(facts.get("group"))
    for d in dirs:
        if d:
            try:
                os.rmdir(d)          # resctrl: removing a group moves its tasks to the parent group
            except FileNotFoundError:
                pass
            except OSError as e:
                raise SyscallError("rmdir", d, e.errno) from None


def parse(text: str) -> dict:
    """schemata text -> {resource: {domain: value}}; values as numbers (hex masks, decimal bandwidths) where they
    parse, so `L3:0=0ff` equals the kernel's `    L3:0=ff`. A later line for the same resource overrides."""
    out = {}
    for line in text.splitlines():
        res, sep, doms = line.strip().partition(":")
        if not sep:
            continue
        res = res.strip()
        base = 10 if res in DECIMAL else 16
        for tok in doms.split(";"):
            dom, eq, val = tok.partition("=")
            if not eq:
                continue
            dom, val = dom.strip(), val.strip()
            try:
                num = int(val, base)
            except ValueError:
                num = val
            out.setdefault(res, {})[dom] = num
    return out


def _compare(group: str, lines: list) -> None:
    """An existing group must already hold what the config asks for (the spec: else generate an error)."""
    path = os.path.join(group, "schemata")
    try:
        with open(path) as f:
            have = parse(f.read())
    except OSError as e:
        raise SyscallError("read", path, e.errno) from None
    for res, doms in parse("\n".join(lines)).items():
        for dom, want in doms.items():
            got = have.get(res, {}).get(dom)
            if got != want:
                shown = "nothing" if got is None else _fmt(res, got)
                raise ConfigError("linux.intelRdt", f"resctrl group {group} exists with {res}:{dom}={shown}, the "
                                  f"config asks for {_fmt(res, want)}")


def _fmt(res: str, value) -> str:
    if isinstance(value, int):
        return str(value) if res in DECIMAL else format(value, "x")
    return value


def _mkdir(path: str, where: str, exists_rule: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        raise ConfigError(where, f"resctrl group {path} {exists_rule}") from None
    except OSError as e:
        raise SyscallError("mkdir", f"{path} ({where})", e.errno) from None


def _write(path: str, data: str, root: str) -> None:
    try:
        write_file(path, data.encode(), os.O_TRUNC)
    except OSError as e:
        status = _last_cmd_status(root)
        raise SyscallError("write", f"{path} (linux.intelRdt{'; resctrl: ' + status if status else ''})",
                           e.errno) from None


def _last_cmd_status(root: str) -> str:
    """resctrl explains its last refusal in info/last_cmd_status."""
    try:
        with open(os.path.join(root, "info", "last_cmd_status")) as f:
            status = f.read().strip()
    except OSError:
        return ""
    return "" if status == "ok" else status
