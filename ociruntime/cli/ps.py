from . import Opt

SUMMARY = "ps displays the processes running inside a container"
USAGE = "[command options] <container-id> [ps options]"
OPTIONS = (Opt("--format", "-f", value="FORMAT", default="table", help="select one of: table or json"),)
NARGS = (1, None)
STOP_AT_FIRST_ARG = True   # what follows the id goes to ps(1)


def run(g, o, args):
    from ..fastjson import dumps
    from ..errors import RuntimeErr
    from . import out
    from ._cgroup import load
    if o["format"] not in ("table", "json"):
        raise RuntimeErr("invalid format option")
    _, mgr = load(g, args[0])
    pids = sorted(mgr.pids())
    if o["format"] == "json":
        out(dumps(pids) + "\n" if pids else "null\n")     # runc encodes its empty (nil) list as null
        return 0
    out(table(args[1:] or ["-ef"], set(pids)))
    return 0


def table(ps_args: list[str], pids: set) -> str:
    """ps(1) with the caller's options, its header, then only the rows whose PID column is a container pid."""
    import subprocess
    from ..errors import RuntimeErr
    try:
        res = subprocess.run(["ps", *ps_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        raise RuntimeErr("ps: executable file not found in $PATH") from None
    text = res.stdout.decode(errors="replace")
    if res.returncode != 0:
        raise RuntimeErr(f"ps: exit status {res.returncode}: {text.strip()}")
    lines = text.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise RuntimeErr("couldn't find PID field in ps output")
    col = header.index("PID")
    rows = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        try:
            pid = int(line.split()[col])
        except (ValueError, IndexError):
            raise RuntimeErr(f"unable to parse pid from ps output: {line!r}") from None
        if pid in pids:
            rows.append(line)
    return "\n".join(rows) + "\n"
