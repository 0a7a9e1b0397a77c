"""process.user: become the container user while keeping the configured capabilities; process.user.umask; the
user's HOME from the container's /etc/passwd.

runc's finalizeNamespace order: bounding set first (dropping needs CAP_SETPCAP, which the uid change takes
away), keep-caps so the permitted set survives setresuid, groups before gid before uid (each needs the
privilege the next one removes), then the capability sets proper, then keep-caps off again.
"""
import errno
from .. import fastos as os
import _stat as stat  # the C module behind `stat` (its S_* are these): one import less for init, ~0.1 ms

from . import capabilities
from . import syscalls as sc

_nolog = lambda msg: None  # noqa: E731


def chown_stdio(uid: int) -> None:
    """runc's fixStdioPermissions: stdin/stdout/stderr (the pty, or the caller's pipes and files) become the
    process user's, so it can reopen them (/dev/stdout, /proc/self/fd/1); the group stays (devpts' gid=5: tty).
    Not /dev/null, not what is already the user's; EINVAL/EPERM (ids unmapped in a user namespace) and EROFS
    leave the fd as it is, as in runc."""
    try:
        null = os.stat("/dev/null").st_rdev
    except OSError:
        null = None
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue                                # closed: nothing to own
        if st.st_uid == uid or (null is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == null):
            continue
        try:
            os.fchown(fd, uid, -1)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise sc.SyscallError("fchown", f"stdio fd {fd} to process.user.uid {uid}", e.errno) from None


def setgroups_allowed(proc_root="/proc") -> bool:
    """False when a user namespace was set up with setgroups 'deny' (then setgroups(2) fails with EPERM)."""
    try:
        with open(f"{proc_root}/self/setgroups", "rb") as f:
            return f.read().strip() != b"deny"
    except FileNotFoundError:
        return True


def _call(fn, args, call, target):
    try:
        fn(*args)
    except OSError as e:
        raise sc.SyscallError(call, target, e.errno) from None


def switch(user, caps, *, debug=_nolog, warn=_nolog) -> None:
    """Change to user.uid/gid/additionalGids keeping exactly `caps` (the five sets).

    caps None: like runc, an absent process.capabilities means empty sets (bounding included) — the container
    process holds no capabilities at all."""
    capabilities.warn_unknown(caps, warn)
    capabilities.drop_bounding(caps, debug=debug)              # needs CAP_SETPCAP: before the uid change
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)                            # keep the permitted set across setresuid
    if setgroups_allowed():
        _call(os.setgroups, (list(user.additional_gids),), "setgroups",
              f"process.user.additionalGids={list(user.additional_gids)}")
    elif user.additional_gids:
        raise sc.SyscallError("setgroups", "process.user.additionalGids (the user namespace has setgroups=deny)",
                              errno.EPERM)
    _call(os.setresgid, (user.gid,) * 3, "setresgid", f"process.user.gid={user.gid}")
    _call(os.setresuid, (user.uid,) * 3, "setresuid", f"process.user.uid={user.uid}")
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)                            # only mattered for the uid change above
    capabilities.apply_sets(caps, debug=debug, warn=warn)      # effective was cleared by the uid change


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """The home directory of `uid` in `passwd` (the container's, after pivot); "/" when it has no entry (runc).
    Only a regular file is read (O_NONBLOCK: a FIFO planted there cannot hang init)."""
    want = str(uid).encode()
    try:
        fd = os.open(passwd, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "/"
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        for line in f:
            fields = line.rstrip(b"\n").split(b":")
            if len(fields) >= 6 and fields[2] == want:
                return fields[5].decode(errors="surrogateescape") or "/"
    return "/"


def apply_umask(user) -> None:
    """process.user.umask, default 0022 when unset."""
    os.umask(0o022 if user.umask is None else user.umask)
