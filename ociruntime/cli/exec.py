from . import Opt

SUMMARY = "execute new process inside the container"
USAGE = "[command options] <container-id> <command> [command options]  ||  -p process.json <container-id>"
DESCRIPTION = """
The exec command runs a new process in every namespace and cgroup of a running container, with the container's
capabilities, rlimits, seccomp and LSM labels unless overridden. It exits with the process's status, or 255 when
the runtime itself fails (as runc). Example:
       # ociruntime exec -t ubuntu01 ps -ef"""
OPTIONS = (
    Opt("--console-socket", value="PATH", help="path to an AF_UNIX socket which will receive the pty master fd"),
    Opt("--cwd", value="DIR", help="current working directory in the container"),
    Opt("--env", "-e", value="K=V", repeat=True, help="set environment variables"),
    Opt("--tty", "-t", help="allocate a pseudo-TTY"),
    Opt("--user", "-u", value="UID[:GID]", help="UID (format: <uid>[:<gid>])"),
    Opt("--additional-gids", "-g", value="GID", repeat=True, help="additional gids"),
    Opt("--process", "-p", value="FILE", help="path to the process.json"),
    Opt("--detach", "-d", help="detach from the container's process"),
    Opt("--pid-file", value="FILE", help="specify the file to write the process id to"),
    Opt("--process-label", value="LABEL", help="set the asm process label for the process commonly used with selinux"),
    Opt("--apparmor", value="PROFILE", help="set the apparmor profile for the process"),
    Opt("--no-new-privs", help="set the no new privileges value for the process"),
    Opt("--cap", "-c", value="CAP", repeat=True, help="add a capability to the bounding set for the process"),
    Opt("--preserve-fds", value="N", default="0", help="pass N additional file descriptors to the container"),
    Opt("--cgroup", value="[CONTROLLER[,...]:]PATH", repeat=True,
        help="run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
    Opt("--ignore-paused", help="allow exec in a paused container"),
)
NARGS = (1, None)
STOP_AT_FIRST_ARG = True
# runc: when the runtime fails (no container, bad --user, the program cannot be exec'd...) exec exits 255 with
# "exec failed: ...", so callers tell that from the process's own exit status; usage errors stay 1
ERROR_STATUS = 255
ERROR_PREFIX = "exec failed: "


def _process(g, st, o, command):
    from ..record import replace
    from ..config import model
    from ..errors import ConfigError, RuntimeErr
    if o["process"]:
        try:
            from ..fastjson import loads
            with open(o["process"], "rb") as f:
                raw = loads(f.read())
        except (OSError, ValueError) as e:
            raise RuntimeErr(f"read --process {o['process']}: {e}") from None
        if not isinstance(raw, dict):
            raise RuntimeErr(f"read --process {o['process']}: expected a JSON object (a config.json process)")
        if not raw.get("args"):
            raise ConfigError("process.args", "exec needs a command")
        if not raw.get("cwd"):      # config.md: process.cwd is REQUIRED (runc: "Cwd property must not be empty")
            raise RuntimeErr(f"{o['process']}: cwd: missing (the working directory, an absolute path)")
        return _checked(model.process_from_dict(raw), o["process"])
    if not command:
        raise RuntimeErr("exec needs a command (or --process FILE): ociruntime exec ID COMMAND [ARGS...]")
    cfg, _ = model.load(st.facts["bundle"], validate=False, name=st.facts.get("config", "config.json"))
    p = replace(cfg.process, args=tuple(command), terminal=bool(o["tty"]), console_size=None)
    if o["env"]:
        p = replace(p, env=_merge_env(p.env, o["env"]))
    if o["cwd"]:
        if not o["cwd"].startswith("/"):     # config.md process.cwd: "MUST be an absolute path" (runc refuses too)
            raise RuntimeErr(f"--cwd {o['cwd']!r}: the working directory must be an absolute path")
        p = replace(p, cwd=o["cwd"])
    user = p.user
    if o["user"]:
        uid, _, gid = o["user"].partition(":")
        try:
            user = replace(user, uid=int(uid), gid=int(gid) if gid else user.gid)
        except ValueError:
            raise RuntimeErr(f"invalid --user {o['user']!r}: expected UID[:GID] numbers") from None
    if o["additional_gids"]:
        try:
            user = replace(user, additional_gids=tuple(int(x) for x in o["additional_gids"]))
        except ValueError:
            from . import UsageError      # a flag's value that is not a number: runc's usage error, status 1
            raise UsageError(f"invalid --additional-gids {o['additional_gids']!r}: expected numbers") from None
    p = replace(p, user=user)
    if o["cap"]:
        c = p.capabilities or model.Capabilities()
        add = tuple(o["cap"])
        # runc appends --cap to the ambient set too, where the kernel raises it only if it is also inheritable:
        # only those go there (the same process, without init's warning about the others)
        def norm(name):
            name = name.upper()
            return name if name.startswith("CAP_") else "CAP_" + name
        inh = {norm(x) for x in c.inheritable or ()}
        p = replace(p, capabilities=model.Capabilities(
            bounding=(c.bounding or ()) + add, effective=(c.effective or ()) + add,
            permitted=(c.permitted or ()) + add, inheritable=c.inheritable,
            ambient=(c.ambient or ()) + tuple(x for x in add if norm(x) in inh)))
    if o["no_new_privs"] is not None:       # runc: given at all, it decides (--no-new-privs=false clears it)
        p = replace(p, no_new_privileges=bool(o["no_new_privs"]))
    if o["apparmor"]:
        p = replace(p, apparmor_profile=o["apparmor"])
    if o["process_label"]:
        p = replace(p, selinux_label=o["process_label"])
    return p


def _checked(p, path: str):
    """A --process file's cwd and env as config.md wants them (config.json's are checked at create): cwd "MUST be
    an absolute path", env entries are environ's KEY=VALUE. runc refuses both (exec failed, 255)."""
    from ..errors import RuntimeErr
    if not p.cwd.startswith("/"):
        raise RuntimeErr(f"{path}: cwd: {p.cwd!r} is not an absolute path")
    for i, kv in enumerate(p.env or ()):
        if "=" not in kv[1:]:
            raise RuntimeErr(f"{path}: env[{i}]: {kv!r} is not KEY=VALUE")
    return p


def _merge_env(env, extra) -> tuple:
    """The config's environment with the --env KEY=VALUE entries appended, as runc's exec: init keeps a KEY at its
    first place with its last value (a KEY set by the config takes the new value in its place, a new one comes
    last). An entry without '=' is refused (runc: "invalid environment variable")."""
    from ..errors import RuntimeErr
    for kv in extra:
        key, eq, _ = kv.partition("=")
        if not eq or not key:
            raise RuntimeErr(f"invalid environment variable {kv!r}: expected KEY=VALUE")
    return tuple(env) + tuple(extra)


def _sub_cgroups(args) -> dict:
    """--cgroup values as runc 1.1.5 reads them: one PATH alone, or CONTROLLER[,CONTROLLER...]:PATH each."""
    from ..errors import RuntimeErr
    subs = {}
    for a in args:
        parts = a.split(":", 2)
        if len(parts) > 2:
            raise RuntimeErr(f"invalid --cgroup argument: {a}")
        if len(parts) == 1:
            if len(args) != 1:
                raise RuntimeErr(f"invalid --cgroup argument: {a} (missing <controller>: prefix)")
            subs[""] = a
        else:
            for ctrl in parts[0].split(","):
                subs[ctrl] = parts[1]
    return subs


def run(g, o, args):
    import gc
    gc.enable()             # may run as long as the container: collect as usual (the launcher disables it)
    from .. import fastos as os
    from ..errors import RuntimeErr, StateError
    from ..launch import exec_process
    from ..state import ContainerState
    st = ContainerState.load(g.root, args[0])
    status = st.status()
    if status == "stopped":
        raise StateError("cannot exec in a stopped container")
    if status == "paused" and not o["ignore_paused"]:
        raise StateError("cannot exec in a paused container")
    if status not in ("created", "running", "paused"):
        raise StateError(f"cannot exec in a {status} container")
    proc = _process(g, st, o, args[1:])
    try:
        preserve = int(o["preserve_fds"])
    except ValueError:
        from . import UsageError      # a flag's value: runc's usage error, status 1
        raise UsageError(f"invalid value {o['preserve_fds']!r} for --preserve-fds") from None
    if o["console_socket"] and not (o["detach"] and proc.terminal):
        # runc's checkTerminal: the pty master goes to the socket only for a detached process with a terminal
        raise RuntimeErr("cannot use console socket if ociruntime will not detach or allocate tty")
    ours = console_fd = None
    if proc.terminal and not o["console_socket"]:
        if o["detach"]:
            raise RuntimeErr("cannot allocate tty if ociruntime will detach without setting console socket")
        from .. import foreground
        ours, console_fd = foreground.console_pair()
    subs = _sub_cgroups(o["cgroup"] or ())
    try:
        pid = exec_process(g, st, proc, console_socket=o["console_socket"], console_fd=console_fd,
                           pid_file=o["pid_file"], preserve_fds=preserve, sub_cgroups=subs)
    finally:
        if console_fd is not None:
            os.close(console_fd)
    if o["detach"]:
        return 0
    from .. import foreground
    master = foreground.take_master(ours) if ours is not None else None
    return foreground.wait(pid, master)
