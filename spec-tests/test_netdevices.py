"""config-linux.md "Network Devices": linux.netDevices moves interfaces of the runtime's network namespace into the
container's, renamed, with their permanent global addresses, MTU, and set up.

The host's network is never touched: each test runs in a throwaway network namespace of its own (the `host_net`
fixture unshares this test process's thread, so every `ociruntime` it starts sees that namespace as the runtime's),
and its devices are veth pairs made there. When the fixture steps back, the namespace and all its devices go.
"""
import os
import subprocess
import time

import pytest

from ociruntime.linux import syscalls as sc


def ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and p.returncode:
        raise AssertionError(f"ip {' '.join(args)}: {p.stderr}")
    return p.stdout


def exists(name):
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def veth(name, peer, *, addrs=(), mtu=None, up=True):
    ip("link", "add", name, "type", "veth", "peer", "name", peer)
    for a in addrs:
        ip("addr", "add", *a.split(), "dev", name)
    if mtu:
        ip("link", "set", name, "mtu", str(mtu))
    if up:
        ip("link", "set", name, "up")


@pytest.fixture
def host_net():
    """A fresh network namespace standing in for the host's, for this test only."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    sc.unshare(sc.CLONE_NEWNET)
    try:
        yield
    finally:
        sc.setns(own, sc.CLONE_NEWNET, "the test's own network namespace")
        os.close(own)


@pytest.fixture
def rt(host_net, runtime):
    """The runtime fixture, set up inside host_net and cleaned up before host_net steps back."""
    return runtime


def wait_stopped(rt, cid, timeout=5.0):
    deadline = time.time() + timeout
    while rt.state(cid)["status"] != "stopped":
        assert time.time() < deadline, f"{cid} did not stop"
        time.sleep(0.02)


def wait_gone(*names, timeout=5.0):
    deadline = time.time() + timeout
    while any(exists(n) for n in names):
        assert time.time() < deadline, f"still there: {[n for n in names if exists(n)]}"
        time.sleep(0.05)


def probe(rt, bundle, cid, script):
    """create (the devices move), start the probe, wait for it; its output from /out in the rootfs."""
    bundle.set_args("sh", "-c", f"{{ {script}; }} > /out 2>&1").write()
    rt("create", "--bundle", bundle.path, cid)
    moved = rt.state(cid)
    rt("start", cid)
    wait_stopped(rt, cid)
    with open(os.path.join(bundle.rootfs, "out")) as f:
        return moved, f.read()


def test_device_moves_in_renamed_with_global_addresses_mtu_and_up(rt, bundle, cid):
    veth("ndhost0", "ndpeer0", mtu=1400,
         addrs=("10.77.0.2/24", "169.254.7.7/16 scope link", "fd77::2/64 nodad"))
    bundle.config["linux"]["netDevices"] = {"ndhost0": {"name": "ctr0"}}
    _, out = probe(rt, bundle, cid, "ip -o addr show dev ctr0; ip -o link show dev ctr0; "
                                    "cat /sys/class/net/ctr0/mtu")
    assert "inet 10.77.0.2/24" in out and "inet6 fd77::2/64" in out
    assert "169.254.7.7" not in out, "a link-scope address must not move (global scope only)"
    link = next(ln for ln in out.splitlines() if "mtu" in ln and "ctr0" in ln)
    assert "mtu 1400" in link and ",UP" in link
    assert out.splitlines()[-1] == "1400"


def test_device_is_gone_from_the_runtime_namespace_once_created(rt, bundle, cid):
    veth("ndhost1", "ndpeer1")
    bundle.config["linux"]["netDevices"] = {"ndhost1": {}}
    rt("create", "--bundle", bundle.set_args("true").write(), cid)
    assert not exists("ndhost1")
    pid = rt.state(cid)["pid"]
    inside = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", "link", "show", "dev", "ndhost1"],
                            capture_output=True, text=True)
    assert inside.returncode == 0 and "ndhost1" in inside.stdout, "no name given: the host name is kept"


def test_delete_leaves_the_device_to_the_kernel_a_veth_is_destroyed(rt, bundle, cid):
    # the spec: the runtime MUST NOT move it out; a dying namespace destroys virtual devices (and a veth's peer)
    veth("ndhost2", "ndpeer2")
    bundle.config["linux"]["netDevices"] = {"ndhost2": {"name": "ctr0"}}
    rt("create", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    rt("delete", "--force", cid)
    wait_gone("ndhost2", "ndpeer2", "ctr0")


def test_name_with_percent_d_is_a_template_the_kernel_fills(rt, bundle, cid):
    veth("ndhost3", "ndpeer3")
    bundle.config["linux"]["netDevices"] = {"ndhost3": {"name": "ceth%d"}}
    _, out = probe(rt, bundle, cid, "ip -o link show dev ceth0")
    assert "ceth0" in out and "does not exist" not in out


def test_several_devices_move_into_a_user_namespace_container(rt, bundle, cid):
    veth("ndhost4", "ndpeer4", addrs=("10.78.0.2/24",))
    veth("ndhost5", "ndpeer5")
    bundle.ns("pid", "network", "ipc", "uts", "mount", "user")
    ids = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["uidMappings"], bundle.config["linux"]["gidMappings"] = ids, ids
    path = bundle.rootfs
    while path != "/":              # the user namespace's root is an unprivileged host uid
        os.chmod(path, os.stat(path).st_mode | 0o055)
        path = os.path.dirname(path)
    os.chmod(bundle.rootfs, 0o777)
    bundle.config["linux"]["netDevices"] = {"ndhost4": {"name": "eth0"}, "ndhost5": {"name": "eth1"}}
    _, out = probe(rt, bundle, cid, "ip -o addr show dev eth0; ip -o link show dev eth1")
    assert "inet 10.78.0.2/24" in out and "eth1" in out and ",UP" in out


def test_missing_device_fails_create_naming_it_and_leaves_nothing(rt, bundle, cid):
    bundle.config["linux"]["netDevices"] = {"ndmissing": {}}
    p = rt("create", "--bundle", bundle.set_args("true").write(), cid, check=False)
    assert p.returncode != 0
    assert "linux.netDevices.ndmissing" in p.stderr and "no such network interface" in p.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_a_name_clash_inside_fails_create_and_gives_every_device_back(rt, bundle, cid):
    veth("ndhost6", "ndpeer6", mtu=1300, addrs=("10.79.0.2/24",))
    veth("ndhost7", "ndpeer7", up=False)
    # ndhost7 -> lo: the container's namespace has a lo already (the spec: MUST generate an error)
    bundle.config["linux"]["netDevices"] = {"ndhost6": {"name": "ctr0"}, "ndhost7": {"name": "lo"}}
    p = rt("create", "--bundle", bundle.set_args("true").write(), cid, check=False)
    assert p.returncode != 0
    assert "linux.netDevices.ndhost7" in p.stderr and "already exists" in p.stderr
    assert "inet 10.79.0.2/24" in ip("-o", "addr", "show", "dev", "ndhost6")
    link6 = ip("-o", "link", "show", "dev", "ndhost6")
    assert "mtu 1300" in link6 and ",UP" in link6
    assert ",UP" not in ip("-o", "link", "show", "dev", "ndhost7"), "it was down: it stays down"
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_init_failing_after_the_move_still_gives_the_device_back(rt, bundle, cid):
    # init exits (no such program) after the devices moved: its namespace must not take them along
    veth("ndhost8", "ndpeer8", addrs=("10.80.0.2/24",))
    bundle.config["linux"]["netDevices"] = {"ndhost8": {"name": "ctr0"}}
    p = rt("create", "--bundle", bundle.set_args("/no/such/program").write(), cid, check=False)
    assert p.returncode != 0
    assert "inet 10.80.0.2/24" in ip("-o", "addr", "show", "dev", "ndhost8")
    assert ",UP" in ip("-o", "link", "show", "dev", "ndhost8")


def test_a_joined_network_namespace_receives_the_device_and_keeps_it_after_delete(rt, bundle, cid):
    veth("ndhost9", "ndpeer9")
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        deadline = time.time() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/thread-self/ns/net"):
            assert time.time() < deadline
            time.sleep(0.01)
        bundle.config["linux"]["namespaces"] = [
            {"type": t} for t in ("pid", "ipc", "uts", "mount")] + [
            {"type": "network", "path": f"/proc/{holder.pid}/ns/net"}]
        bundle.config["linux"]["netDevices"] = {"ndhost9": {"name": "joined0"}}
        rt("create", "--bundle", bundle.set_args("true").write(), cid)
        rt("delete", "--force", cid)
        inside = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "ip", "-o", "link", "show", "joined0"],
                                capture_output=True, text=True)
        assert inside.returncode == 0, "the namespace's owner, not the runtime, decides what happens to it"
    finally:
        holder.kill()
        holder.wait()


def test_joining_the_runtimes_own_network_namespace_is_refused(rt, bundle, cid):
    veth("ndhostA", "ndpeerA")
    bundle.config["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [
        {"type": "network", "path": f"/proc/{os.getpid()}/ns/net"}]
    bundle.config["linux"]["netDevices"] = {"ndhostA": {}}
    p = rt("create", "--bundle", bundle.set_args("true").write(), cid, check=False)
    assert p.returncode != 0 and "linux.netDevices" in p.stderr and "runtime's own" in p.stderr
    assert exists("ndhostA")


def test_invalid_names_are_refused_before_anything_happens(rt, bundle, cid):
    veth("ndhostB", "ndpeerB")
    bundle.config["linux"]["netDevices"] = {"ndhostB": {"name": "bad/name"}}
    p = rt("create", "--bundle", bundle.set_args("true").write(), cid, check=False)
    assert p.returncode != 0 and "linux.netDevices.ndhostB.name" in p.stderr
    assert exists("ndhostB")


def test_features_report_net_devices_enabled(runtime):
    import json
    assert json.loads(runtime("features").stdout)["linux"]["netDevices"] == {"enabled": True}
