"""linux.netDevices (config-linux.md "Network Devices"): move existing interfaces of the runtime's network namespace
into the container's, renamed to `name` when given. Parent side of `create`, once init's network namespace exists.

Per device, as runc's devChangeNetNamespace does:
    1  note the permanent, global-scope addresses     the kernel flushes addresses when a device changes namespace
    2  set it down                                     so nothing on the host uses it half-moved
    3  move and rename in one RTM_NEWLINK              IFLA_NET_NS_FD + IFLA_IFNAME: no window with a clashing name;
                                                       a name with %d is a template the kernel fills in
    4  re-add the noted addresses inside, set it up    the spec: "MUST set the network device state to up"
MTU and the other link attributes travel with the device.

Giving devices back: the spec says the runtime MUST NOT move them out before the namespace is deleted, and runc
doesn't: when the container's network namespace dies the kernel returns physical devices to the initial namespace
(under their container-side name) and destroys virtual ones (veth, macvlan...). So `delete` does nothing here.
Only a failed `create` gives devices back (name, addresses, up state restored), so it leaves the host as it found
it: move_all() keeps the namespace alive with an fd until release(), so even an init that already died can be
undone.

pyroute2 is imported here only, and this module only when a config has netDevices (it costs ~100 ms).
"""
import errno
import os

from ..errors import ConfigError, SyscallError
from . import syscalls as sc

IFF_UP = 0x1
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
AF_NETLINK, NETLINK_ROUTE = 16, 0

# errno of the move -> what it means for the config (anything else is reported as the failed call)
MOVE_ERRORS = {
    errno.EEXIST: "a device named {target!r} already exists in the container's network namespace",
    errno.EINVAL: "the kernel refuses to move it (a device bound to its namespace, e.g. lo or a bridge?)",
}


def check(net_devices: dict, net_path: str | None = None) -> None:
    """Before fork: every device exists in the runtime's network namespace, and the container's namespace (joined
    by `net_path`, else new) is not the runtime's own."""
    import _socket
    for name in net_devices:
        try:
            _socket.if_nametoindex(name)
        except OSError:
            raise ConfigError(f"linux.netDevices.{name}", "no such network interface in the runtime's network "
                              "namespace") from None
    if net_path and _same_file(net_path, "/proc/thread-self/ns/net"):
        raise ConfigError("linux.netDevices", f"the network namespace {net_path} is the runtime's own: the "
                          "devices would not move")


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


class _Device:
    """One moved device: enough to give it back."""
    __slots__ = ("host_name", "index", "addrs", "was_up")

    def __init__(self, host_name, index, addrs, was_up):
        self.host_name, self.index, self.addrs, self.was_up = host_name, index, addrs, was_up


class Moved:
    """The devices moved into one container's network namespace, in order. give_back() undoes the moves."""

    def __init__(self, pid: int, nsfd: int):
        self.pid, self.nsfd, self.devices = pid, nsfd, []

    def release(self) -> None:
        """Stop pinning the namespace (init is alive and waits on the FIFO from here on)."""
        if self.nsfd >= 0:
            os.close(self.nsfd)
            self.nsfd = -1

    def give_back(self) -> None:
        """Move every device back to the runtime's network namespace under its old name, with its addresses and
        up state. Best effort: a device already gone is skipped; the first other failure is raised at the end."""
        first = None
        if not self.devices:
            self.release()
            return
        with _Netlink(self._ns()) as ns, _Netlink(None) as host:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                for d in reversed(self.devices):
                    try:
                        _give_back_one(ns, host, own, d)
                    except Exception as e:  # noqa: BLE001 — try the others; report the first
                        first = first or e
            finally:
                os.close(own)
        self.devices = []
        self.release()
        if first is not None:
            raise first

    def _ns(self) -> int:
        if self.nsfd < 0:
            self.nsfd = _open_netns(self.pid)
        return self.nsfd


def move_all(net_devices: dict, pid: int) -> Moved:
    """Move every device of `net_devices` ({host name: {"name": container name}}) into the network namespace of
    `pid`. On failure the devices already moved are given back before the error is raised."""
    moved = Moved(pid, _open_netns(pid))
    try:
        with _Netlink(moved.nsfd) as ns, _Netlink(None) as host:
            for host_name, dev in net_devices.items():
                _move_one(host, ns, moved, host_name, (dev or {}).get("name") or host_name)
    except BaseException:
        try:
            moved.give_back()
        except Exception:  # noqa: BLE001 — the move's error is the one to report
            moved.release()
        raise
    return moved


