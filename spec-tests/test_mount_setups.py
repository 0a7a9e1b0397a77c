"""Mount set-ups real callers send, as runc runs them: rootfsPropagation in every spelling (containerd's CRI sends
rshared/rslave for Kubernetes volumes), a read-only /dev, no mount namespace, bind sources and a --root that only
the host's root can reach from a user namespace."""
import os
import subprocess
import time

import pytest

from conftest import without_mount_ns


def mountinfo_line(text, point):
    """The optional fields (shared:N, master:N, unbindable) of the mount at `point` in a mountinfo dump."""
    for line in text.splitlines():
        f = line.split()
        if len(f) > 4 and f[4] == point:
            return " ".join(f[6:f.index("-")])
    raise AssertionError(f"{point} is not a mount point in:\n{text}")


@pytest.fixture
def shared_volume(tmp_path):
    """A tmpfs in a shared peer group of our own mount namespace (confine.sh's), as a host's volume would be;
    unmounted with everything propagated into it."""
    vol = tmp_path / "vol"
    vol.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "vol", str(vol)], check=True)
    subprocess.run(["mount", "--make-shared", str(vol)], check=True)
    yield str(vol)
    subprocess.run(["umount", "-R", "-l", str(vol)], check=True)


# the container mounts a tmpfs on /vol/in, then waits for the host's mount on /vol/out and reports what it sees
VOLUME_SCRIPT = """mkdir -p /vol/in && mount -t tmpfs in /vol/in && echo from-container > /vol/in/f
i=0; while [ ! -e /vol/out/f ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
cat /vol/out/f > /tmp/seen 2>&1; cat /proc/self/mountinfo > /tmp/mountinfo; echo done > /tmp/done"""


@pytest.mark.parametrize("propagation,volume", [("rslave", "rslave"), ("rshared", "rshared"),
                                                ("slave", "rslave"), ("shared", "rshared")])
def test_cri_volume_propagation_host_to_container_and_bidirectional(runtime, bundle, cid, shared_volume,
                                                                    propagation, volume):
    # HostToContainer: rootfsPropagation rslave + an rslave rbind; Bidirectional: rshared + rshared (containerd CRI)
    bundle.config["linux"]["rootfsPropagation"] = propagation
    bundle.config["mounts"].append({"destination": "/vol", "type": "bind", "source": shared_volume,
                                    "options": ["rbind", volume]})
    caps = ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]
    bundle.config["process"]["capabilities"] = {s: caps for s in ("bounding", "effective", "permitted")}
    runtime("run", "-d", "--bundle", bundle.set_args("sh", "-c", VOLUME_SCRIPT).write(), cid)
    inner = os.path.join(shared_volume, "in")
    deadline = time.monotonic() + 5
    while not os.path.exists(os.path.join(inner, "f")) and time.monotonic() < deadline:
        time.sleep(0.02)
    from_container = os.path.ismount(inner)
    os.makedirs(os.path.join(shared_volume, "out"), exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "out", os.path.join(shared_volume, "out")], check=True)
    with open(os.path.join(shared_volume, "out", "f"), "w") as f:
        f.write("from-host\n")
    done = os.path.join(bundle.rootfs, "tmp", "done")
    deadline = time.monotonic() + 15
    while not os.path.exists(done) and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(os.path.join(bundle.rootfs, "tmp", "seen")) as f:
        assert f.read() == "from-host\n"                  # host -> container: both
    with open(os.path.join(bundle.rootfs, "tmp", "mountinfo")) as f:
        info = f.read()
    root = mountinfo_line(info, "/")
    vol = mountinfo_line(info, "/vol")
    if propagation.endswith("shared"):
        assert from_container, "a mount under a Bidirectional volume must reach the host"
        assert "shared:" in root                           # config-linux.md: the rootfs mount is shared
        assert "shared:" in vol                            # a peer of the host's volume
    else:
        assert not from_container, "a HostToContainer volume must not pass the container's mounts to the host"
        assert "shared:" not in root
        assert "master:" in vol and "shared:" not in vol   # receives, never sends


