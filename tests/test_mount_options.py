"""parse_options: every Linux mount option of config.md lands in the right field (no root needed)."""
import pytest

from ociruntime.linux import mounts
from ociruntime.linux import syscalls as sc
from ociruntime.linux.mounts import parse_options

SET_FLAGS = {
    "ro": sc.MS_RDONLY, "nosuid": sc.MS_NOSUID, "nodev": sc.MS_NODEV, "noexec": sc.MS_NOEXEC,
    "sync": sc.MS_SYNCHRONOUS, "dirsync": sc.MS_DIRSYNC, "remount": sc.MS_REMOUNT, "mand": sc.MS_MANDLOCK,
    "noatime": sc.MS_NOATIME, "nodiratime": sc.MS_NODIRATIME, "relatime": sc.MS_RELATIME,
    "strictatime": sc.MS_STRICTATIME, "lazytime": sc.MS_LAZYTIME, "iversion": sc.MS_I_VERSION,
    "silent": sc.MS_SILENT, "nosymfollow": sc.MS_NOSYMFOLLOW,
}
CLEAR_FLAGS = {
    "rw": sc.MS_RDONLY, "suid": sc.MS_NOSUID, "dev": sc.MS_NODEV, "exec": sc.MS_NOEXEC, "async": sc.MS_SYNCHRONOUS,
    "nomand": sc.MS_MANDLOCK, "atime": sc.MS_NOATIME, "diratime": sc.MS_NODIRATIME, "norelatime": sc.MS_RELATIME,
    "nostrictatime": sc.MS_STRICTATIME, "nolazytime": sc.MS_LAZYTIME, "noiversion": sc.MS_I_VERSION,
    "loud": sc.MS_SILENT, "symfollow": sc.MS_NOSYMFOLLOW,
}
PROPAGATIONS = {
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC, "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC, "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
A = sc.MOUNT_ATTR__ATIME
RECURSIVE = {   # option -> (attr_set, attr_clr)
    "rro": (sc.MOUNT_ATTR_RDONLY, 0), "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0), "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
    "rrelatime": (sc.MOUNT_ATTR_RELATIME, A), "rnorelatime": (sc.MOUNT_ATTR_STRICTATIME, A),
    "rnoatime": (sc.MOUNT_ATTR_NOATIME, A), "ratime": (sc.MOUNT_ATTR_RELATIME, A),
    "rstrictatime": (sc.MOUNT_ATTR_STRICTATIME, A), "rnostrictatime": (sc.MOUNT_ATTR_RELATIME, A),
}
# every option name config.md's "Linux mount options" table lists
SPEC_OPTIONS = """async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand noatime nodev
nodiratime noexec noiversion nolazytime nomand norelatime nostrictatime nosuid nosymfollow private ratime rbind rdev
rdiratime relatime remount rexec rnoatime rnodiratime rnoexec rnorelatime rnostrictatime rnosuid rnosymfollow ro
rprivate rrelatime rro rrw rshared rslave rstrictatime rsuid rsymfollow runbindable rw shared silent slave
strictatime suid symfollow sync tmpcopyup unbindable idmap ridmap""".split()


@pytest.mark.parametrize("opt", SPEC_OPTIONS)
def test_every_spec_option_is_recognised_not_passed_as_data(opt):
    assert parse_options([opt]).data == ""


@pytest.mark.parametrize("opt,flag", SET_FLAGS.items())
def test_setting_option_sets_its_flag(opt, flag):
    o = parse_options([opt])
    assert o.flags == flag and o.clear_flags == 0


@pytest.mark.parametrize("opt,flag", CLEAR_FLAGS.items())
def test_clearing_option_clears_and_records_its_flag(opt, flag):
    o = parse_options([opt])
    assert o.flags == 0 and o.clear_flags == flag


@pytest.mark.parametrize("opt,flag", CLEAR_FLAGS.items())
def test_later_clearing_option_wins_over_earlier_setting_one(opt, flag):
    setter = next(k for k, v in SET_FLAGS.items() if v == flag)
    assert parse_options([setter, opt]).flags & flag == 0
    assert parse_options([opt, setter]).flags & flag == flag
    assert parse_options([opt, setter]).clear_flags & flag == 0


@pytest.mark.parametrize("opt,flag", PROPAGATIONS.items())
def test_propagation_options_become_separate_calls_not_mount_flags(opt, flag):
    o = parse_options(["bind", opt])
    assert o.propagation == (flag,) and o.flags == 0


def test_propagation_calls_keep_their_order():
    assert parse_options(["rshared", "private"]).propagation == (sc.MS_SHARED | sc.MS_REC, sc.MS_PRIVATE)


@pytest.mark.parametrize("opt,expect", RECURSIVE.items())
def test_recursive_options_become_mount_setattr_attributes(opt, expect):
    o = parse_options([opt])
    assert (o.attr_set, o.attr_clr) == expect and o.flags == 0 and o.clear_flags == 0


def test_last_recursive_atime_mode_wins_and_keeps_other_attrs():
    o = parse_options(["rnoatime", "rro", "rstrictatime"])
    assert o.attr_set == sc.MOUNT_ATTR_STRICTATIME | sc.MOUNT_ATTR_RDONLY
    assert o.attr_clr == sc.MOUNT_ATTR__ATIME


def test_recursive_clear_after_set_cancels_the_set():
    o = parse_options(["rro", "rrw"])
    assert o.attr_set == 0 and o.attr_clr == sc.MOUNT_ATTR_RDONLY


def test_bind_and_rbind():
    assert parse_options(["bind"]).is_bind and not parse_options(["bind"]).is_recursive_bind
    assert parse_options(["rbind"]).is_bind and parse_options(["rbind"]).is_recursive_bind
    assert not parse_options(["ro"]).is_bind
    assert parse_options(["rbind", "ro"]).flags == sc.MS_RDONLY     # MS_BIND itself is not a remount flag


def test_idmap_options_are_extensions_never_mount_data():
    assert parse_options(["idmap"]).idmap and not parse_options(["idmap"]).recursive_idmap
    r = parse_options(["ridmap"])
    assert r.idmap and r.recursive_idmap and r.data == ""


def test_tmpcopyup_is_accepted_and_flagged():
    o = parse_options(["tmpcopyup", "nosuid"])
    assert o.tmpcopyup and o.data == "" and o.flags == sc.MS_NOSUID


def test_unknown_options_are_filesystem_data_in_order():
    o = parse_options(["nosuid", "size=65536k", "strictatime", "mode=755", "uid=5"])
    assert o.data == "size=65536k,mode=755,uid=5"
    assert o.flags == sc.MS_NOSUID | sc.MS_STRICTATIME


def test_typical_dev_mount_options():
    o = parse_options(["nosuid", "strictatime", "mode=755", "size=65536k"])
    assert o.flags == sc.MS_NOSUID | sc.MS_STRICTATIME and o.data == "mode=755,size=65536k"


def test_defaults_sets_nothing():
    o = parse_options(["defaults"])
    assert (o.flags, o.clear_flags, o.data) == (0, 0, "")


def test_empty_options():
    assert parse_options(()) == mounts.MountOptions()


def test_touches_atime_only_when_an_atime_option_is_given():
    assert parse_options(["noatime"]).touches_atime
    assert parse_options(["atime"]).touches_atime
    assert not parse_options(["ro", "nosuid"]).touches_atime


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        parse_options(["ro"]).flags = 0


# --- tmpcopyup's copy (copy_up) ----------------------------------------------------------------------------------
def _copy_with_swap(tmp_path, monkeypatch, swap):
    """copy_up of a directory holding the regular file `f`, which `swap(path)` replaces right after copy_up's
    lstat of it (a process sharing the directory, racing the create): the copy must not block or read what it
    was swapped for. SIGALRM turns a blocking open into a failure instead of a hung test."""
    import os
    import signal
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "f").write_text("content")
    real_stat = mounts.os.stat

    def racing_stat(name, *a, **kw):
        st = real_stat(name, *a, **kw)
        if name == "f":
            swap(str(src / "f"))
        return st
    monkeypatch.setattr(mounts.os, "stat", racing_stat)

    class Blocked(Exception):       # not an OSError: copy_up must not take it for its own failure
        pass

    def alarm(*_):
        raise Blocked("copy_up blocked on what the file was swapped for")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(5)
    s = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    d = os.open(dst, os.O_PATH)
    try:
        with pytest.raises(mounts.SyscallError) as e:
            mounts.copy_up(s, d, "/seeded")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.close(s)
        os.close(d)
    assert "tmpcopyup" in str(e.value)
    return dst


def test_copy_up_does_not_block_on_a_file_swapped_for_a_fifo(tmp_path, monkeypatch):
    import os

    def to_fifo(p):
        os.unlink(p)
        os.mkfifo(p)
    _copy_with_swap(tmp_path, monkeypatch, to_fifo)


def test_copy_up_does_not_read_a_device_a_file_was_swapped_for(tmp_path, monkeypatch):
    import os
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")

    def to_device(p):   # /dev/null here (as /dev/zero, read to its end, it would fill the tmpfs: memory)
        os.unlink(p)
        os.mknod(p, 0o600 | 0o020000, os.makedev(1, 3))
    dst = _copy_with_swap(tmp_path, monkeypatch, to_device)
    assert not (dst / "f").exists()
