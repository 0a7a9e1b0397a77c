from . import CONFIG_OPT, Opt

SUMMARY = "create a container"
USAGE = "[command options] <container-id>"
DESCRIPTION = """
The create command creates an instance of a container for a bundle. The bundle is a directory with a
specification file named "config.json" and a root filesystem. The container's process is set up and waits
for `ociruntime start`.
Without a "mount" entry in linux.namespaces the container shares the runtime's mount namespace (as runc): its
mounts are made there, visible on the host below the rootfs until `delete` removes them, and its root is a
chroot, not pivot_root (a process holding CAP_SYS_CHROOT can leave it); maskedPaths/readonlyPaths are refused."""
OPTIONS = (
    Opt("--bundle", "-b", value="DIR", default=".", help="path to the root of the bundle directory"),
    Opt("--console-socket", value="PATH", help="path to an AF_UNIX socket which will receive the pty master fd"),
    Opt("--pid-file", value="FILE", help="specify the file to write the process id to"),
    Opt("--no-pivot", help="do not use pivot root to jail process inside rootfs"),
    Opt("--no-new-keyring", help="do not create a new session keyring for the container"),
    Opt("--preserve-fds", value="N", default="0", help="pass N additional file descriptors to the container"),
    CONFIG_OPT,
)
NARGS = (1, 1)


def create_options(o):
    from ..errors import RuntimeErr
    from ..launch import CreateOptions
    try:
        n = int(o["preserve_fds"])
    except ValueError:
        raise RuntimeErr(f"invalid --preserve-fds {o['preserve_fds']!r}: expected a number") from None
    return CreateOptions(bundle=o["bundle"] or ".", pid_file=o["pid_file"], console_socket=o["console_socket"],
                         no_pivot=bool(o["no_pivot"]), no_new_keyring=bool(o["no_new_keyring"]), preserve_fds=n,
                         config=o["config"] or "config.json")


def run(g, o, args):
    from ..launch import create
    create(g, args[0], create_options(o))
    return 0