@pytest.mark.parametrize("propagation", ["private", "rprivate", "unbindable", "runbindable"])
def test_rootfs_propagation_private_and_unbindable_end_on_the_containers_root(runtime, bundle, cid, propagation):
    # runc fails the unbindable ones (EINVAL on its rootfs self-bind); the spec allows them: applied last
    bundle.config["linux"]["rootfsPropagation"] = propagation
    p = runtime("run", "--bundle", bundle.set_args("cat", "/proc/self/mountinfo").write(), cid)
    root = mountinfo_line(p.stdout, "/")
    assert "shared:" not in root and "master:" not in root
    assert ("unbindable" in root) == propagation.endswith("unbindable")
    assert ("unbindable" in mountinfo_line(p.stdout, "/dev")) == propagation.endswith("unbindable")


def test_read_only_dev_is_populated_then_made_read_only_as_runc(runtime, bundle, cid):
    # a /dev tmpfs with `ro`: runc mounts it writable, makes nodes, links and mounts under it, then remounts it ro
    dev = next(m for m in bundle.config["mounts"] if m["destination"] == "/dev")
    dev["options"].append("ro")
    p = runtime("run", "--bundle", bundle.set_args(
        "sh", "-c", "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && echo null-writable; touch /dev/new 2>&1; "
                    "cat /proc/self/mountinfo").write(), cid)
    listing = p.stdout.splitlines()[0].split()
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd", "stdin"} <= set(listing)
    assert "null-writable" in p.stdout and "Read-only file system" in p.stdout
    opts = {ln.split()[4]: ln.split()[5] for ln in p.stdout.splitlines() if ln[:1].isdigit()}
    assert opts["/dev"].split(",")[0] == "ro" and opts["/dev/pts"].split(",")[0] == "rw"


# --- no mount namespace: the container MUST inherit the runtime's (config-linux.md) ------------------------------

def own_mounts():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def test_without_mount_namespace_the_container_is_chrooted_and_its_mounts_are_removed(runtime, bundle, cid):
    # runc: chroot instead of pivot_root, mounts made in the runtime's mount namespace (and left there: runc 1.1.5
    # leaves them all; here `delete`, which `run` ends with, detaches them)
    before = own_mounts()
    out = runtime("run", "--bundle", without_mount_ns(bundle).set_args(
        "sh", "-c", "ls /; readlink /proc/self/ns/mnt; ls /dev | grep -c null; "
                    "grep -c ' /proc ' /proc/self/mountinfo").write(), cid).stdout.split()
    assert out[:3] == ["bin", "dev", "etc"] and "tmp" in out
    assert out[-3] == os.readlink("/proc/self/ns/mnt")           # the runtime's mount namespace
    assert out[-2:] == ["1", "1"]                                 # /dev populated, /proc mounted
    assert own_mounts() == before


def test_without_mount_namespace_exec_runs_in_the_containers_root(runtime, bundle, cid):
    # runc 1.1.5 execs such a process in the HOST's root; here it is chroot'ed where init is (security)
    before = own_mounts()
    runtime("run", "-d", "--bundle", without_mount_ns(bundle).set_args("sleep", "60").write(), cid)
    assert {os.path.join(bundle.rootfs, "proc"), bundle.rootfs} <= own_mounts()   # in our namespace, as runc
    assert runtime("exec", cid, "ls", "/").stdout.split()[:3] == ["bin", "dev", "etc"]
    runtime("delete", "--force", cid)
    assert own_mounts() == before


def test_without_mount_namespace_a_failed_create_leaves_no_mount(runtime, bundle, cid):
    before = own_mounts()
    p = runtime("create", "--bundle", without_mount_ns(bundle).set_args("/no/such/program").write(), cid,
                check=False)
    assert p.returncode != 0 and "/no/such/program" in p.stderr
    assert own_mounts() == before


