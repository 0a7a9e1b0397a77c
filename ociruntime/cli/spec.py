from . import Opt

SUMMARY = "create a new specification file"
USAGE = "[command options]"
DESCRIPTION = """
The spec command creates the new specification file named "config.json" for the bundle. Edit it (at least
process.args, and process.terminal if you have no console socket), then `ociruntime create`.
"""
OPTIONS = (
    Opt("--bundle", "-b", value="DIR", default="", help="path to the root of the bundle directory"),
    Opt("--rootless", help="generate a configuration for a rootless container"),
)
NARGS = (0, 0)


def run(g, o, args):
    import json
    import os
    from ..config.default import default_spec
    from ..errors import RuntimeErr
    path = os.path.join(o["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise RuntimeErr(f"File {path} exists. Remove it first")
    doc = default_spec(bool(o["rootless"]), os.getuid(), os.getgid())
    try:
        with open(path, "x") as f:
            f.write(json.dumps(doc, indent="\t") + "\n")
    except OSError as e:
        raise RuntimeErr(f"write {path}: {e.strerror}") from None
    return 0
