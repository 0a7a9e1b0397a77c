"""Test-only fault injection at named steps of create, start and delete (the crash-injection spec-test).

    OCIRUNTIME_TEST_FAULT=<point>          SIGKILL this process when it reaches <point> (a crash, no cleanup)
    OCIRUNTIME_TEST_FAULT=<point>:raise    raise an unexpected exception there (the "internal error" path)

Unset (always, outside the tests) every point() is one comparison: inert. The points are the lines that call
point("..."); spec-tests/test_crash_injection.py lists them.
"""
from . import fastos as os

_SPEC = os.getenv("OCIRUNTIME_TEST_FAULT")


class InjectedFault(Exception):
    """Deliberately not a RuntimeErr: it stands for a bug."""


def point(name: str) -> None:
    if _SPEC is None:
        return
    if _SPEC == name + ":raise":
        raise InjectedFault(f"injected fault at {name}")
    if _SPEC == name:
        os.kill(os.getpid(), 9)
