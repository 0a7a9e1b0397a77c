"""The command-line shape, runc-compatible. One module per command in this package; each defines:

    SUMMARY = "one line for `ociruntime --help`"
    USAGE   = "<container-id> [signal]"          # after `ociruntime NAME `
    DESCRIPTION = "longer text for `NAME --help`" (optional)
    OPTIONS = (Opt("--bundle", "-b", value="DIR", default=".", help="..."), ...)
    NARGS   = (min, max)                           # positional arguments; max None = unlimited
    STOP_AT_FIRST_ARG = False                      # True: everything after the first positional is passed as-is (exec)
    def run(g: Globals, opts: dict, args: list[str]) -> int

`opts` is keyed by the long name without dashes, `-` turned into `_` (`--pid-file` -> opts["pid_file"]).
Flags take `--flag value`, `--flag=value`, and runc's single-dash long form `-flag value`.
"""
import sys

from ..errors import RuntimeErr

COMMANDS = ("checkpoint create delete events exec features kill list pause ps restore resume run spec start "
            "state update").split()
IMPLEMENTED = ("checkpoint create delete events exec features kill list pause ps restore resume run spec start state "
               "update validate").split()


class Opt:
    """One flag: --long [-s] [VALUE]; `value` None means a boolean flag."""

    __slots__ = ("name", "short", "value", "default", "help", "repeat")

    def __init__(self, name, short=None, value=None, default=None, help="", repeat=False):
        self.name, self.short, self.value, self.default, self.help, self.repeat = \
            name, short, value, default, help, repeat

    @property
    def key(self):
        return self.name.lstrip("-").replace("-", "_")


class Globals:
    """The global flags, as every command sees them."""

    __slots__ = ("root", "log", "systemd_cgroup", "debug", "rootless", "criu", "cgroup_manager")

    def __init__(self, root, log, systemd_cgroup=False, debug=False, rootless="auto", criu="criu",
                 cgroup_manager=None):
        self.root, self.log, self.systemd_cgroup, self.debug, self.rootless = root, log, systemd_cgroup, debug, rootless
        self.criu, self.cgroup_manager = criu, cgroup_manager


def default_root() -> str:
    """runc's rule: a non-root user with $XDG_RUNTIME_DIR keeps its state there (runc: $XDG_RUNTIME_DIR/runc); so
    does root of a user namespace whose $USER is not root (rootless podman runs the runtime so)."""
    from .. import fastos as os
    xdg = os.getenv("XDG_RUNTIME_DIR")
    if xdg and (os.geteuid() != 0 or (os.getenv("USER") != "root" and in_user_namespace())):
        root = xdg.rstrip("/") + "/ociruntime"
        _sticky_dir(root)
        return root
    return "/run/ociruntime"


def _sticky_dir(path: str):
    """runc's XDG root: made 0700 with the sticky bit, which the XDG Base Directory spec asks for so that the
    periodic clean-up of $XDG_RUNTIME_DIR leaves the container states alone."""
    from .. import fastos as os
    try:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        if os.stat(path).st_mode & 0o7777 != 0o1700:
            os.chmod(path, 0o1700)
    except OSError as e:
        raise RuntimeErr(f"$XDG_RUNTIME_DIR: {path}: {e.strerror} (it must be writable by the user)") from None


