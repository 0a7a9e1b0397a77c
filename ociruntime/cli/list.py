from . import Opt

SUMMARY = "lists containers started by ociruntime with the given root"
USAGE = "[command options]"
OPTIONS = (
    Opt("--format", "-f", value="FORMAT", default="table", help="select one of: table or json"),
    Opt("--quiet", "-q", help="display only container IDs"),
)
NARGS = (0, 0)


def run(g, o, args):
    from ..fastjson import dumps
    from ..errors import RuntimeErr, StateError
    from ..state import ContainerState
    from . import out
    rows = []
    for cid in ContainerState.ids(g.root):
        try:
            st = ContainerState.load(g.root, cid)
        except StateError:
            continue
        rows.append(st.oci_state())
    if o["quiet"]:
        out("".join(r["id"] + "\n" for r in rows))
    elif o["format"] == "json":
        out(dumps(rows) + "\n" if rows else "null\n")
    elif o["format"] == "table":
        lines = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        for r in rows:
            lines.append((r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], "root"))
        w = [max(len(x[i]) for x in lines) for i in range(6)]
        out("".join("   ".join(c.ljust(w[i]) for i, c in enumerate(x)).rstrip() + "\n" for x in lines))
    else:
        raise RuntimeErr(f"invalid format option {o['format']!r}: use table or json")
    return 0
