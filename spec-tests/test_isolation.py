"""config.md / config-linux.md: namespaces, rootfs, process and the failure rules, checked from inside real
containers (the probe is busybox, its output captured by `run`)."""
import json
import os
import socket
import subprocess

import pytest

from conftest import EXE, console_listener, read_pty_until

ALL_NS = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


def run_sh(runtime, bundle, cid, script, **kw):
    p = runtime("run", "--bundle", bundle.set_args("sh", "-c", script).write(), cid, check=False, **kw)
    assert p.returncode == 0, f"rc={p.returncode} stderr={p.stderr}"
    return p.stdout


def open_path_to(path):
    """The user namespace's root is an unprivileged host uid: it needs search rights down to the rootfs."""
    path = os.path.abspath(path)
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o055)
        path = os.path.dirname(path)


def own_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def test_process_args_env_and_cwd_are_applied(runtime, bundle, cid):
    bundle.config["process"]["env"] = ["PATH=/bin", "GREETING=hi there"]
    bundle.config["process"]["cwd"] = "/tmp"
    out = run_sh(runtime, bundle, cid, 'echo "$GREETING|$(pwd)|$0"')
    assert out == "hi there|/tmp|sh\n"


@pytest.mark.parametrize("uid,env,home", [(0, [], "/root"), (65534, [], "/nonexistent"), (4321, [], "/"),
                                          (0, ["HOME="], "/root"), (4321, ["HOME=/mine"], "/mine")],
                         ids=["root", "nobody", "no-passwd-entry", "empty", "given"])
def test_home_comes_from_the_containers_passwd_when_env_has_none(runtime, bundle, cid, uid, env, home):
    # runc: without HOME in process.env, the home of process.user.uid in the container's /etc/passwd, else "/"
    bundle.config["process"]["env"] = ["PATH=/bin"] + env
    bundle.config["process"]["user"] = {"uid": uid, "gid": uid}
    assert run_sh(runtime, bundle, cid, 'echo "HOME=$HOME"') == f"HOME={home}\n"


def test_exec_sets_home_of_the_execd_user(runtime, bundle, cid):
    bundle.config["process"]["env"] = ["PATH=/bin"]
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "30").write(), cid)
    homes = [runtime("exec", *u, cid, "sh", "-c", 'echo "$HOME"').stdout.strip()
             for u in ((), ("--user", "65534"), ("--user", "4321"), ("--env", "HOME=/x"))]
    assert homes == ["/root", "/nonexistent", "/", "/x"]
    runtime("kill", cid, "KILL")


def test_missing_cwd_is_created_0755_inside_the_rootfs(runtime, bundle, cid):
    # runc makes a missing process.cwd (MkdirAll 0755, owned by the container's root), also with a read-only
    # root; a symlink in the image cannot send the creation outside the rootfs
    os.symlink("/../../../../../..", os.path.join(bundle.rootfs, "escape"))
    bundle.config["process"]["cwd"] = "/escape/work/dir"
    bundle.config["process"]["user"] = {"uid": 65534, "gid": 65534, "umask": 0o077}
    bundle.config["root"]["readonly"] = True
    out = run_sh(runtime, bundle, cid, "pwd; stat -c '%a %u' /work /work/dir")
    assert out == "/work/dir\n755 0\n755 0\n"
    assert os.path.isdir(os.path.join(bundle.rootfs, "work", "dir"))


def test_process_user_uid_gid_and_additional_gids(runtime, bundle, cid):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 6]}
    out = run_sh(runtime, bundle, cid, "id -u; id -g; id -G")
    uid, gid, groups = out.split("\n")[:3]
    assert (uid, gid) == ("1000", "1001")
    assert set(groups.split()) >= {"5", "6"}


def test_process_umask_is_applied(runtime, bundle, cid):
    bundle.config["process"]["user"]["umask"] = 0o077
    assert run_sh(runtime, bundle, cid, "umask") == "0077\n"


def test_hostname_and_domainname_in_new_uts_namespace(runtime, bundle, cid):
    bundle.config["hostname"] = "box1"
    bundle.config["domainname"] = "example.test"
    out = run_sh(runtime, bundle, cid, "hostname; cat /proc/sys/kernel/domainname")
    assert out == "box1\nexample.test\n"
    assert socket.gethostname() != "box1"


@pytest.mark.parametrize("kind,nsname", [("pid", "pid"), ("network", "net"), ("ipc", "ipc"), ("uts", "uts"),
                                          ("mount", "mnt"), ("cgroup", "cgroup"), ("time", "time")])
