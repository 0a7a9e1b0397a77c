SUMMARY = "executes the user defined process in a created container"
USAGE = "<container-id>"
OPTIONS = ()
NARGS = (1, 1)


def run(g, o, args):
    from ..container import delete, start
    from ..errors import HookError
    from ..state import ContainerState
    st = ContainerState.load(g.root, args[0], lock=True)
    try:
        start(st, g.log)
    except HookError:
        # a poststart hook failed (the only HookError start raises): start stopped the container; runtime.md step 9
        # continues at step 12, destroy and poststop hooks, as runc 1.1.5 and crun end (`run` deletes it too)
        delete(st, g.log, force=True)
        raise
    finally:
        st.release()
    return 0
