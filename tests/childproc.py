"""Run a function in a forked child and get its JSON-able result back (for tests that change process state:
capabilities, rlimits, seccomp... which must never touch the pytest process itself)."""
import json
import os


class ChildError(Exception):
    def __init__(self, kind, msg):
        super().__init__(f"{kind}: {msg}")
        self.kind, self.msg = kind, msg


def run_forked(fn):
    """Fork; the child runs fn() and reports {"ok": result} or {"err": type, "msg": text}.
    Returns (that dict, or None if the child died before reporting; the raw wait status)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                out = {"ok": fn()}
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = {"err": type(e).__name__, "msg": str(e)}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    return (json.loads(data) if data else None), status


def in_child(fn):
    """fn()'s result from a forked child, or ChildError with what it raised there."""
    res, status = run_forked(fn)
    if res is None:
        raise ChildError("died", f"wait status {status}")
    if "err" in res:
        raise ChildError(res["err"], res["msg"])
    return res["ok"]
