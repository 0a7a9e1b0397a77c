"""Shared by pause/resume/update/events/ps: a container's state and its cgroup manager, rebuilt from the state."""


def load(g, cid: str, lock: bool = False):
    """(ContainerState, Manager) for the container; StateError if it is unknown or has no cgroup."""
    from ..errors import StateError
    from ..linux import cgroups
    from ..state import ContainerState
    st = ContainerState.load(g.root, cid, lock=lock)
    cg = st.facts.get("cgroup")
    if not cg:
        raise StateError(f"container {cid} has no cgroup")
    return st, cgroups.manager_from_state(cg, log=g.log.debug)