def test_each_new_namespace_differs_from_the_runtime(runtime, bundle, cid, kind, nsname):
    bundle.ns(*{kind, "mount", "pid", "uts"})
    out = run_sh(runtime, bundle, cid, f"readlink /proc/self/ns/{nsname}")
    assert out.strip() != own_ns(nsname)


def test_all_eight_namespaces_with_a_user_namespace_and_mappings(runtime, bundle, cid):
    bundle.ns(*ALL_NS)
    open_path_to(bundle.rootfs)
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    # the user namespace's root must be able to read the rootfs: files owned by host root show as nobody
    out = run_sh(runtime, bundle, cid, "cat /proc/self/uid_map; id -u; echo $$; readlink /proc/self/ns/user")
    lines = out.split("\n")
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1] == "0" and lines[2] == "1"
    assert lines[3] != own_ns("user")


def test_id_mappings_without_a_user_namespace_are_ignored_as_runc(runtime, bundle, cid):
    # config-linux.md is silent; runc 1.1.5 reads uidMappings/gidMappings only with a user namespace and otherwise
    # runs the container in the runtime's (crun's test_uid_gid userns-full-mapping gives mappings and no "user")
    bundle.ns("mount", "pid")
    bundle.config.pop("hostname")
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    out = run_sh(runtime, bundle, cid, "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user")
    lines = out.split("\n")
    assert lines[0].split() == ["0", "0", "4294967295"]
    assert lines[1] == "0" and lines[2] == own_ns("user")


def test_time_namespace_offsets_shift_the_boottime_clock(runtime, bundle, cid):
    bundle.ns("pid", "mount", "time")
    bundle.config.pop("hostname")
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}}
    out = run_sh(runtime, bundle, cid, "cut -d. -f1 /proc/uptime")
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert int(out) >= host + 86400 * 364


def test_network_namespace_has_loopback_up(runtime, bundle, cid):
    out = run_sh(runtime, bundle, cid, "ip -o link show lo; ip -o addr show lo; ip -o link | wc -l")
    assert "LOWER_UP" in out.split("\n")[0]
    assert "inet 127.0.0.1/8" in out
    assert out.split("\n")[-2].strip() == "1"      # nothing but lo: a fresh namespace


def test_namespace_given_by_path_is_joined(runtime, bundle, make_id, tmp_path):
    a, b = make_id(), make_id()
    runtime("create", "--bundle", bundle.set_args("sleep", "10").write(), a)
    pid = runtime.state(a)["pid"]
    netns = os.readlink(f"/proc/{pid}/ns/net")
    uts = os.readlink(f"/proc/{pid}/ns/uts")
    b2 = type(bundle)(tmp_path / "b2")
    b2.config["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                        {"type": "network", "path": f"/proc/{pid}/ns/net"},
                                        {"type": "uts", "path": f"/proc/{pid}/ns/uts"}]
    b2.config.pop("hostname")
    out = run_sh(runtime, b2, b, "readlink /proc/self/ns/net; readlink /proc/self/ns/uts")
    assert out.split() == [netns, uts]


def test_missing_namespace_is_inherited_from_the_runtime(runtime, bundle, cid):
    bundle.ns("pid", "mount")
    bundle.config.pop("hostname")
    out = run_sh(runtime, bundle, cid, "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc")
    assert out.split() == [own_ns("net"), own_ns("ipc")]


def test_pid_namespace_makes_the_process_pid_1(runtime, bundle, cid):
    assert run_sh(runtime, bundle, cid, "echo $$") == "1\n"


def test_no_runtime_fd_reaches_the_container(runtime, bundle, cid):
    out = run_sh(runtime, bundle, cid, "ls /proc/self/fd")
    # 0 1 2 and the fd ls itself opened for the directory (3)
    assert set(out.split()) <= {"0", "1", "2", "3"}, out


def test_inherited_caller_fd_does_not_reach_the_container(runtime, bundle, cid):
    r, w = os.pipe()
    os.set_inheritable(r, True)
    try:
        bundle.set_args("sh", "-c", f"ls -l /proc/self/fd/ | grep -c pipe: || true").write()
        p = subprocess.run([EXE, "--root", runtime.root, "run", "--bundle", bundle.path, cid],
                           capture_output=True, text=True, pass_fds=(r,), timeout=30)
    finally:
        os.close(r)
        os.close(w)
    # stdout/stderr are pipes themselves (2); the extra inherited pipe must not be there
    assert p.stdout.strip() == "2", p.stdout + p.stderr


