"""CRIU driven in RPC mode (`criu swrk`): one request over a SOCK_SEQPACKET socketpair, notifications answered as
they come, one response.

Why RPC and not criu's command line: only RPC lets the runtime act *during* a restore, as runc does — run the
prestart/createRuntime hooks when criu has made the namespaces ("setup-namespaces"), learn the restored init's
pid ("post-restore"), and receive the pty master of a container with a terminal ("orphan-pts-master", the fd
arrives over this socket, SCM_RIGHTS) to pass on to --console-socket. The CLI has no way to hand that fd back.
RPC also answers a feature check (`--pre-dump` needs memory tracking) with data instead of text to parse, and
fails with errno + message instead of an exit status. criu's own detail stays in its log (dump.log/restore.log in
the work directory); errors quote its first `Error` line and name the log.

The messages (criu's images/rpc.proto, proto2) are encoded by hand: a few varint and length-delimited fields, no
protobuf library (nothing to install, nothing imported by any other command). Only checkpoint/restore import this.

    swrk(criu, req_type, opts, notify=None, child_setup=None, on_started=None) -> dict (the response)
    feature_check(criu, mem_track=..., lazy_pages=...) -> dict of booleans
    find(path) -> absolute path of a criu binary, or CriuError
"""
import os
import socket

from ..errors import RuntimeErr

# criu_req_type
DUMP, RESTORE, CHECK, PRE_DUMP, NOTIFY, FEATURE_CHECK, VERSION = 1, 2, 3, 4, 6, 9, 10
TYPE_NAMES = {DUMP: "DUMP", RESTORE: "RESTORE", CHECK: "CHECK", PRE_DUMP: "PRE_DUMP", NOTIFY: "NOTIFY",
              FEATURE_CHECK: "FEATURE_CHECK", VERSION: "VERSION"}
# criu_cg_mode, by runc's --manage-cgroups-mode names
CG_MODES = {"ignore": 0, "soft": 3, "full": 4, "strict": 5, "": 6}

# criu_opts: name -> (field number, kind); kind "v" varint, "s" string, or a nested message's field table
_KV = {"key": (1, "s"), "val": (2, "s")}
_OPTS = {
    "images_dir_fd": (1, "v"), "pid": (2, "v"), "leave_running": (3, "v"), "ext_unix_sk": (4, "v"),
    "tcp_established": (5, "v"), "evasive_devices": (6, "v"), "shell_job": (7, "v"), "file_locks": (8, "v"),
    "log_level": (9, "v"), "log_file": (10, "s"), "notify_scripts": (12, "v"), "root": (13, "s"),
    "ps": (11, {"address": (1, "s"), "port": (2, "v")}), "parent_img": (14, "s"), "track_mem": (15, "v"), "auto_dedup": (16, "v"), "work_dir_fd": (17, "v"),
    "link_remap": (18, "v"), "ext_mnt": (23, _KV), "manage_cgroups": (24, "v"),
    "cg_root": (25, {"ctrl": (1, "s"), "path": (2, "s")}), "rst_sibling": (26, "v"),
    "inherit_fd": (27, {"key": (1, "s"), "fd": (2, "v")}), "manage_cgroups_mode": (34, "v"),
    "external": (37, "s"), "empty_ns": (38, "v"), "join_ns": (39, {"ns": (1, "s"), "ns_file": (2, "s")}),
    "freeze_cgroup": (44, "s"), "tcp_skip_in_flight": (46, "v"), "lazy_pages": (48, "v"), "status_fd": (49, "v"),
    "orphan_pts_master": (50, "v"), "config_file": (51, "s"), "lsm_profile": (53, "s"),
}
_FEATURES = {"mem_track": (1, "v"), "lazy_pages": (2, "v")}
_REQ = {"type": (1, "v"), "opts": (2, _OPTS), "notify_success": (3, "v"), "keep_open": (4, "v"),
        "features": (5, _FEATURES)}
