"""Entry point: parse the global flags, import only the one command module needed, run it, print errors once."""
import sys


def _summaries(names):
    import importlib
    rows = []
    for n in names:
        try:
            rows.append((n, importlib.import_module(f"ociruntime.cli.{n}").SUMMARY))
        except ImportError:
            pass
    return rows


def _command(name: str):
    """ociruntime.cli.<name>; __import__ rather than importlib (importlib + warnings: ~0.3 ms per call)."""
    __import__(f"ociruntime.cli.{name}")
    return sys.modules[f"ociruntime.cli.{name}"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from . import SPEC_VERSION, __version__
    from .cli import (GLOBAL_OPTIONS, IMPLEMENTED, Globals, Opt, UsageError, command_help, default_root,
                      format_options, parse)
    from .errors import INTERNAL, RuntimeErr, describe
    from .log import Logger

    log, mod = Logger(), None
    name = ""
    try:
        g, pos = parse(GLOBAL_OPTIONS, argv, interspersed=False)
        log = Logger(g["log"] or None, g["log_format"], bool(g["debug"]))
        log.create_file()
        if g["version"]:
            # runc's lines, in its order: Docker's `info` reads `commit:` (Debian's runc prints its package version
            # there too); runc's go/libseccomp lines have no counterpart here
            sys.stdout.write(f"ociruntime version {__version__}\ncommit: {__version__}\nspec: {SPEC_VERSION}\n")
            return 0
        if not pos or g["help"] or pos[0] in ("help", "h"):     # `h`: runc's (urfave/cli's) alias of help
            name = pos[1] if pos and pos[0] in ("help", "h") and len(pos) > 1 else None
            if name is None:
                rows = _summaries(IMPLEMENTED)
                sys.stdout.write(
                    "NAME:\n   ociruntime - Open Container Initiative runtime, in Python\n\n"
                    "USAGE:\n   ociruntime [global options] command [command options] [arguments...]\n\n"
                    f"VERSION:\n   {__version__}\n   spec: {SPEC_VERSION}\n\nCOMMANDS:\n"
                    + "".join(f"   {n:<10} {s}\n" for n, s in rows)
                    + "\nGLOBAL OPTIONS:\n" + format_options(GLOBAL_OPTIONS) + "\n")
                return 0     # runc with no command prints its help and exits 0, as with --help
            pos = [name, "--help"]
        name, rest = pos[0], pos[1:]
        if g["log_format"] not in ("text", "json"):
            raise UsageError(f"unknown log-format {g['log_format']!r}: use text or json")
        if name not in IMPLEMENTED:
            # runc (urfave/cli) exits 3 for a command it does not know ("No help topic for 'x'")
            log.error(f"no such command: {name} (see ociruntime --help)")
            return 3
        mod = _command(name)
        options = tuple(mod.OPTIONS) + (Opt("--help", "-h", help="show help"),)
        opts, args = parse(options, rest, nargs=mod.NARGS, stop_at_first_arg=getattr(mod, "STOP_AT_FIRST_ARG", False))
        if opts["help"]:
            sys.stdout.write(command_help(name, mod))
            return 0
        manager = g["cgroup_manager"]
        if manager not in (None, "cgroupfs", "systemd", "disabled"):
            raise UsageError(f"unknown cgroup manager {manager!r}: use cgroupfs, systemd or disabled")
        systemd = manager == "systemd" or (manager is None and bool(g["systemd_cgroup"]))
        glob = Globals(root=g["root"] or default_root(), log=log, systemd_cgroup=systemd,
                       debug=bool(g["debug"]), rootless=g["rootless"], criu=g["criu"], cgroup_manager=manager)
        return mod.run(glob, opts, args) or 0
    except UsageError as e:
        log.error(f"{e}" + ("" if "--help" in str(e) else " (see --help)"))
        return 1    # runc: every usage error (unknown flag, missing or extra argument) exits 1
    except RuntimeErr as e:
        msg = str(e)
        if msg.startswith(INTERNAL):  # init's own bug, carried over the sync socket
            return _internal(log, name, msg, mod)
        # a command may have its own status for the runtime's failures (exec: 255, runc's) and a prefix
        log.error(getattr(mod, "ERROR_PREFIX", "") + msg)
        return getattr(mod, "ERROR_STATUS", 1)
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # an unexpected host error: still one line, with the file involved
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        log.error(getattr(mod, "ERROR_PREFIX", "") + f"{e.strerror or e}{where}")
        return getattr(mod, "ERROR_STATUS", 1)
    except Exception as e:  # noqa: BLE001 — a bug: one line, the traceback only with --debug
        if log.debug_on:
            import traceback
            text = "".join(traceback.format_exception(e))
            sys.stderr.write(text)
            if log.path:
                log.debug(text.rstrip("\n").replace("\n", " | "))
        return _internal(log, name, describe(e), mod)


def _internal(log, name: str, msg: str, mod) -> int:
    """`ociruntime: <command>: internal error: <what>`; the command's failure status (exec: 255, as runc)."""
    log.error(f"{name}: {msg}" if name else msg)
    return getattr(mod, "ERROR_STATUS", 1)


def run_and_exit() -> None:
    """The launcher's entry: main(), flush stdio, then _exit without the interpreter's teardown (freeing every
    module costs ~1 ms that each CLI call would pay; nothing of ours relies on atexit)."""
    import gc
    gc.disable()            # a short-lived process: no collection pauses (nothing of ours relies on cycles dying)
    rc = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        rc = rc or 1
    from . import fastos as os
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(main())
