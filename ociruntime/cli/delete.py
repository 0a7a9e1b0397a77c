from . import Opt

SUMMARY = "delete any resources held by the container often used with detached container"
USAGE = "[command options] <container-id>"
OPTIONS = (Opt("--force", "-f", help="forcibly deletes the container if it is still running (uses SIGKILL)"),)
NARGS = (1, 1)


def run(g, o, args):
    from ..container import delete
    from ..errors import StateError
    from ..state import ContainerState, check_id
    check_id(args[0])   # runc: an invalid id fails (status 1) even with --force
    try:
        st = ContainerState.load(g.root, args[0], lock=True)
    except StateError:
        if o["force"]:
            return 0  # runc: delete --force of an unknown id succeeds (the shim's cleanup relies on it)
        raise
    delete(st, g.log, force=bool(o["force"]))
    return 0
