SUMMARY = "pause suspends all processes inside the container"
USAGE = "<container-id>"
DESCRIPTION = """
The pause command suspends all processes in the instance of the container (cgroup freezer).
Use ociruntime list to identify instances of containers and their current status."""
OPTIONS = ()
NARGS = (1, 1)


def run(g, o, args):
    from ..errors import StateError
    from ._cgroup import load
    st, mgr = load(g, args[0], lock=True)
    if st.status() not in ("running", "created"):
        raise StateError("container not running")
    mgr.freeze()
    return 0