def test_preserve_fds_passes_exactly_the_given_fds(runtime, bundle, cid, tmp_path):
    out = tmp_path / "passed.txt"
    bundle.set_args("sh", "-c", "echo via-fd3 >&3; ls /proc/self/fd").write()
    # a shell opens fd 3 (and 4, which must not be passed) for the runtime, as a caller would
    p = subprocess.run(["sh", "-c", f'exec 3>"{out}" 4>/dev/null; exec "$@"', "sh", EXE, "--root", runtime.root,
                        "run", "--preserve-fds", "1", "--bundle", bundle.path, cid],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == "via-fd3\n"
    fds = set(p.stdout.split())
    assert "3" in fds and fds <= {"0", "1", "2", "3", "4"}
    # fd 4 in the listing can only be ls's own directory fd, never the caller's /dev/null


def test_readonly_root_refuses_writes(runtime, bundle, cid):
    bundle.config["root"]["readonly"] = True
    out = run_sh(runtime, bundle, cid, "touch /x 2>/dev/null && echo writable || echo readonly; touch /tmp/y; echo ok")
    assert out.split() == ["readonly", "ok"] or out.split()[0] == "readonly"


def test_masked_paths_are_empty_and_readonly_paths_refuse_writes(runtime, bundle, cid):
    bundle.config["linux"]["maskedPaths"] = ["/proc/keys", "/sys/firmware", "/proc/nonexistent"]
    bundle.config["linux"]["readonlyPaths"] = ["/proc/sys"]
    out = run_sh(runtime, bundle, cid,
                 "wc -c < /proc/keys; ls /sys/firmware | wc -l; "
                 "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo w || echo ro")
    assert out.split() == ["0", "0", "ro"]


def test_default_devices_exist_with_their_numbers(runtime, bundle, cid):
    out = run_sh(runtime, bundle, cid,
                 "for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done; "
                 "for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; ls -d /dev/pts /dev/shm")
    lines = out.splitlines()
    want = {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7", "/dev/random": "1:8",
            "/dev/urandom": "1:9", "/dev/tty": "5:0"}
    for line in lines[:6]:
        name, nums, mode = line.split()
        assert nums == want[name] and mode == "666", line
    assert lines[6:11] == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"]


def test_linux_devices_are_created_with_mode_and_owner(runtime, bundle, cid):
    bundle.config["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                          "fileMode": 0o640, "uid": 0, "gid": 8}]
    bundle.config["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3,
                                                           "access": "rwm"})
    out = run_sh(runtime, bundle, cid, "stat -c '%t:%T %a %u %g' /dev/mynull; echo hi > /dev/mynull && echo ok")
    assert out.split("\n")[:2] == ["1:3 640 0 8", "ok"]


def test_a_device_path_with_a_trailing_slash_is_made_at_the_cleaned_path(runtime, bundle, cid):
    # crun's test_devices.py (handle-device-trailing-slash): linux.devices path "/mnt/" makes the node /mnt, as runc
    # (its filepath.Join cleans the path); it failed with mknod ENOENT on an empty name
    bundle.config["linux"]["devices"] = [{"path": "/mnt/", "type": "b", "major": 10, "minor": 229}]
    out = run_sh(runtime, bundle, cid, "stat -c '%F %t:%T' /mnt")
    assert out.strip() == "block special file a:e5", out


def test_mounts_tmpfs_with_options(runtime, bundle, cid):
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]})
    out = run_sh(runtime, bundle, cid, "grep ' /data ' /proc/self/mounts; stat -c %a /data")
    mline, mode = out.splitlines()
    opts = mline.split()[3].split(",")
    assert {"nosuid", "nodev", "noexec", "size=1024k", "mode=700"} <= set(opts)
    assert mode == "700"


def test_tmpfs_over_an_existing_directory_takes_its_mode_as_runc(runtime, bundle, cid):
    """runc 1.1: a tmpfs mounted over a directory of the rootfs gets that directory's mode (Docker's `--tmpfs /tmp`
    keeps /tmp's 1777), whatever mode= says; a directory created for the mount keeps mode=."""
    os.chmod(os.path.join(bundle.rootfs, "tmp"), 0o1777)
    for dest in ("/tmp", "/fresh"):
        bundle.config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                                        "options": ["nosuid", "nodev", "mode=700"]})
    out = run_sh(runtime, bundle, cid, "stat -c %a /tmp /fresh; grep ' /tmp ' /proc/self/mountinfo")
    assert out.splitlines()[:2] == ["1777", "700"], out
    assert "mode=700" in out.splitlines()[2], out

