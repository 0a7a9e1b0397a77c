"""What the opencontainers runtime-tools validation suite (validation/*/*.go + cmd/runtimetest) sets up and asserts,
where no other spec-test already covers it, replayed with busybox instead of runtimetest.

The suite's bundle is its own rootfs (`root.path` "."), its default config is `generate.New("linux")`: all five
capability sets including ambient, the suite's own seccomp profile (an allow list whose `clone` rule is
SCMP_CMP_MASKED_EQ with value = mask, valueTwo = datum) and six mounts that runtimetest looks for in
/proc/self/mountinfo in config order. The other checks mirror linux_masked_paths / linux_readonly_paths (FIFO and
device nodes), linux_ns_path (pid namespace given as .../ns/pid_for_children), linux_seccomp (default action
allow, plus allow rules equal to it), config_updates_without_affect and linux_rootfs_propagation.
"""
import json
import os
import platform
import shutil
import stat
import subprocess
import time

import pytest

from conftest import copy_rootfs, CGROUP_PARENT, SECCOMP_ARCH

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE"]
CAP_BITS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6,
            "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
            "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31}
# generate/seccomp/seccomp_default.go's allow list (what its default profile lets through, nothing more)
SUITE_ALLOW = """accept accept4 access alarm bind brk capget capset chdir chmod chown chown32 clock_getres
clock_gettime clock_nanosleep close connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
epoll_ctl_old epoll_pwait epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat
fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
ftruncate ftruncate64 futex futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area
gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel
ioctl io_destroy io_getevents ioprio_get ioprio_set io_setup io_submit ipc kill lchown lchown32 lgetxattr link
linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise memfd_create mincore
mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep
newfstatat _newselect open openat pause pipe pipe2 poll ppoll prctl pread64 preadv prlimit64 pselect6 pwrite64
pwritev read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop send
sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups
setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat
shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigreturn socket socketcall socketpair splice stat stat64
statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo syslog tee tgkill time timer_create
timer_delete timerfd_create timerfd_gettime timerfd_settime timer_getoverrun timer_gettime timer_settime times tkill
truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimes vfork vmsplice wait4 waitid waitpid
write writev chroot""".split() + (["arch_prctl", "modify_ldt"] if platform.machine() == "x86_64" else [])
CLONE_NEW_ANY = 0x7E020000   # CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP


def suite_config(args):
    """util.GetDefaultGenerator(): generate.New("linux") with root "." and the given args."""
    return {
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                    "capabilities": {s: list(CAPS) for s in ("bounding", "effective", "inheritable", "permitted",
                                                             "ambient")},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
        "root": {"path": "."},
        "hostname": "mrsdalloway",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "cgroupsPath": f"{CGROUP_PARENT}-rt{os.urandom(3).hex()}",
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": [SECCOMP_ARCH], "syscalls": [
                {"names": SUITE_ALLOW, "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": CLONE_NEW_ANY, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            ]},
        },
    }


@pytest.fixture
def self_rooted(tmp_path):
    """util.PrepareBundle(): the rootfs unpacked straight into the bundle directory (root.path ".")."""
    path = str(tmp_path / "ocitest")
    copy_rootfs(path)
    return path


def write(path, config):
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    return path


def create(runtime, cid, bundle):
    """util.Runtime.Create: the container's stdout and stderr are files in the bundle (here: inside its root)."""
    with open(os.path.join(bundle, "stdout"), "w") as o, open(os.path.join(bundle, "stderr"), "w+") as e:
        p = subprocess.run([runtime.exe, "--root", runtime.root, "create", "--bundle", bundle, cid],
                           stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=30)
        e.seek(0)
        assert p.returncode == 0, e.read()


def run_to_end(runtime, cid, bundle):
    """util.RuntimeInsideValidate: create, start, wait until stopped, read the container's stdout."""
    out = os.path.join(bundle, "stdout")
    create(runtime, cid, bundle)
    runtime("start", cid)
    runtime.wait_status(cid, "stopped", timeout=10)
    with open(out) as f:
        return f.read()