def test_without_mount_namespace_the_runtimes_root_propagation_is_left_alone(runtime, bundle, cid):
    # runc 1.1.5 makes the runtime's / rslave (its prepareRoot runs in the host's namespace): not done here
    without_mount_ns(bundle).set_args("true").write()
    script = (f'{runtime.exe} --root {runtime.root} run --bundle {bundle.path} {cid} && '
              'awk \'$5 == "/" {print $7}\' /proc/self/mountinfo')
    p = subprocess.run(["unshare", "--mount", "--propagation", "shared", "sh", "-c", script],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0].startswith("shared:"), p.stdout


# --- user namespace: what only the host's root can reach is opened before entering it (runc) ---------------------

def user_namespaced(bundle):
    """A user namespace mapping 0 to host uid 100000; the rootfs is made reachable for that uid, nothing else."""
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["type"] != "cgroup"]
    path = os.path.abspath(bundle.rootfs)
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o055)
        path = os.path.dirname(path)
    return bundle


def test_user_namespace_binds_sources_below_directories_only_host_root_can_search(runtime, bundle, cid, tmp_path):
    # runc opens the sources with the host's rights before its init enters the user namespace
    secret = tmp_path / "secret"
    (secret / "vol").mkdir(parents=True)
    (secret / "vol" / "f").write_text("from-host\n")
    (secret / "file").write_text("a file\n")
    os.chmod(secret, 0o700)
    user_namespaced(bundle).config["mounts"] += [
        {"destination": "/tmp/vol", "type": "bind", "source": str(secret / "vol"), "options": ["rbind", "ro"]},
        {"destination": "/tmp/one", "type": "bind", "source": str(secret / "file"), "options": ["bind"]}]
    out = runtime("run", "--bundle", bundle.set_args(
        "sh", "-c", "cat /tmp/vol/f /tmp/one; touch /tmp/vol/new 2>&1; id -u").write(), cid).stdout
    assert out.splitlines()[:2] == ["from-host", "a file"] and "Read-only file system" in out
    assert out.split()[-1] == "0"


def test_user_namespace_container_with_a_private_root_dir(bundle, cid, tmp_path):
    # a --root only host root can enter (0700: mktemp -d, runc's own default): init gets the exec FIFO as an fd
    from conftest import Runtime
    root = tmp_path / "private-root"
    root.mkdir(mode=0o700)
    os.chmod(root, 0o700)
    rt = Runtime(root)
    rt.ids.append(cid)
    try:
        rt("create", "--bundle", user_namespaced(bundle).set_args("sh", "-c", "id -u").write(), cid)
        assert os.stat(root).st_mode & 0o777 == 0o700
        rt("start", cid)
        rt.wait_status(cid, "stopped")
    finally:
        rt.cleanup()


@pytest.mark.parametrize("point", ["create:init-pid", "create:init-ready"])
def test_without_mount_namespace_delete_force_after_create_was_killed_leaves_no_mount(runtime, bundle, cid, point):
    # the rootfs self-bind and the container's mounts below it are in OUR namespace: a create SIGKILLed once init
    # has made them (or while it makes them) must not leave them on the host for `delete --force` to miss
    before = own_mounts()
    env = dict(os.environ, OCIRUNTIME_TEST_FAULT=point)
    p = runtime("create", "--bundle", without_mount_ns(bundle).set_args("sleep", "60").write(), cid, check=False,
                env=env)
    assert p.returncode == -9, p.stderr
    runtime("delete", "--force", cid)      # kills init (in the cgroups) first, then detaches
    assert own_mounts() == before


def test_user_namespace_bind_of_a_read_only_host_mount_cannot_be_remounted_writable_inside(runtime, bundle, cid,
                                                                                        tmp_path):
    # the kernel locks the flags of mounts a less privileged user namespace gets from a more privileged one
    # (MNT_LOCK_READONLY...): the container's root must not make a read-only host mount writable through its bind
    src = tmp_path / "rohost"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(src)], check=True)   # read-only mount, rw superblock
        b = user_namespaced(bundle)
        b.config["mounts"].append({"destination": "/tmp/vol", "type": "bind", "source": str(src), "options": ["rbind"]})
        for k, caps in b.config["process"]["capabilities"].items():
            caps.append("CAP_SYS_ADMIN")
        out = runtime("run", "--bundle", b.set_args(
            "sh", "-c", "mount -o remount,bind,rw /tmp/vol 2>&1; touch /tmp/vol/escaped 2>&1; true").write(), cid).stdout
        assert not (src / "escaped").exists(), out
    finally:
        subprocess.run(["umount", "-l", str(src)])


