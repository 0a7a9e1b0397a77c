"""Real mount tests for paths, mounts, devices and rootfs: each runs in a forked child that unshared CLONE_NEWNS and
made / rprivate, so nothing reaches the host; the child pickles its findings (or its traceback) back over a pipe.
Needs root (the suite runs as root in the VM).
"""
import errno
import os
import pickle
import shutil
import stat
import subprocess
import tempfile
import traceback

import pytest

from ociruntime.config.model import Device, IdMap, Mount
from ociruntime.errors import ConfigError, SyscallError
from ociruntime.linux import devices, mounts, paths, rootfs
from ociruntime.linux import syscalls as sc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for mount namespaces")
BUSYBOX = "/bin/busybox"


# --- harness -----------------------------------------------------------------------------------------------------
def in_child(fn, *, userns=False, before_userns=None):
    """Run fn() in a forked child inside a fresh private mount namespace (and a user namespace mapping only root,
    when asked); return what fn returned, or fail the test with the child's traceback. before_userns() runs in a
    first private mount namespace whose mounts the user namespace's copy then inherits locked."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                      # never returns into pytest
        code = 1
        try:
            os.close(r)
            try:
                if before_userns:
                    sc.unshare(sc.CLONE_NEWNS)
                    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
                    before_userns()
                if userns:
                    sc.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWNS)
                    _map_self_to_root()
                else:
                    sc.unshare(sc.CLONE_NEWNS)
                sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
                out, code = ("ok", fn()), 0
            except BaseException:                     # noqa: B036 - everything goes back to the parent
                out = ("error", traceback.format_exc())
            data = pickle.dumps(out)
            while data:
                data = data[os.write(w, data):]
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        pytest.fail(f"child died without a report (status {status})")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        pytest.fail(value, pytrace=False)
    assert os.waitstatus_to_exitcode(status) == 0
    return value


def _map_self_to_root():
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/self/{name}", "w") as f:
            f.write("0 0 1\n")


def _mountinfo():
    with open("/proc/self/mountinfo") as f:
        return f.read()


def _mount_line(path):
    """The mountinfo line of the topmost mount at `path` (as this process sees paths)."""
    found = None
    for line in _mountinfo().splitlines():
        if line.split()[4] == path:
            found = line
    return found


def _flags(path):
    return mounts.mount_flags_of(path)


@pytest.fixture(autouse=True)
def host_mounts_unchanged():
    before = _mountinfo()
    yield
    assert _mountinfo() == before, "a mount leaked into the test's mount namespace"


@pytest.fixture
def scratch():
    """A tmp dir holding a small busybox rootfs and a bundle around it; removed afterwards."""
    base = tempfile.mkdtemp(prefix="ocirt-test-")
    root = os.path.join(base, "rootfs")
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "data", "mnt"):
        os.makedirs(os.path.join(root, d))
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    with open(os.path.join(root, "etc", "marker"), "w") as f:
        f.write("inside\n")
    try:
        yield base, root
    finally:
        shutil.rmtree(base)


# --- open_in_root ------------------------------------------------------------------------------------------------
RESOLVERS = {
    "openat2": paths.open_in_root,
    "walk": lambda root, p, **kw: _walk(root, p, **kw),
}


def _walk(root, p, **kw):
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        return paths.walk_in_root(fd, p, rootfs=root, **kw)
    finally:
        os.close(fd)


def _resolve(resolver, root, p, **kw):
    fd = RESOLVERS[resolver](root, p, **kw)
    try:
        return paths.resolved_path(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_absolute_symlink_resolves_inside_rootfs(scratch, resolver):
    _, root = scratch
    os.symlink("/etc", os.path.join(root, "abs"))
    os.symlink("/etc", os.path.join(root, "data", "abs"))          # nested: must restart at the root, not /data
    assert _resolve(resolver, root, "/abs") == os.path.join(root, "etc")
    assert _resolve(resolver, root, "/abs/marker") == os.path.join(root, "etc", "marker")
    assert _resolve(resolver, root, "/data/abs/marker") == os.path.join(root, "etc", "marker")


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_relative_dotdot_symlink_is_clamped_at_root(scratch, resolver):
    _, root = scratch
    os.symlink("../../../../../../etc", os.path.join(root, "data", "rel"))
    assert _resolve(resolver, root, "/data/rel") == os.path.join(root, "etc")


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_dotdot_in_path_is_clamped_at_root(scratch, resolver):
    _, root = scratch
    assert _resolve(resolver, root, "/../../../../etc") == os.path.join(root, "etc")
    assert _resolve(resolver, root, "data/../../etc/./marker") == os.path.join(root, "etc", "marker")
    assert _resolve(resolver, root, "/") == root


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_create_through_dangling_symlink_creates_inside_rootfs(scratch, resolver):
    base, root = scratch
    host_target = os.path.join(base, "outside")            # exists only if the resolver escaped
    os.symlink(host_target, os.path.join(root, "dangling"))
    got = _resolve(resolver, root, "/dangling/sub", create="dir")
    assert got == os.path.join(root, host_target.lstrip("/"), "sub")
    assert os.path.isdir(got) and not os.path.exists(host_target)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_create_file_makes_parents_and_an_empty_file(scratch, resolver):
    _, root = scratch
    got = _resolve(resolver, root, "/a/b/c.txt", create="file", mode=0o644)
    assert got == os.path.join(root, "a", "b", "c.txt")
    assert stat.S_ISREG(os.stat(got).st_mode) and os.path.getsize(got) == 0
    assert stat.S_ISDIR(os.stat(os.path.join(root, "a", "b")).st_mode)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_missing_path_without_create_is_enoent(scratch, resolver):
    _, root = scratch
    with pytest.raises(SyscallError) as e:
        RESOLVERS[resolver](root, "/no/such")
    assert e.value.err == errno.ENOENT


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_symlink_loop_is_eloop(scratch, resolver):
    _, root = scratch
    os.symlink("/loop2", os.path.join(root, "loop1"))
    os.symlink("/loop1", os.path.join(root, "loop2"))
    with pytest.raises(SyscallError) as e:
        RESOLVERS[resolver](root, "/loop1/x")
    assert e.value.err == errno.ELOOP


def test_fd_path_names_the_fd():
    assert paths.fd_path(7) == "/proc/self/fd/7"


def test_create_kind_is_checked(scratch):
    with pytest.raises(ValueError):
        paths.open_in_root(scratch[1], "/x", create="fifo")


# --- mount_all ---------------------------------------------------------------------------------------------------
def test_tmpfs_gets_flags_size_and_mode(scratch):
    base, root = scratch

    def child():
        # a directory the mount creates: mode= applies (over an existing one the directory's mode wins, as runc)
        mounts.mount_all(root, (Mount("/scratch", "tmpfs", "tmpfs", ("nosuid", "nodev", "noexec", "size=64k",
                                                                      "mode=1750")),), bundle=base)
        t = os.path.join(root, "scratch")
        sv = os.statvfs(t)
        return _flags(t), sv.f_blocks * sv.f_frsize, stat.S_IMODE(os.stat(t).st_mode)

    flags, size, mode = in_child(child)
    assert flags & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC) == sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    assert not flags & sc.MS_RDONLY
    assert size == 64 * 1024 and mode == 0o1750


def test_readonly_bind_applies_flags_and_leaves_source_writable(scratch):
    base, root = scratch
    src = os.path.join(base, "vol")
    os.makedirs(src)

    def child():
        mounts.mount_all(root, (Mount("/data", "bind", "vol", ("rbind", "ro", "nosuid", "nodev")),), bundle=base)
        d = os.path.join(root, "data")
        try:
            open(os.path.join(d, "x"), "w").close()
            write_err = None
        except OSError as e:
            write_err = e.errno
        open(os.path.join(src, "y"), "w").close()              # the source mount is untouched
        return _flags(d), write_err, os.listdir(d)

    flags, write_err, listing = in_child(child)
    assert flags & (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV) == sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV
    assert write_err == errno.EROFS and listing == ["y"]


def test_bind_of_a_file_creates_a_file_target(scratch):
    base, root = scratch
    with open(os.path.join(base, "hosts"), "w") as f:
        f.write("127.0.0.1 x\n")

    def child():
        mounts.mount_all(root, (Mount("/etc/hosts", None, os.path.join(base, "hosts"), ("bind", "ro")),),
                         bundle="/nonexistent")
        with open(os.path.join(root, "etc", "hosts")) as f:
            return f.read()

    assert in_child(child) == "127.0.0.1 x\n"


def test_bind_keeps_source_flags_it_was_not_told_to_drop(scratch):
    base, root = scratch
    src = os.path.join(base, "vol")
    os.makedirs(src)

    def child():
        sc.mount("tmpfs", src, "tmpfs", sc.MS_NOEXEC | sc.MS_NODEV, "size=16k")
        mounts.mount_all(root, (Mount("/data", None, src, ("bind", "ro")),
                                Mount("/mnt", None, src, ("bind", "ro", "dev"))), bundle=base)
        return _flags(os.path.join(root, "data")), _flags(os.path.join(root, "mnt"))

    kept, cleared = in_child(child)
    assert kept & (sc.MS_RDONLY | sc.MS_NOEXEC | sc.MS_NODEV) == sc.MS_RDONLY | sc.MS_NOEXEC | sc.MS_NODEV
    assert cleared & sc.MS_NODEV == 0 and cleared & sc.MS_NOEXEC


def test_bind_in_userns_keeps_locked_flags_it_cannot_drop(scratch):
    base, root = scratch
    src = os.path.join(base, "vol")
    os.makedirs(src)

    def lock():
        sc.mount("tmpfs", src, "tmpfs", sc.MS_NODEV | sc.MS_NOEXEC, "size=16k")

    def child():
        # "dev"/"exec" ask to clear flags the kernel locked: the first remount gets EPERM, the retry keeps them
        mounts.mount_all(root, (Mount("/data", None, src, ("bind", "ro", "dev", "exec")),), bundle=base)
        return _flags(os.path.join(root, "data"))

    flags = in_child(child, userns=True, before_userns=lock)
    assert flags & sc.MS_RDONLY and flags & sc.MS_NODEV and flags & sc.MS_NOEXEC


def test_sysfs_refused_in_userns_falls_back_to_binding_host_sys(scratch):
    base, root = scratch

    def child():
        mounts.mount_all(root, (Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),), bundle=base)
        s = os.path.join(root, "sys")
        return os.path.isdir(os.path.join(s, "kernel")), bool(_flags(s) & sc.MS_RDONLY)

    assert in_child(child, userns=True) == (True, True)


def test_propagation_options_set_the_mount_peer_group(scratch):
    base, root = scratch
    os.makedirs(os.path.join(base, "a"))

    def child():
        mounts.mount_all(root, (Mount("/data", None, "a", ("rbind", "rshared")),
                                Mount("/mnt", None, "a", ("rbind", "runbindable"))), bundle=base)
        return _mount_line(os.path.join(root, "data")), _mount_line(os.path.join(root, "mnt"))

    shared, unbindable = in_child(child)
    assert "shared:" in shared.split(" - ")[0]
    assert "unbindable" in unbindable.split(" - ")[0]


def test_recursive_readonly_reaches_submounts(scratch):
    base, root = scratch
    src = os.path.join(base, "tree")
    os.makedirs(os.path.join(src, "sub"))

    def child():
        sc.mount("tmpfs", os.path.join(src, "sub"), "tmpfs", 0, "size=16k")
        mounts.mount_all(root, (Mount("/data", None, src, ("rbind", "rro", "rnosuid")),), bundle=base)
        return _flags(os.path.join(root, "data")), _flags(os.path.join(root, "data", "sub")), _flags(src)

    top, sub, source = in_child(child)
    assert top & sc.MS_RDONLY and sub & sc.MS_RDONLY and sub & sc.MS_NOSUID
    assert not source & sc.MS_RDONLY


def test_proc_mount_and_symlinked_destination_stays_in_rootfs(scratch):
    base, root = scratch
    host_dir = os.path.join(base, "hostside")
    os.makedirs(host_dir)
    os.symlink(host_dir, os.path.join(root, "evil"))     # absolute: must resolve to <rootfs><host_dir>

    def child():
        mounts.mount_all(root, (Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
                                Mount("/evil", "tmpfs", "tmpfs", ("size=8k",))), bundle=base)
        inside = os.path.join(root, host_dir.lstrip("/"))
        return (os.path.exists(os.path.join(root, "proc", "self", "status")),
                _mount_line(inside) is not None, _mount_line(host_dir) is None)

    assert in_child(child) == (True, True, True)


def test_mount_error_names_the_destination(scratch):
    base, root = scratch

    def child():
        try:
            mounts.mount_all(root, (Mount("/mnt", "nosuchfs", "x", ()),), bundle=base)
        except SyscallError as e:
            return str(e), e.err
        return None, 0

    msg, err = in_child(child)
    assert msg == f"mount x -> {root}/mnt: ENODEV" and err == errno.ENODEV


def test_mounting_over_proc_files_is_refused(scratch):
    base, root = scratch
    with pytest.raises(ConfigError):
        mounts.mount_all(root, (Mount("/proc/self/attr/exec", None, "/etc/hostname", ("bind",)),), bundle=base)


def test_idmapped_bind_shows_mapped_owner(scratch):
    base, root = scratch
    src = os.path.join(base, "owned")
    os.makedirs(src)
    with open(os.path.join(src, "f"), "w"):
        pass
    os.chown(os.path.join(src, "f"), 0, 0)
    maps = (IdMap(0, 1000, 1),)

    def child():
        mounts.mount_all(root, (Mount("/data", None, src, ("bind", "idmap"), maps, maps),), bundle=base)
        st = os.stat(os.path.join(root, "data", "f"))
        return st.st_uid, st.st_gid, os.stat(os.path.join(src, "f")).st_uid

    assert in_child(child) == (1000, 1000, 0)


def test_idmap_on_a_fresh_filesystem_replaces_it_with_an_idmapped_clone(scratch):
    base, root = scratch
    maps = (IdMap(0, 2000, 1),)

    def child():
        mounts.mount_all(root, (Mount("/data", "tmpfs", "tmpfs", ("ridmap", "mode=755"), maps, maps),), bundle=base)
        d = os.path.join(root, "data")
        stacked = [ln for ln in _mountinfo().splitlines() if ln.split()[4] == d]
        return os.stat(d).st_uid, len(stacked)

    assert in_child(child) == (2000, 1)            # the plain mount was detached: one mount left, idmapped


def test_idmap_without_mappings_outside_a_userns_is_an_error(scratch):
    base, root = scratch
    os.makedirs(os.path.join(base, "v"))

    def child():
        try:
            mounts.mount_all(root, (Mount("/data", None, "v", ("bind", "idmap")),), bundle=base)
        except ConfigError as e:
            return str(e)

    assert "idmap" in in_child(child)


def test_cgroup_mount_calls_the_driver_hook(scratch):
    base, root = scratch
    seen = []
    mounts.mount_all(root, (Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid")),), bundle=base,
                     cgroup_mount=lambda dest, opts: seen.append((dest, opts.flags)))
    assert seen == [(os.path.join(root, "sys/fs/cgroup"), sc.MS_RDONLY | sc.MS_NOSUID)]


def test_default_cgroup_mount_is_read_only_and_lists_hierarchies(scratch):
    base, root = scratch

    def child():
        mounts.mount_all(root, (Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid", "noexec")),),
                         bundle=base)
        d = os.path.join(root, "sys/fs/cgroup")
        names = sorted(os.listdir(d))
        ro = [bool(_flags(os.path.join(d, n)) & sc.MS_RDONLY) for n in names] + [bool(_flags(d) & sc.MS_RDONLY)]
        return names, ro

    names, ro = in_child(child)
    expected = sorted(n for n, _, _ in mounts.host_cgroup_hierarchies()) or ["cgroup.controllers"]
    assert all(n in names for n in expected) and all(ro)


# --- setup_dev ---------------------------------------------------------------------------------------------------
def _dev_report(root):
    d = os.path.join(root, "dev")
    out = {}
    for name in sorted(os.listdir(d)):
        st = os.lstat(os.path.join(d, name))
        if stat.S_ISLNK(st.st_mode):
            out[name] = ("link", os.readlink(os.path.join(d, name)))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            out[name] = ("c" if stat.S_ISCHR(st.st_mode) else "b", os.major(st.st_rdev), os.minor(st.st_rdev),
                         stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        elif stat.S_ISFIFO(st.st_mode):
            out[name] = ("p", stat.S_IMODE(st.st_mode))
        else:
            out[name] = ("other",)
    return out


EXTRA = (Device("/dev/fuse", "c", 10, 229, 0o600, 1, 2), Device("/dev/loop9", "b", 7, 9, 0o660, 0, 6),
         Device("/dev/myfifo", "p", file_mode=0o640), Device("/dev/null", "c", 1, 3, 0o600, 0, 0))


def test_setup_dev_creates_default_and_configured_nodes_and_links(scratch):
    base, root = scratch

    def child():
        sc.mount("tmpfs", os.path.join(root, "dev"), "tmpfs", sc.MS_NOSUID, "mode=755")
        os.mkdir(os.path.join(root, "dev", "pts"))
        sc.mount("devpts", os.path.join(root, "dev", "pts"), "devpts", 0, "newinstance,ptmxmode=0666")
        devices.setup_dev(root, EXTRA, in_userns=False, dev_is_mounted=True)
        return _dev_report(root)

    rep = in_child(child)
    for name, (kind, major, minor) in {"zero": ("c", 1, 5), "full": ("c", 1, 7), "random": ("c", 1, 8),
                                       "urandom": ("c", 1, 9), "tty": ("c", 5, 0)}.items():
        assert rep[name] == (kind, major, minor, 0o666, 0, 0), name
    assert rep["null"] == ("c", 1, 3, 0o600, 0, 0)                 # the configured entry replaced the default
    assert rep["fuse"] == ("c", 10, 229, 0o600, 1, 2)
    assert rep["loop9"] == ("b", 7, 9, 0o660, 0, 6)
    assert rep["myfifo"] == ("p", 0o640)
    assert rep["fd"] == ("link", "/proc/self/fd")
    assert rep["stdin"] == ("link", "/proc/self/fd/0") and rep["stdout"] == ("link", "/proc/self/fd/1")
    assert rep["stderr"] == ("link", "/proc/self/fd/2")
    assert rep["ptmx"] == ("link", "pts/ptmx")
    assert "console" not in rep
    if os.path.exists("/proc/kcore"):
        assert rep["core"] == ("link", "/proc/kcore")


def test_setup_dev_without_devpts_makes_no_ptmx_link(scratch):
    base, root = scratch

    def child():
        sc.mount("tmpfs", os.path.join(root, "dev"), "tmpfs", 0, "mode=755")
        devices.setup_dev(root, (), in_userns=False, dev_is_mounted=True)
        return _dev_report(root)

    assert "ptmx" not in in_child(child)


def test_setup_dev_in_userns_binds_host_nodes(scratch):
    base, root = scratch

    def child():
        sc.mount("tmpfs", os.path.join(root, "dev"), "tmpfs", 0, "mode=755")
        devices.setup_dev(root, (Device("/dev/fuse", "c", 10, 229),), in_userns=True, dev_is_mounted=True)
        lines = [ln.split()[4] for ln in _mountinfo().splitlines()]
        return _dev_report(root), [p for p in lines if p.startswith(os.path.join(root, "dev") + "/")]

    rep, mounted = in_child(child)
    assert rep["null"][:3] == ("c", 1, 3) and rep["tty"][:3] == ("c", 5, 0)
    assert os.path.join(root, "dev", "null") in mounted and os.path.join(root, "dev", "urandom") in mounted
    if os.path.exists("/dev/fuse"):
        assert rep["fuse"][:3] == ("c", 10, 229)


def test_mknod_eperm_in_a_real_user_namespace_falls_back_to_bind(scratch):
    base, root = scratch

    def child():
        sc.mount("tmpfs", os.path.join(root, "dev"), "tmpfs", 0, "mode=755")
        devices.setup_dev(root, (), in_userns=False, dev_is_mounted=True)    # mknod is tried first, gets EPERM
        with open(os.path.join(root, "dev", "zero"), "rb") as f:
            return _dev_report(root), f.read(4)

    rep, data = in_child(child, userns=True)
    assert rep["zero"][:3] == ("c", 1, 5) and data == b"\0\0\0\0"


def test_existing_nodes_in_the_image_dev_are_kept(scratch):
    base, root = scratch
    marker = os.path.join(root, "dev", "null")
    with open(marker, "w") as f:
        f.write("image's own")

    def child():
        devices.setup_dev(root, (), in_userns=False, dev_is_mounted=False)
        with open(marker) as f:
            return f.read(), _dev_report(root)["zero"][:3]

    assert in_child(child) == ("image's own", ("c", 1, 5))


# --- prepare / pivot / masks / readonly --------------------------------------------------------------------------
def _pivoted(root, base, fn, *, propagation=None, no_pivot=False, extra_mounts=()):
    def child():
        rootfs.prepare(root, propagation)
        mounts.mount_all(root, (Mount("/proc", "proc", "proc", ("nosuid", "nodev", "noexec")),) + extra_mounts,
                         bundle=base)
        rootfs.pivot(root, no_pivot=no_pivot)
        rootfs.finish_propagation(propagation)
        return fn()
    return child


def test_pivot_makes_rootfs_the_root_and_the_old_root_is_gone(scratch):
    base, root = scratch

    def after():
        with open("/etc/marker") as f:
            marker = f.read()
        out = subprocess.run([BUSYBOX, "cat", "/etc/marker"], capture_output=True, text=True).stdout
        points = [ln.split()[4] for ln in _mountinfo().splitlines()]
        return sorted(os.listdir("/")), marker, out, points, os.getcwd()

    listing, marker, out, points, cwd = in_child(_pivoted(root, base, after))
    assert listing == ["bin", "data", "dev", "etc", "mnt", "proc", "sys", "tmp"]
    assert marker == "inside\n" and out == "inside\n" and cwd == "/"
    assert sorted(points) == ["/", "/proc"]               # nothing of the host's mount tree is left


def test_no_pivot_moves_and_chroots(scratch):
    base, root = scratch

    def after():
        with open("/etc/marker") as f:
            return sorted(os.listdir("/")), f.read()

    listing, marker = in_child(_pivoted(root, base, after, no_pivot=True))
    assert "bin" in listing and "work" not in listing and marker == "inside\n"


@pytest.mark.parametrize("propagation,tag", [("shared", "shared:"), ("unbindable", "unbindable"),
                                             ("private", None), ("slave", None), ("rshared", "shared:"),
                                             ("runbindable", "unbindable"), ("rprivate", None), ("rslave", None)])
def test_rootfs_propagation_is_applied_to_the_new_root(scratch, propagation, tag):
    base, root = scratch

    def after():
        return _mount_line("/").split(" - ")[0]

    optional = in_child(_pivoted(root, base, after, propagation=propagation))
    if tag:
        assert tag in optional
    else:
        assert "shared:" not in optional and "unbindable" not in optional


@pytest.mark.parametrize("propagation", ["unbindable", "runbindable"])
def test_unbindable_rootfs_still_takes_bind_mounts_and_ends_unbindable(scratch, propagation):
    # runc fails here (EINVAL binding from an unbindable tree): the flag goes on last
    base, root = scratch

    def child():
        rootfs.prepare(root, propagation)
        # the source is on a mount of its own (devtmpfs), not the rootfs's parent, which prepare() makes private
        mounts.mount_all(root, (Mount("/proc", "proc", "proc"), Mount("/data", "bind", "/dev", ("rbind",))),
                         bundle=base)
        rootfs.pivot(root)
        rootfs.readonly_paths(["/etc"])           # a bind after pivot
        rootfs.finish_propagation(propagation)
        return os.path.exists("/data/null"), _mount_line("/").split(" - ")[0], _mount_line("/data").split(" - ")[0]

    got, root_line, data_line = in_child(child)
    assert got and "unbindable" in root_line and "unbindable" in data_line


def test_unknown_rootfs_propagation_is_a_config_error():
    with pytest.raises(ConfigError):
        rootfs.prepare("/nonexistent", "sideways")


def test_masked_paths_hide_files_and_dirs_read_only(scratch):
    base, root = scratch
    os.makedirs(os.path.join(root, "secret", "dir"))
    with open(os.path.join(root, "secret", "dir", "key"), "w") as f:
        f.write("k")
    with open(os.path.join(root, "secret", "file"), "w") as f:
        f.write("s")
    os.symlink("/secret/file", os.path.join(root, "etc", "alias"))

    def after():
        rootfs.mask_paths(["/secret/dir", "/secret/file", "/not/there"])
        with open("/secret/file") as f:
            content = f.read()
        with open("/etc/alias") as f:
            alias = f.read()
        try:
            open("/secret/dir/new", "w").close()
            err = None
        except OSError as e:
            err = e.errno
        return os.listdir("/secret/dir"), content, alias, err, _flags("/secret/dir")

    listing, content, alias, err, flags = in_child(_masked_child(root, base, after))
    assert listing == [] and content == "" and alias == "" and err == errno.EROFS
    assert flags & sc.MS_RDONLY


def _masked_child(root, base, after):
    """mask_paths binds the container's /dev/null: give the rootfs one first."""
    def child():
        rootfs.prepare(root, None)
        sc.mount("tmpfs", os.path.join(root, "dev"), "tmpfs", 0, "mode=755")
        devices.setup_dev(root, (), in_userns=False, dev_is_mounted=True)
        rootfs.pivot(root)
        return after()
    return child