def sections(text):
    out, cur = {}, None
    for ln in text.splitlines():
        if ln.startswith("== "):
            cur = out.setdefault(ln[3:], [])
        elif cur is not None:
            cur.append(ln)
    return out


PROBE = ("echo '== status'; cat /proc/1/status; echo '== mountinfo'; cat /proc/1/mountinfo; "
         "echo '== config'; head -c 15 /config.json; echo; echo '== devices'; "
         "stat -L -c '%n %F %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/ptmx; "
         "echo '== links'; for l in /dev/fd /dev/ptmx /dev/stdin /dev/stdout /dev/stderr; do "
         "echo \"$l $(readlink $l)\"; done; echo '== hostname'; hostname; echo '== end'")


def test_the_suites_default_config_in_a_bundle_that_is_its_own_rootfs(runtime, cid, self_rooted):
    s = sections(run_to_end(runtime, cid, write(self_rooted, suite_config(["sh", "-c", PROBE]))))
    assert "end" in s, s                      # the probe's forks (pipes, $(...)) went through the masked clone rule
    st = dict(ln.split(":\t", 1) for ln in s["status"] if ":\t" in ln)
    want = sum(1 << CAP_BITS[c] for c in CAPS)
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[field], 16) == want, (field, st[field])
    assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "0"
    assert s["config"][0].startswith('{"ociVersion"'), s["config"]    # root "." is the bundle itself
    # runtimetest's validatePosixMounts: every mounts[] entry, destination/type/source, in config order
    seen = []
    for ln in s["mountinfo"]:
        f = ln.split()
        sep = f.index("-")
        seen.append((f[4], f[sep + 1], f[sep + 2]))
    at = 0
    for m in suite_config([])["mounts"]:
        hits = [i for i, x in enumerate(seen) if i >= at and x == (m["destination"], m["type"], m["source"])]
        assert hits, f"{m['destination']} not found after position {at} in {seen}"
        at = hits[0] + 1
    assert s["devices"] == ["/dev/null character special file 1:3", "/dev/zero character special file 1:5",
                            "/dev/full character special file 1:7", "/dev/random character special file 1:8",
                            "/dev/urandom character special file 1:9", "/dev/tty character special file 5:0",
                            "/dev/ptmx character special file 5:2"]
    assert s["links"] == ["/dev/fd /proc/self/fd", "/dev/ptmx pts/ptmx", "/dev/stdin /proc/self/fd/0",
                          "/dev/stdout /proc/self/fd/1", "/dev/stderr /proc/self/fd/2"]
    assert s["hostname"] == ["mrsdalloway"]
    runtime("delete", cid)


NODES = {"fifo": stat.S_IFIFO, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK}


@pytest.mark.parametrize("node", sorted(NODES))
def test_masked_and_read_only_paths_on_fifos_and_device_nodes(runtime, cid, self_rooted, node):
    # linux_masked_paths / linux_readonly_paths mknod these (0:0 for devices) and expect the container to run;
    # opening a FIFO to look at it would block create forever
    os.mknod(os.path.join(self_rooted, "masked-node"), NODES[node] | 0o666, 0)
    os.mknod(os.path.join(self_rooted, "readonly-node"), NODES[node] | 0o666, 0)
    c = suite_config(["sh", "-c", "stat -c '%n %t:%T %F' /masked-node; grep -w readonly-node /proc/1/mountinfo"])
    c["linux"]["maskedPaths"] = ["/masked-node"]
    c["linux"]["readonlyPaths"] = ["/readonly-node"]
    out = run_to_end(runtime, cid, write(self_rooted, c)).splitlines()
    assert out[0] == "/masked-node 1:3 character special file"      # /dev/null bound over it
    assert out[1].split()[5].split(",")[0] == "ro", out[1]
    runtime("delete", cid)


