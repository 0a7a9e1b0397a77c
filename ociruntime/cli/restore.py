from . import Opt

SUMMARY = "restore a container from a previous checkpoint"
USAGE = "[command options] <container-id>"
DESCRIPTION = """
The restore command makes a new container <container-id> from --bundle (its config.json: rootfs, mounts,
cgroups and their limits, hooks) and restores into it, with CRIU (global --criu flag), the processes saved by
`ociruntime checkpoint` in --image-path. prestart and createRuntime hooks run once CRIU has made the namespaces.
The result is a running container like any other (state, exec, kill, pause, delete). Without --detach the
command waits for the container's process and deletes the container when it exits, as `run` does."""
OPTIONS = (
    Opt("--console-socket", value="PATH", help="path to an AF_UNIX socket which will receive the pty master fd"),
    Opt("--image-path", value="DIR", help="path to criu image files for restoring (default: ./checkpoint)"),
    Opt("--work-path", value="DIR", help="path for saving work files and logs"),
    Opt("--tcp-established", help="allow open tcp connections"),
    Opt("--ext-unix-sk", help="allow external unix sockets"),
    Opt("--shell-job", help="allow shell jobs"),
    Opt("--file-locks", help="handle file locks, for safety"),
    Opt("--manage-cgroups-mode", value="MODE", help="cgroups mode: 'soft' (default), 'full', 'strict' or 'ignore'"),
    Opt("--bundle", "-b", value="DIR", default=".", help="path to the root of the bundle directory"),
    Opt("--detach", "-d", help="detach from the container's process"),
    Opt("--pid-file", value="FILE", help="specify the file to write the process id to"),
    Opt("--no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
    Opt("--no-pivot", help="accepted for runc compatibility (criu restores the root as it was)"),
    Opt("--empty-ns", value="NS", repeat=True, help="create a namespace, but don't restore its properties"),
    Opt("--auto-dedup", help="enable auto deduplication of memory images"),
    Opt("--lazy-pages", help="use userfaultfd to lazily restore memory pages"),
    Opt("--lsm-profile", value="TYPE:NAME", help="an LSM profile to be used during restore"),
)
NARGS = (1, 1)


def run(g, o, args):
    import gc
    gc.enable()             # may wait as long as the container runs
    from ..checkpoint import Options, restore
    opts = Options(**o)
    if o["detach"]:
        restore(g, args[0], opts, g.criu)
        return 0
    import os
    from .. import foreground
    from ..container import delete
    from ..errors import StateError
    from ..state import ContainerState
    ours = theirs = None
    if not o["console_socket"]:      # with one, the pty goes there and we still wait (runc; our run does so too)
        ours, theirs = foreground.console_pair()     # used only if the process has a terminal
    try:
        st = restore(g, args[0], opts, g.criu, console_fd=theirs)
    finally:
        if theirs is not None:
            os.close(theirs)
    master = foreground.take_master(ours) if ours is not None else None
    status = foreground.wait(st.pid, master)
    try:
        delete(ContainerState.load(g.root, args[0], lock=True), g.log, force=True)
    except StateError:
        pass
    return status