def test_read_only_tmpfs_over_an_existing_directory_takes_its_mode_too(runtime, bundle, cid):
    """crun's test_mounts.py (mount-tmpfs-permissions): a "ro" tmpfs over a 0712 directory shows 712. runc 1.1
    mounts the tmpfs read-write, chmods it, then remounts the mount read-only (the superblock stays rw)."""
    os.mkdir(os.path.join(bundle.rootfs, "test-tmpfs"))
    os.chmod(os.path.join(bundle.rootfs, "test-tmpfs"), 0o712)
    bundle.config["mounts"].append({"destination": "/test-tmpfs", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["ro"]})
    out = run_sh(runtime, bundle, cid, "stat -c %a /test-tmpfs; grep ' /test-tmpfs ' /proc/self/mountinfo;"
                                       "touch /test-tmpfs/x 2>/dev/null && echo writable || echo read-only")
    mode, line, writable = out.splitlines()
    assert mode == "712", out
    assert line.split()[5].split(",")[0] == "ro", out
    assert writable == "read-only", out



def test_tmpcopyup_fills_the_tmpfs_with_what_the_directory_held(runtime, bundle, cid):
    """runc's tmpcopyup extension (crun's mount-tmpfs-to-rootfs uses it): the tmpfs starts with a copy of the
    directory it covers, files, subdirectories and symlinks with their modes and owners; writes stay in the tmpfs."""
    d = os.path.join(bundle.rootfs, "seeded")
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "sub", "f"), "w") as f:
        f.write("content")
    os.chmod(os.path.join(d, "sub", "f"), 0o604)
    os.chown(os.path.join(d, "sub", "f"), 1, 2)
    os.symlink("sub/f", os.path.join(d, "link"))
    os.chmod(d, 0o751)
    bundle.config["mounts"].append({"destination": "/seeded", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup", "nosuid"]})
    out = run_sh(runtime, bundle, cid, "cat /seeded/link; echo; stat -c '%a %u:%g' /seeded /seeded/sub/f;"
                                       "readlink /seeded/link; touch /seeded/new; grep ' /seeded ' /proc/self/mountinfo")
    lines = out.splitlines()
    assert lines[:4] == ["content", "751 0:0", "604 1:2", "sub/f"], out
    assert " - tmpfs " in lines[4], out
    assert sorted(os.listdir(d)) == ["link", "sub"]          # the new file went to the tmpfs


def test_bind_mount_ro_of_a_host_directory(runtime, bundle, cid, tmp_path):
    src = tmp_path / "shared"
    src.mkdir()
    (src / "f").write_text("from-host")
    bundle.config["mounts"].append({"destination": "/mnt/in", "type": "bind", "source": str(src),
                                    "options": ["rbind", "ro"]})
    out = run_sh(runtime, bundle, cid, "cat /mnt/in/f; echo; touch /mnt/in/g 2>/dev/null && echo w || echo ro")
    assert out.split() == ["from-host", "ro"]
    assert not (src / "g").exists()


def test_mount_destination_symlink_to_host_path_stays_inside_rootfs(runtime, bundle, cid, tmp_path):
    # CVE-2021-30465 class: a symlink in the rootfs pointing at a host directory
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(str(victim), os.path.join(bundle.rootfs, "escape"))
    bundle.config["mounts"].append({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"})
    run_sh(runtime, bundle, cid, "touch /escape/inside")
    assert os.listdir(victim) == []
    assert os.path.isdir(os.path.join(bundle.rootfs, str(victim).lstrip("/")))


@pytest.mark.parametrize("dev_ro", [False, True], ids=["dev-rw", "dev-ro"])
def test_terminal_master_is_sent_to_the_console_socket(runtime, bundle, cid, tmp_path, dev_ro):
    if dev_ro:       # /dev/console is made in a read-only /dev before it turns read-only (runc)
        next(m for m in bundle.config["mounts"] if m["destination"] == "/dev")["options"].append("ro")
    sock_path = str(tmp_path / "console.sock")
    srv, t, got = console_listener(sock_path)
    bundle.config["process"]["terminal"] = True
    bundle.set_args("sh", "-c", "tty; stat -c %t:%T /dev/console; echo done").write()
    runtime("create", "--bundle", bundle.path, "--console-socket", sock_path, cid)
    t.join(10)
    srv.close()
    assert "fd" in got
    runtime("start", cid)
    data = read_pty_until(got["fd"])
    lines = data.decode().split()
    assert lines[0].startswith("/dev/pts/")
    assert lines[1].startswith("88:")   # /dev/console is a bind of the pty slave (major 136 = 0x88)


def test_terminal_belongs_to_the_process_user_and_foreground_output_keeps_plain_newlines(runtime, bundle, cid):
    # runc 1.1.5 side by side: the pty is chowned to process.user.uid, its group stays devpts' gid=5 (tty), mode
    # 0620; run/exec in the foreground clear onlcr on it, so the bytes that come out are "\n", not "\r\n"
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.set_args("sh", "-c", "stat -c '%u %g %a' $(tty) /dev/console; sleep 30").write()
    p = subprocess.Popen([runtime.exe, "--root", runtime.root, "run", "--bundle", bundle.path, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = b""
        while first.count(b"\n") < 2 and (chunk := os.read(p.stdout.fileno(), 64)):
            first += chunk
        runtime.wait_status(cid, "running")
        out = runtime("exec", "-t", "--user", "1001:1001", cid, "sh", "-c", "stat -c '%u %g %a' $(tty); echo x")
    finally:
        runtime("kill", cid, "KILL", check=False)
        p.communicate(timeout=10)
    assert first == b"1000 5 620\n1000 5 620\n", first      # with onlcr: "...\r\n"
    assert out.stdout == "1001 5 620\nx\n", out.stdout + out.stderr


def test_stdio_belongs_to_the_process_user_as_in_runc(runtime, bundle, cid, tmp_path):
    # runc's fixStdioPermissions: the caller's pipes and files too (a non-root process can reopen /dev/stdout),
    # but not /dev/null, and the group is left alone
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.set_args("sh", "-c", "stat -L -c '%u %g' /proc/self/fd/0 /proc/self/fd/1; echo again >> /dev/stdout").write()
    with open(tmp_path / "out", "w+") as out:
        subprocess.run([runtime.exe, "--root", runtime.root, "run", "--bundle", bundle.path, cid],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, check=True, timeout=30)
        assert os.fstat(out.fileno()).st_uid == 1000
    assert (tmp_path / "out").read_text() == "0 0\n1000 0\nagain\n"


def test_terminal_without_console_socket_fails_create_cleanly(runtime, bundle, cid):
    bundle.config["process"]["terminal"] = True
    p = runtime("create", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode != 0 and "console-socket" in p.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_detached_run_with_a_terminal_fails_telling_to_use_console_socket(runtime, bundle, cid):
    # refused as runc refuses it; the message says what to do in the words crun's test_tty detach-tty looks for
    bundle.config["process"]["terminal"] = True
    p = runtime("run", "--detach", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode != 0 and "use --console-socket" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_a_masked_path_cannot_be_unmasked_by_a_mount_in_mounts(runtime, bundle, cid, tmp_path):
    # mounts[] tries to put host content back over a masked directory: masking runs after every mount
    src = tmp_path / "fw"
    src.mkdir()
    (src / "secret").write_text("host firmware")
    bundle.config["mounts"].append({"destination": "/sys/firmware", "type": "bind", "source": str(src),
                                    "options": ["rbind", "rw"]})
    bundle.config["linux"]["maskedPaths"] = ["/sys/firmware"]
    out = run_sh(runtime, bundle, cid, "ls -A /sys/firmware | wc -l; touch /sys/firmware/x 2>/dev/null && echo w || echo ro")
    assert out.split() == ["0", "ro"]
    assert sorted(os.listdir(src)) == ["secret"]


def test_exec_cpu_affinity_final_applies_to_the_exec_process_only(runtime, bundle, cid, tmp_path):
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    proc = dict(bundle.config["process"], args=["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
                terminal=False, execCPUAffinity={"initial": "0-1", "final": "0"})
    (tmp_path / "p.json").write_text(json.dumps(proc))
    out = runtime("exec", "--process", str(tmp_path / "p.json"), cid).stdout
    assert out.split() == ["Cpus_allowed_list:", "0"]


def test_exec_cpu_affinity_initial_may_lie_outside_the_containers_cpuset(runtime, bundle, cid, tmp_path):
    # config.md: "initial" applies before the process joins the container's cgroup (housekeeping CPUs), the
    # process then runs where the cpuset allows
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    bundle.config["linux"]["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
    runtime("run", "-d", "--bundle", bundle.set_args("sleep", "10").write(), cid)
    proc = dict(bundle.config["process"], args=["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
                terminal=False, execCPUAffinity={"initial": "1"})
    (tmp_path / "p.json").write_text(json.dumps(proc))
    out = runtime("exec", "--process", str(tmp_path / "p.json"), cid).stdout
    assert out.split() == ["Cpus_allowed_list:", "0"]


@pytest.mark.parametrize("command", ["run", "exec"])
def test_preserve_fds_with_gaps_passes_none_of_the_runtimes_own_fds(runtime, bundle, cid, tmp_path, command):
    # the caller asks for 4 fds but has only fd 3 open: fds the runtime opens for itself may land in the gaps
    # (the console socketpair, the exec program's memfd...) and must not reach the container
    listing = ["sh", "-c", "ls -l /proc/self/fd/ | grep -- '->' | sed 's/.* \\([0-9]*\\) -> /\\1 /'"]
    if command == "exec":
        runtime("run", "-d", "--bundle", bundle.set_args("sleep", "10").write(), cid)
        argv = ["exec", "--preserve-fds", "4", cid, *listing]
    else:
        bundle.set_args(*listing).write()
        argv = ["run", "--preserve-fds", "4", "--bundle", bundle.path, cid]
    p = subprocess.run(["sh", "-c", 'exec 3>/dev/null; exec "$@"', "sh", EXE, "--root", runtime.root, *argv],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    passed = dict(line.split(" ", 1) for line in p.stdout.splitlines())
    assert passed.get("3") == "/dev/null"
    assert not {fd for fd in passed if fd not in ("0", "1", "2", "3")}, passed


def test_idmapped_bind_mount_with_its_own_mappings_without_a_user_namespace(runtime, bundle, cid, tmp_path):
    """crun's test_mounts.py mount-idmapped-mounts-without-userns: mounts[].uidMappings 0->1000 (config-linux.md
    idmap) show a file the host owns as 0:0 as 1000:1000. The helper's pid was read in the container's pid namespace
    and its uid_map looked up in the host's /proc (EPERM). runc 1.1.5 has no idmapped mounts to compare with."""
    src = tmp_path / "idsrc"
    src.mkdir()
    (src / "file").write_text("")
    os.chown(src / "file", 0, 0)
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}]
    bundle.config["mounts"].append({"destination": "/foo", "type": "bind", "source": str(src),
                                    "options": ["bind", "ro", "idmap"], "uidMappings": maps, "gidMappings": maps})
    assert run_sh(runtime, bundle, cid, "stat -c %u:%g /foo/file").strip() == "1000:1000"


@pytest.mark.parametrize("own_maps,want", [(True, "1:1"), (False, "0:0")], ids=["mount-maps", "userns-maps"])
def test_idmapped_bind_mount_in_a_user_namespace(runtime, bundle, cid, tmp_path, own_maps, want):
    """crun's test_mounts.py mount-idmapped-mounts: user namespace 0->100000; a file the host owns as 0:0 through
    an idmap mount with its own maps 0->100001 shows as 1:1, through the container's maps (none of its own, as
    runc 1.2 requires) as 0:0. The maps name host ids: the runtime, in the host's user namespace, idmaps the tree
    and hands it to init (the maps were written from inside the container's user namespace: EACCES)."""
    bundle.ns("pid", "mount", "ipc", "uts", "user")
    open_path_to(bundle.rootfs)
    os.mkdir(os.path.join(bundle.rootfs, "foo"))          # the container's root may not write the rootfs
    for key in ("uidMappings", "gidMappings"):
        bundle.config["linux"][key] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    src = tmp_path / "idsrc"
    src.mkdir()
    (src / "file").write_text("")
    os.chown(src / "file", 0, 0)
    open_path_to(src)
    m = {"destination": "/foo", "type": "bind", "source": str(src), "options": ["bind", "ro", "idmap"]}
    if own_maps:
        m["uidMappings"] = m["gidMappings"] = [{"containerID": 0, "hostID": 100001, "size": 10}]
    bundle.config["mounts"].append(m)
    assert run_sh(runtime, bundle, cid, "stat -c %u:%g /foo/file").strip() == want
