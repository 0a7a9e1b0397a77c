SUMMARY = "output the state of a container"
USAGE = "<container-id>"
OPTIONS = ()
NARGS = (1, 1)


def run(g, o, args):
    from ..fastjson import dumps
    from ..state import ContainerState
    from . import out
    st = ContainerState.load(g.root, args[0])
    out(dumps(st.oci_state(), indent=2))    # no newline after the document: runc writes none
    return 0
