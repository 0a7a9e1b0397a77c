from . import Opt

SUMMARY = "checkpoint a running container"
USAGE = "[command options] <container-id>"
DESCRIPTION = """
The checkpoint command saves the state of the container instance with CRIU (the global --criu flag names the
binary, default "criu" on PATH): its processes, memory, mounts and namespaces go to --image-path, CRIU's log to
--work-path (dump.log). Without --leave-running the container's processes end and the container is deleted.
A created or stopped container cannot be checkpointed. --pre-dump needs the kernel's memory change tracking
(soft-dirty bits) and --lazy-pages userfaultfd: without them they fail before anything is frozen."""
OPTIONS = (
    Opt("--image-path", value="DIR", help="path for saving criu image files (default: ./checkpoint)"),
    Opt("--work-path", value="DIR", help="path for saving work files and logs"),
    Opt("--parent-path", value="DIR", help="path for previous criu image files in pre-dump"),
    Opt("--leave-running", help="leave the process running after checkpointing"),
    Opt("--tcp-established", help="allow open tcp connections"),
    Opt("--ext-unix-sk", help="allow external unix sockets"),
    Opt("--shell-job", help="allow shell jobs"),
    Opt("--lazy-pages", help="use userfaultfd to lazily restore memory pages"),
    Opt("--status-fd", value="FD", default="-1", help="criu writes \\0 to this FD once lazy-pages is ready"),
    Opt("--page-server", value="ADDRESS:PORT", help="ADDRESS:PORT of the page server"),
    Opt("--file-locks", help="handle file locks, for safety"),
    Opt("--pre-dump", help="dump container's memory information only, leave the container running after this"),
    Opt("--manage-cgroups-mode", value="MODE", help="cgroups mode: 'soft' (default), 'full', 'strict' or 'ignore'"),
    Opt("--empty-ns", value="NS", repeat=True, help="create a namespace, but don't restore its properties"),
    Opt("--auto-dedup", help="enable auto deduplication of memory images"),
)
NARGS = (1, 1)


def options(o):
    from ..checkpoint import Options
    from ..errors import RuntimeErr
    try:
        return Options(**o)
    except ValueError:
        raise RuntimeErr(f"invalid --status-fd {o.get('status_fd')!r}: expected a number") from None


def run(g, o, args):
    from ..checkpoint import checkpoint
    from ..state import ContainerState
    st = ContainerState.load(g.root, args[0], lock=True)
    try:
        checkpoint(g, st, options(o), g.criu)
    finally:
        st.release()
    return 0