def test_readonly_paths_become_read_only_and_keep_their_flags(scratch):
    base, root = scratch
    os.makedirs(os.path.join(root, "data", "sub"))

    def after():
        sc.mount("tmpfs", "/mnt", "tmpfs", sc.MS_NOEXEC | sc.MS_NOSUID, "size=16k")
        rootfs.readonly_paths(["/data", "/mnt", "/missing"])
        errs = []
        for p in ("/data/x", "/mnt/x", "/etc/x"):
            try:
                open(p, "w").close()
                errs.append(None)
            except OSError as e:
                errs.append(e.errno)
        return errs, _flags("/mnt")

    errs, mnt_flags = in_child(_pivoted(root, base, after))
    assert errs == [errno.EROFS, errno.EROFS, None]            # the rest of the root stays writable
    assert mnt_flags & (sc.MS_RDONLY | sc.MS_NOEXEC | sc.MS_NOSUID) == sc.MS_RDONLY | sc.MS_NOEXEC | sc.MS_NOSUID


def test_remount_root_readonly(scratch):
    base, root = scratch

    def after():
        rootfs.remount_root_readonly()
        try:
            open("/etc/new", "w").close()
            return None
        except OSError as e:
            return e.errno

    assert in_child(_pivoted(root, base, after)) == errno.EROFS
    assert not os.path.exists(os.path.join(root, "etc", "new"))


def test_bind_console_puts_the_pty_slave_on_dev_console(scratch):
    base, root = scratch
    import fcntl
    import struct
    TIOCSPTLCK, TIOCGPTN = 0x40045431, 0x80045430

    def after():
        master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))              # unlockpt()
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]   # ptsname()
        rootfs.bind_console(f"/dev/pts/{n}")
        return os.stat("/dev/console").st_rdev == os.stat(f"/dev/pts/{n}").st_rdev

    extra = (Mount("/dev", "tmpfs", "tmpfs", ("mode=755",)),
             Mount("/dev/pts", "devpts", "devpts", ("newinstance", "ptmxmode=0666")))
    assert in_child(_pivoted(root, base, after, extra_mounts=extra)) is True
