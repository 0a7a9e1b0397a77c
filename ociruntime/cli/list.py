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
        row = st.oci_state()
        row["owner"] = _owner(st.dir)      # runc's list (not its state): the state directory's owner
        rows.append(row)
    if o["quiet"]:
        out("".join(r["id"] + "\n" for r in rows))
    elif o["format"] == "json":
        out(dumps(rows) + "\n" if rows else "null\n")
    elif o["format"] == "table":
        lines = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        for r in rows:
            lines.append((r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]))
        # runc's text/tabwriter (minwidth 12, padding 3): every column but the last is padded to
        # max(12, its widest cell + 3); the last is not padded
        w = [max(12, max(len(x[i]) for x in lines) + 3) for i in range(5)]
        out("".join("".join(c.ljust(w[i]) for i, c in enumerate(x[:5])) + x[5] + "\n" for x in lines))
    else:
        raise RuntimeErr(f"invalid format option {o['format']!r}: use table or json")
    return 0


def _owner(path: str) -> str:
    """The user name owning path, `#UID` when the uid has no name (runc's list)."""
    from .. import fastos as os
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"
