SUMMARY = "resumes all processes that have been previously paused"
USAGE = "<container-id>"
DESCRIPTION = """
The resume command resumes all processes in the instance of the container.
Use ociruntime list to identify instances of containers and their current status."""
OPTIONS = ()
NARGS = (1, 1)


def run(g, o, args):
    from ..errors import StateError
    from ._cgroup import load
    st, mgr = load(g, args[0], lock=True)
    if st.status() != "paused":
        raise StateError("container not paused")
    mgr.thaw()
    return 0
