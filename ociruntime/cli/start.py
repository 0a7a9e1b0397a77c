SUMMARY = "executes the user defined process in a created container"
USAGE = "<container-id>"
OPTIONS = ()
NARGS = (1, 1)


def run(g, o, args):
    from ..container import start
    from ..state import ContainerState
    st = ContainerState.load(g.root, args[0], lock=True)
    try:
        start(st, g.log)
    finally:
        st.release()
    return 0