def in_user_namespace() -> bool:
    """runc's userns.RunningInUserNS: our uid_map is not the initial namespace's identity map."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            return f.read().split() != [b"0", b"0", b"4294967295"]
    except OSError:
        return False


class UsageError(RuntimeErr):
    pass


# create's and run's: crun's flag (its test suite passes it to every runtime); runc has none
CONFIG_OPT = Opt("--config", "-f", value="FILE", default="config.json",
                 help="the configuration file, relative to the bundle (default config.json); crun's flag")


GLOBAL_OPTIONS = (
    Opt("--root", value="DIR", default=None, help="root directory for storage of container state (default: "
        "/run/ociruntime, or $XDG_RUNTIME_DIR/ociruntime for a non-root user)"),
    Opt("--log", value="FILE", default="", help="set the log file to write ociruntime logs to (default is stderr)"),
    Opt("--log-format", value="FORMAT", default="text", help="set the log format ('text' (default), or 'json')"),
    Opt("--debug", help="enable debug logging"),
    Opt("--systemd-cgroup", help="enable systemd cgroup support (expects cgroupsPath slice:prefix:name)"),
    Opt("--criu", value="PATH", default="criu", help="path to the criu binary used for checkpoint and restore"),
    Opt("--rootless", value="VALUE", default="auto", help="ignore cgroup permission errors ('true', 'false', 'auto')"),
    # crun's, not runc's: crun's own test suite calls every runtime with --cgroup-manager and run --config
    Opt("--cgroup-manager", value="MANAGER", help="cgroup manager: 'cgroupfs', 'systemd' (as --systemd-cgroup) or "
        "'disabled' (no cgroups); crun's flag"),
    Opt("--help", "-h", help="show help"),
    Opt("--version", "-v", help="print the version"),
)


def parse(options, argv, *, nargs=(0, None), stop_at_first_arg=False, interspersed=True):
    """Parse argv against an Opt table. Returns (opts dict, positional list, rest) ; raises UsageError."""
    by_name = {}
    for o in options:
        by_name[o.name] = o
        by_name["-" + o.name.lstrip("-")] = o       # runc accepts -root as well as --root
        if o.short:
            by_name[o.short] = o
            by_name["-" + o.short] = o               # and --q as well as -q (Go's flag: one or two dashes)
    opts = {o.key: ([] if o.repeat else o.default) for o in options}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            # Go's flag package (runc): `--` ends the flags only where a flag could be; after the first
            # positional argument it is an argument itself (`exec ID echo -- x` runs `echo -- x`; the global
            # parse must not eat the `--` of the command line after the command's name)
            pos.extend(argv[i + 1:] if not pos else argv[i:])
            break
        if a.startswith("-") and len(a) > 1 and not (pos and (stop_at_first_arg or not interspersed)):
            name, eq, val = a.partition("=")
            o = by_name.get(name)
            if o is None:
                raise UsageError(f"flag provided but not defined: {name}")
            if o.value is None:
                opts[o.key] = _go_bool(name, val) if eq else True
            else:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: {name}")
                    val = argv[i]
                if o.repeat:
                    opts[o.key].append(val)
                else:
                    opts[o.key] = val
        else:
            pos.append(a)
            if stop_at_first_arg:
                pos.extend(argv[i + 1:])
                break
        i += 1
    lo, hi = nargs
    if not opts.get("help"):
        if len(pos) < lo:
            raise UsageError(f"requires at least {lo} argument{'s' if lo > 1 else ''}" if lo > 1
                             else "requires exactly 1 argument" if hi == 1 else "missing argument")
        if hi is not None and len(pos) > hi:
            raise UsageError(f"accepts at most {hi} argument{'s' if hi != 1 else ''}, got {len(pos)}")
    return opts, pos


_GO_TRUE, _GO_FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")


def _go_bool(name: str, val: str) -> bool:
    """`--flag=VALUE` of a boolean flag, as Go's strconv.ParseBool reads it (runc): `--quiet=F` is false,
    `--force=junk` a usage error."""
    if val in _GO_TRUE:
        return True
    if val in _GO_FALSE:
        return False
    raise UsageError(f"invalid boolean value {val!r} for {name}: use true or false")


def format_options(options) -> str:
    lines = []
    for o in options:
        flag = (o.short + ", " if o.short else "") + o.name + (" " + o.value if o.value else "")
        dflt = f' (default: "{o.default}")' if o.value and o.default not in (None, "", []) else ""
        lines.append(f"   {flag:<32} {o.help}{dflt}")
    return "\n".join(lines)


def command_help(name, mod) -> str:
    text = f"NAME:\n   ociruntime {name} - {mod.SUMMARY}\n\nUSAGE:\n   ociruntime {name} {mod.USAGE}\n"
    if getattr(mod, "DESCRIPTION", ""):
        text += "\nDESCRIPTION:\n" + "\n".join("   " + ln if ln else "" for ln in mod.DESCRIPTION.strip("\n").split("\n")) + "\n"
    if mod.OPTIONS:
        text += "\nOPTIONS:\n" + format_options(mod.OPTIONS) + "\n"
    return text


def out(text: str):
    sys.stdout.write(text)
    sys.stdout.flush()