def _move_one(host, ns, moved: Moved, name: str, target: str) -> None:
    path = f"linux.netDevices.{name}"
    link = host.link_by_name(name)
    if link is None:
        raise ConfigError(path, "no such network interface in the runtime's network namespace")
    index, was_up = link["index"], bool(link["flags"] & IFF_UP)
    addrs = _kept_addresses(host.call("get_addr", f"list addresses of {name}", index=index))      # 1
    host.call("link", f"set {name} down", "set", index=index, state="down")                     # 2
    before = _indexes(ns, "the container's")
    try:                                                                                        # 3
        host.ipr.link("set", index=index, net_ns_fd=moved.nsfd, ifname=target)
        err = None
    except Exception as e:  # noqa: BLE001 — pyroute2's NetlinkError carries the errno as .code
        err = getattr(e, "code", None) or errno.EIO
    new = _indexes(ns, "the container's") - before
    dev = None
    if new:  # moved (even when the rename inside failed: the kernel moves first, then renames)
        dev = _Device(name, new.pop(), addrs, was_up)
        moved.devices.append(dev)
    elif was_up:
        host.call("link", f"set {name} up again", "set", index=index, state="up")
    if err is not None:
        if err in MOVE_ERRORS:
            raise ConfigError(path, MOVE_ERRORS[err].format(target=target))
        raise SyscallError("netlink RTM_NEWLINK", f"move {name} into the container's network namespace as "
                           f"{target}", err)
    if dev is None:
        raise SyscallError("netlink RTM_GETLINK", f"{name} in the container's network namespace", errno.ENODEV)
    now = ns.link_by_index(dev.index).get_attr("IFLA_IFNAME")
    where = f"{name} (now {now}) in the container's network namespace"
    _add_addresses(ns, dev.index, addrs, where)                                                 # 4
    ns.call("link", f"set {where} up", "set", index=dev.index, state="up")


def _indexes(nl, whose: str) -> set:
    return {lk["index"] for lk in nl.call("get_links", f"list links in {whose} network namespace")}


def _give_back_one(ns, host, own_nsfd, d: _Device) -> None:
    if ns.link_by_index(d.index) is None:
        return                                   # gone already (deleted inside, or its veth peer was)
    ns.call("link", f"set {d.host_name} down", "set", index=d.index, state="down")
    before = _indexes(host, "the runtime's")
    ns.call("link", f"move {d.host_name} back to the runtime's network namespace", "set", index=d.index,
            net_ns_fd=own_nsfd, ifname=d.host_name)
    new = _indexes(host, "the runtime's") - before
    if new:
        index = new.pop()
        _add_addresses(host, index, d.addrs, d.host_name)
        if d.was_up:
            host.call("link", f"set {d.host_name} up", "set", index=index, state="up")


def _kept_addresses(msgs) -> list:
    """The addresses the spec says travel with the device: permanent (IFA_F_PERMANENT), global scope."""
    out = []
    for a in msgs:
        flags = a.get_attr("IFA_FLAGS")
        flags = a["flags"] if flags is None else flags
        if not flags & IFA_F_PERMANENT or a["scope"] != RT_SCOPE_UNIVERSE:
            continue
        local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
        out.append((a["family"], local, a["prefixlen"], a.get_attr("IFA_BROADCAST")))
    return out


def _add_addresses(nl, index, addrs, where) -> None:
    for family, address, prefixlen, broadcast in addrs:
        extra = {"broadcast": broadcast} if broadcast else {}
        nl.call("addr", f"add {address}/{prefixlen} to {where}", "add", index=index, family=family,
                address=address, prefixlen=prefixlen, **extra)


def _open_netns(pid: int) -> int:
    path = f"/proc/{pid}/ns/net"
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError("open", path, e.errno) from None


def _route_socket_in(nsfd: int) -> int:
    """A NETLINK_ROUTE socket created inside the namespace `nsfd` (a socket stays in the namespace it was made in):
    this thread steps in for the socket() call and straight back."""
    import _socket
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(nsfd, sc.CLONE_NEWNET, "the container's network namespace")
        try:
            s = _socket.socket(AF_NETLINK, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        finally:
            sc.setns(own, sc.CLONE_NEWNET, "the runtime's network namespace")
        return s.detach()
    finally:
        os.close(own)


class _Netlink:
    """pyroute2's IPRoute in the runtime's namespace (nsfd None) or in another one; netlink errors become
    SyscallError naming what was being done."""

    def __init__(self, nsfd):
        from pyroute2 import IPRoute
        self.ipr = IPRoute() if nsfd is None else IPRoute(fileno=_route_socket_in(nsfd))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.ipr.close()

    def call(self, method: str, what: str, *args, **kw):
        try:
            return getattr(self.ipr, method)(*args, **kw)
        except Exception as e:  # noqa: BLE001 — NetlinkError(code) from pyroute2
            code = getattr(e, "code", None)
            if code is None:
                raise
            raise SyscallError("netlink", what, code) from None

    def link_by_name(self, name):
        idx = self.call("link_lookup", f"look up {name}", ifname=name)
        return self.link_by_index(idx[0]) if idx else None

    def link_by_index(self, index):
        try:
            links = self.ipr.get_links(index)
        except Exception as e:  # noqa: BLE001
            if getattr(e, "code", None) == errno.ENODEV:
                return None
            raise
        return links[0] if links else None