def test_pid_namespace_given_as_another_process_pid_for_children_link_is_joined(runtime, cid, self_rooted):
    # linux_ns_path hands the pid namespace of `unshare --pid --fork sleep` as /proc/<unshare>/ns/pid_for_children
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "sleep", "100"], start_new_session=True)
    try:
        link = f"/proc/{holder.pid}/ns/pid_for_children"
        deadline = time.monotonic() + 5

        def joined():
            try:     # ENOENT between unshare's unshare(CLONE_NEWPID) and its fork: the namespace has no init yet
                return os.readlink(link) != os.readlink("/proc/self/ns/pid")
            except FileNotFoundError:
                return False
        while not joined():
            assert time.monotonic() < deadline, "unshare --pid --fork never made its pid namespace"
            time.sleep(0.02)
        c = suite_config(["sleep", "100"])
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["linux"]["namespaces"].append({"type": "pid", "path": link})
        runtime("create", "--bundle", write(self_rooted, c), cid)
        pid = runtime.state(cid)["pid"]
        assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(link)
    finally:
        runtime("delete", "--force", cid, check=False)
        os.killpg(holder.pid, 9)
        holder.wait()


def test_seccomp_allow_rules_equal_to_an_allow_default_are_skipped_and_the_errno_rule_applies(runtime, cid,
                                                                                             self_rooted):
    # linux_seccomp: defaultAction allow and getcwd -> errno; a generator that keeps its allow rules too (the kernel
    # filter library refuses a rule whose action is the default one) must still give a running container.
    # runc 1.1.5 fails create here: its init calls getcwd(2) after loading the filter.
    c = suite_config(["sh", "-c", "cd /bin && echo \"getcwd=$(pwd -P 2>/dev/null) cwd=$(readlink /proc/self/cwd)\""])
    c["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_ALLOW"
    c["linux"]["seccomp"]["syscalls"].append({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"})
    out = run_to_end(runtime, cid, write(self_rooted, c))
    assert out.split() == ["getcwd=", "cwd=/bin"], out         # pwd -P alone calls getcwd(2)
    runtime("delete", cid)


def test_config_json_replaced_after_create_does_not_change_what_start_runs(runtime, cid, self_rooted):
    # config_updates_without_affect: after create the suite overwrites config.json with {"ociVersion": "1.0.0"}
    c = suite_config(["sh", "-c", "cat /proc/self/oom_score_adj; cat /proc/sys/net/ipv4/ip_forward"])
    c["process"]["oomScoreAdj"] = 100
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c["linux"]["rootfsPropagation"] = "shared"
    create(runtime, cid, write(self_rooted, c))
    write(self_rooted, {"ociVersion": "1.0.0"})
    runtime("start", cid)
    runtime.wait_status(cid, "stopped", timeout=10)
    with open(os.path.join(self_rooted, "stdout")) as f:
        assert f.read().split() == ["100", "1"]
    runtime("delete", cid)


PROPAGATION = ("mkdir /target /mnt1 /test1 && touch /test1/example && mount --rbind / /target && "
               "mount --rbind /test1 /mnt1 && if [ -e /target/mnt1/example ]; then echo exposed; else echo hidden; fi")


@pytest.mark.parametrize("mode, seen", [("shared", "exposed"), ("slave", "hidden"), ("private", "hidden"),
                                        ("unbindable", "EINVAL")])
def test_rootfs_propagation_as_runtimetest_probes_it(runtime, cid, self_rooted, mode, seen):
    # runtimetest: rbind / onto /target, bind a directory under /: visible under /target only if / is shared;
    # with unbindable the rbind of / itself fails with EINVAL. runc 1.1.5 fails two: it leaves a "shared" root
    # private (hidden) and cannot create the "unbindable" container (EINVAL on its own rootfs bind).
    c = suite_config(["sh", "-c", "mount --rbind / /tgt 2>&1 || true" if mode == "unbindable" else PROPAGATION])
    c["process"]["capabilities"] = {s: list(CAPS) + ["CAP_SYS_ADMIN"] for s in c["process"]["capabilities"]}
    del c["linux"]["seccomp"]
    c["linux"]["rootfsPropagation"] = mode
    if mode == "unbindable":
        os.mkdir(os.path.join(self_rooted, "tgt"))
    out = run_to_end(runtime, cid, write(self_rooted, c))
    assert ("Invalid argument" in out) if seen == "EINVAL" else (out.split() == [seen]), out
    runtime("delete", cid)
