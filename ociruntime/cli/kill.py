from . import Opt

SUMMARY = "kill sends the specified signal (default: SIGTERM) to the container's init process"
USAGE = "[command options] <container-id> [signal]"
DESCRIPTION = """
Signals may be given by name, with or without SIG, or by number (0 sends nothing: it checks that the
container's process exists):
       # ociruntime kill ubuntu01 KILL
       # ociruntime kill ubuntu01 9"""
OPTIONS = (Opt("--all", "-a", help="send the specified signal to all processes inside the container"),)
NARGS = (1, 2)


def run(g, o, args):
    from ..container import kill, parse_signal
    from ..state import ContainerState
    sig = parse_signal(args[1] if len(args) > 1 else "SIGTERM")
    st = ContainerState.load(g.root, args[0])
    kill(st, sig, bool(o["all"]))
    return 0