# criu_resp, for decoding: field number -> (name, kind)
_RESP = {1: ("type", "v"), 2: ("success", "v"), 3: ("dump", {1: ("restored", "v")}),
         4: ("restore", {1: ("pid", "v")}), 5: ("notify", {1: ("script", "s"), 2: ("pid", "v")}),
         7: ("cr_errno", "v"), 8: ("features", {1: ("mem_track", "v"), 2: ("lazy_pages", "v")}),
         9: ("cr_errmsg", "s"), 10: ("version", {1: ("major", "v"), 2: ("minor", "v"), 3: ("gitid", "s"),
                                                 4: ("sublevel", "v")}),
         11: ("status", "v")}


class CriuError(RuntimeErr):
    pass


# -- the wire format ------------------------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1               # negative int32: ten bytes, two's complement (protobuf's rule)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode(msg: dict, table: dict) -> bytes:
    """A dict (names of `table`) as protobuf bytes; list values are repeated fields, None is left out."""
    out = bytearray()
    for name, value in msg.items():
        if value is None:
            continue
        num, kind = table[name]
        for v in (value if isinstance(value, list) else [value]):
            if kind == "v":
                out += _varint(num << 3) + _varint(int(v))
            else:
                data = v.encode() if kind == "s" else encode(v, kind)
                out += _varint(num << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(data: bytes, table: dict) -> dict:
    """protobuf bytes -> dict by `table` (number -> (name, kind)); unknown fields are skipped."""
    out, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(data, i)
        elif wire == 2:
            n, i = _read_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wire == 1:
            v, i = int.from_bytes(data[i:i + 8], "little"), i + 8
        elif wire == 5:
            v, i = int.from_bytes(data[i:i + 4], "little"), i + 4
        else:
            raise CriuError(f"criu: undecodable response (wire type {wire})")
        if num not in table:
            continue
        name, kind = table[num]
        if kind == "s":
            v = v.decode(errors="replace")
        elif isinstance(kind, dict):
            v = decode(v, kind)
        elif v >= 1 << 63:
            v -= 1 << 64
        out[name] = v
    return out


# -- running criu ---------------------------------------------------------------------------------------------------

def find(path: str) -> str:
    """The criu binary --criu names (a path, or a name looked up in PATH, as runc's exec.Command does)."""
    if "/" not in path:
        import shutil
        found = shutil.which(path)
        if found is None:
            raise CriuError(f"criu: executable file not found in $PATH (install criu >= 3.17, or give --criu PATH)")
        return found
    if not os.access(path, os.X_OK):
        raise CriuError(f"--criu {path}: not an executable file")
    return os.path.abspath(path)


def swrk(criu: str, req_type: int, opts: dict | None, *, notify=None, child_setup=None, on_started=None,
         stdio=None, extra_fds=(), features: dict | None = None, log_path: str | None = None) -> dict:
    """Run `criu swrk 3`, send one request, answer its notifications, return the final response (a dict).

    child_setup(): runs in the forked child before exec (a private mount namespace, say); an exception there
    fails the call with its message. on_started(pid): in the parent once criu runs, before the request (runc
    places criu in the container's cgroups there, so restored tasks start in them). notify(script, pid, fds): for
    each notification; raising aborts criu. stdio: (in, out, err) fds for criu (default /dev/null, /dev/null,
    ours); extra_fds become criu's fds 4, 5, ... (inherit_fd). log_path: quoted when criu fails."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    stdio = stdio or (null, null, 2)
    pid = os.fork()
    if pid == 0:                     # the child: never returns
        try:
            parent.close()
            os.close(err_r)
            if child_setup is not None:
                child_setup()
            # every fd criu gets goes up high first, so the dup2s below cannot clobber one another
            srcs = [os.dup(fd) for fd in (*stdio, child.fileno(), *extra_fds)]
            for target, fd in enumerate(srcs):
                os.dup2(fd, target)  # inheritable
            os.execv(criu, [criu, "swrk", "3"])
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(err_w, (str(e) or e.__class__.__name__).encode())
            finally:
                os._exit(127)
    child.close()
    os.close(null)
    os.close(err_w)
    reaped = False
    try:
        msg = b""
        while chunk := os.read(err_r, 4096):
            msg += chunk
        os.close(err_r)
        if msg:
            raise CriuError(f"criu swrk: {msg.decode(errors='replace')}")
        if on_started is not None:
            on_started(pid)
        req = {"type": req_type, "opts": opts}
        if features is not None:
            req["features"] = features
        parent.send(encode(req, _REQ))
        while True:
            data, fds = _recv(parent)
            if not data:
                raise CriuError(f"criu failed: type {TYPE_NAMES.get(req_type, req_type)}: it exited without an "
                                f"answer{_quote_log(log_path)}")
            resp = decode(data, _RESP)
            if not resp.get("success"):
                close_all(fds)
                raise CriuError(_failure(resp, req_type, log_path))
            if resp.get("type") != NOTIFY:
                break
            n = resp.get("notify", {})
            try:
                if notify is not None:
                    notify(n.get("script", ""), n.get("pid", 0), fds)
            finally:
                close_all(fds)
            parent.send(encode({"type": NOTIFY, "notify_success": True}, _REQ))
        parent.shutdown(socket.SHUT_WR)
        _, status = os.waitpid(pid, 0)
        reaped = True
        if status != 0 and req_type != PRE_DUMP:
            raise CriuError(f"criu failed: type {TYPE_NAMES.get(req_type)}: criu exited with status "
                            f"{os.waitstatus_to_exitcode(status)}{_quote_log(log_path)}")
        return resp
    finally:
        parent.close()
        if not reaped:
            try:
                os.waitpid(pid, 0)   # its socket is closed: criu ends (and undoes a half-done dump/restore)
            except ChildProcessError:
                pass


def close_all(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _recv(sock) -> tuple[bytes, list]:
    data, anc, _, _ = sock.recvmsg(64 * 1024, socket.CMSG_SPACE(16 * 4))
    fds = []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += [int.from_bytes(payload[i:i + 4], "little") for i in range(0, len(payload) - len(payload) % 4, 4)]
    return data, fds


def _failure(resp: dict, req_type: int, log_path) -> str:
    what = TYPE_NAMES.get(resp.get("type", req_type), req_type)
    msg = f"criu failed: type {what}"
    if resp.get("cr_errno"):
        msg += f" errno {resp['cr_errno']} ({os.strerror(resp['cr_errno'])})"
    quote = _quote_log(log_path)
    if not quote.startswith(": "):       # no Error line in the log: criu's own message, its first real line
        lines = [ln.strip() for ln in resp.get("cr_errmsg", "").splitlines() if ln.strip() and not _harmless(ln)]
        msg += f": {lines[0]}" if lines else ""
    return msg + quote


def _harmless(line: str) -> bool:
    """criu's complaint that it cannot raise its own fd limit (no CAP_SYS_RESOURCE): it goes on regardless."""
    return "RLIMIT_NOFILE" in line


def _quote_log(log_path) -> str:
    """`: <criu's first Error line> (see LOG)` — what a user can act on, and where the rest is."""
    if not log_path:
        return ""
    first = ""
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if "Error" in line and not _harmless(line):
                    first = line.strip()
                    break
    except OSError:
        return ""
    return (f": {first}" if first else "") + f" (see {log_path})"


def feature_check(criu: str, **want) -> dict:
    """criu's answer to FEATURE_CHECK for the features named True in `want` (mem_track, lazy_pages)."""
    resp = swrk(criu, FEATURE_CHECK, None, features={k: bool(v) for k, v in want.items()})
    return resp.get("features", {})


def version(criu: str) -> dict:
    return swrk(criu, VERSION, None).get("version", {})
