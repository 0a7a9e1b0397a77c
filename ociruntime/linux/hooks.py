"""Hooks (config.md "POSIX-platform Hooks"): run one hook with the container state on stdin, its args and env,
bounded by its timeout. Which hooks run where and when is the caller's business (launch.py, init.py, cli)."""
import os
import subprocess

from ..errors import HookError
from ..fastjson import dumps


def run_all(kind: str, hooks, state: dict, default_env: dict | None = None, cwd: str | None = None) -> None:
    """Run hooks of one kind in order; the first failure raises HookError naming hooks.<kind>[i].
    A hook without `env` gets default_env; None: the runtime's own environment (runc, crun). cwd: the hooks'
    working directory (None: ours)."""
    data = dumps(state).encode()
    for i, h in enumerate(hooks):
        run_one(kind, i, h, data, default_env, cwd)


def run_one(kind: str, i: int, h, data: bytes, default_env: dict | None = None, cwd: str | None = None) -> None:
    """One hook: the state on stdin, its args/env, its timeout; HookError names hooks.<kind>[i]."""
    where = f"hooks.{kind}[{i}] {h.path}"
    if cwd is not None and not os.access(cwd, os.X_OK):     # e.g. a user namespace that cannot search it: ours
        cwd = None
    args = list(h.args) or [h.path]
    try:
        # its own session, so a timeout kills the hook's children too (none is left running)
        p = subprocess.Popen(args, executable=h.path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=default_env if h.env is None else _env(h.env), close_fds=True, start_new_session=True,
                             cwd=cwd)
    except OSError as e:
        raise HookError(f"{where}: {e.strerror}") from None
    try:
        _, stderr = p.communicate(data, timeout=h.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        raise HookError(f"{where}: timed out after {h.timeout}s") from None
    if p.returncode != 0:
        err = stderr.decode(errors="replace").strip().splitlines()
        why = f"exit status {p.returncode}" if p.returncode > 0 else f"killed by signal {-p.returncode}"
        raise HookError(f"{where}: {why}" + (f": {err[-1]}" if err else ""))


def _env(env):
    out = {}
    for kv in env:
        k, _, v = kv.partition("=")
        out[k] = v
    return out


def hooks_from_raw(raw: dict | None, kind: str):
    """Rebuild Hook objects from the raw hooks document stored in the state (for poststart/poststop)."""
    from ..config.model import _hooks
    return _hooks((raw or {}).get(kind))


def poststop_all(hooks, state: dict, log, cwd: str | None = None) -> None:
    """poststop: a failure is logged and the rest still run (runtime.md: delete continues)."""
    data = dumps(state).encode()
    for i, h in enumerate(hooks):
        try:
            run_one("poststop", i, h, data, cwd=cwd)
        except HookError as e:
            log.warn(str(e))


def state_doc(cid: str, status: str, pid: int, bundle: str, annotations: dict) -> dict:
    """The state hooks read on stdin: ociVersion is the spec version we implement (runc and crun report their own,
    not the config's); no pid once stopped (runc's omitempty; runtime.md requires it only while created/running)."""
    from .. import SPEC_VERSION
    st = {"ociVersion": SPEC_VERSION, "id": cid, "status": status, "pid": pid, "bundle": bundle}
    if not pid:
        del st["pid"]
    if annotations:
        st["annotations"] = annotations
    return st



KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