def test_user_namespace_bind_of_a_read_only_host_mount_below_a_0700_dir_stays_locked(runtime, bundle, cid, tmp_path):
    # a source only the host's root reaches is opened by the runtime inside the container's mount namespace, whose
    # copy of the host's mounts the kernel locked (runc 1.1): no remount can make it writable, and the fd of it
    # does not reach the container's process
    secret = tmp_path / "secret"
    src = secret / "rohost"
    src.mkdir(parents=True)
    os.chmod(secret, 0o700)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(src)], check=True)   # read-only mount, rw superblock
        b = user_namespaced(bundle)
        b.config["mounts"].append({"destination": "/tmp/vol", "type": "bind", "source": str(src), "options": ["rbind"]})
        for caps in b.config["process"]["capabilities"].values():
            caps.append("CAP_SYS_ADMIN")
        out = runtime("run", "--bundle", b.set_args(
            "sh", "-c", "ls /proc/self/fd; mount -o remount,bind,rw /tmp/vol 2>&1; touch /tmp/vol/escaped 2>&1; true"
        ).write(), cid).stdout
        assert not (src / "escaped").exists(), out
        assert "Read-only file system" in out and "ermission denied" in out, out
        assert sorted(out.split()[:4]) == ["0", "1", "2", "3"], out     # ls's own directory fd, nothing of ours
    finally:
        subprocess.run(["umount", "-l", str(src)])


# --- idmapped bind mounts (runc 1.2's idmap.bats, which youki's idmap tests mirror) -----------------------------

def _owned_source(tmp_path, uid, gid):
    src = tmp_path / "idmap-src"
    src.mkdir()
    (src / "foo.txt").write_text("idmap\n")
    os.chown(src / "foo.txt", uid, gid)
    os.chmod(tmp_path, 0o755)
    return str(src)


def _stat_foo(runtime, bundle, cid):
    return runtime("run", "--bundle", bundle.set_args("stat", "-c", "=%u=%g=", "/tmp/m/foo.txt").write(),
                   cid).stdout.strip()


def test_mount_uid_gid_mappings_alone_make_an_idmapped_mount(runtime, bundle, cid, tmp_path):
    # config.md: uidMappings/gidMappings are "the mapping to convert UIDs from the source file system to the
    # destination mount point"; the idmap option is only a SHOULD. runc 1.2 idmaps any mount that has them
    # (non-recursively unless ridmap): host uid 0 shows as 100000 through the mapping 0 -> 100000
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["mounts"].append({"destination": "/tmp/m", "type": "bind", "source": _owned_source(tmp_path, 0, 0),
                                    "options": ["bind"], "uidMappings": maps, "gidMappings": maps})
    assert _stat_foo(runtime, bundle, cid) == "=100000=100000="


@pytest.mark.parametrize("options,mapped", [(["bind"], True), (["bind", "idmap"], True), (["rbind", "ridmap"], True),
                                            (["rbind", "idmap"], False)])
def test_user_namespace_container_gets_its_idmapped_mounts(runtime, bundle, cid, tmp_path, options, mapped):
    # the idmapping needs privilege over the source's filesystem, which the container's user namespace lacks:
    # the runtime prepares the idmapped tree with the host's rights and init only moves it in (runc 1.2). With
    # no mount mappings, "idmap" takes the container's own mapping (config.md MAY; runc 1.2, youki's implied-
    # mapping tests): host uid 100000 is the container's 0 then, and the mount shows host root's file as 0 too
    src = _owned_source(tmp_path, 0, 0)
    m = {"destination": "/tmp/m", "type": "bind", "source": src, "options": options}
    if mapped:
        m["uidMappings"] = m["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    user_namespaced(bundle).config["mounts"].append(m)
    assert _stat_foo(runtime, bundle, cid) == "=0=0="
