"""process.capabilities and process.user: each behaviour proven in a forked child that applies the function and
reports /proc/self/status (or what an exec'd program sees) back through a pipe."""
import os
import subprocess

import pytest

from ociruntime.config.model import Capabilities, User
from childproc import ChildError, in_child  # noqa: F401
from ociruntime.errors import SyscallError
from ociruntime.linux import capabilities, syscalls, user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def status():
    with open("/proc/self/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}


def bits(*names):
    top = capabilities.last_cap()
    return sum(1 << capabilities.NUMBERS[n] for n in names if capabilities.NUMBERS[n] <= top)


def held(field):
    return int(status()[field], 16)


def test_unknown_capability_names_are_skipped_and_named_in_one_warning():
    caps = Capabilities(bounding=("CAP_FLY", "CAP_CHOWN"), effective=("CAP_CHOWN", "CAP_FLY", "CAP_SWIM"))
    assert capabilities.unknown_names(caps) == ["CAP_FLY", "CAP_SWIM"]
    assert capabilities.mask(caps.effective) == bits("CAP_CHOWN")
    warned = []
    capabilities.warn_unknown(caps, warned.append)
    assert warned == ["process.capabilities: ignoring unknown capabilities: CAP_FLY, CAP_SWIM"]


def test_every_known_name_is_known_and_none_is_fine():
    assert capabilities.unknown_names(Capabilities(*(capabilities.NAMES,) * 5)) == []
    assert capabilities.unknown_names(None) == []


def test_names_beyond_the_kernels_last_cap_are_skipped_with_a_debug_line():
    seen = []
    m = capabilities.mask(("CAP_CHOWN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"), what="permitted", debug=seen.append,
                          top=38)
    assert m == 1
    assert len(seen) == 1 and "CAP_BPF" in seen[0] and "CAP_CHECKPOINT_RESTORE" in seen[0]


def test_switch_to_non_root_keeps_exactly_the_configured_sets():
    caps = Capabilities(bounding=("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
                        effective=("CAP_CHOWN", "CAP_NET_BIND_SERVICE"),
                        permitted=("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
                        inheritable=("CAP_NET_BIND_SERVICE",), ambient=("CAP_NET_BIND_SERVICE",))

    def child():
        user.switch(User(uid=1000, gid=1001, additional_gids=(5, 7)), caps)
        s = status()
        return {k: s[k] for k in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "Uid", "Gid", "Groups")}

    got = in_child(child)
    assert int(got["CapEff"], 16) == bits("CAP_CHOWN", "CAP_NET_BIND_SERVICE")
    assert int(got["CapPrm"], 16) == bits("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    assert int(got["CapInh"], 16) == bits("CAP_NET_BIND_SERVICE")
    assert int(got["CapBnd"], 16) == bits("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    assert int(got["CapAmb"], 16) == bits("CAP_NET_BIND_SERVICE")
    assert got["Uid"].split() == ["1000"] * 4
    assert got["Gid"].split() == ["1001"] * 4
    assert sorted(got["Groups"].split()) == ["5", "7"]


def test_ambient_capabilities_survive_execve_of_a_non_root_process():
    caps = Capabilities(bounding=("CAP_NET_RAW", "CAP_SYS_CHROOT"), effective=("CAP_NET_RAW", "CAP_SYS_CHROOT"),
                        permitted=("CAP_NET_RAW", "CAP_SYS_CHROOT"), inheritable=("CAP_NET_RAW",),
                        ambient=("CAP_NET_RAW",))

    def child():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            user.switch(User(uid=1000, gid=1000), caps)
            os.dup2(w, 1)
            os.execv("/bin/grep", ["grep", "^Cap", "/proc/self/status"])
        os.close(w)
        with os.fdopen(r) as f:
            out = f.read()
        os.waitpid(pid, 0)
        return dict(line.split(":\t") for line in out.splitlines())

    got = in_child(child)
    assert int(got["CapAmb"], 16) == bits("CAP_NET_RAW")
    assert int(got["CapEff"], 16) == bits("CAP_NET_RAW")      # ambient -> permitted+effective at exec
    assert int(got["CapBnd"], 16) == bits("CAP_NET_RAW", "CAP_SYS_CHROOT")


def test_no_capabilities_object_means_no_capabilities_at_all_like_runc():
    def child():
        user.switch(User(uid=0, gid=0), None)
        return [held(k) for k in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")] + [os.getuid()]

    assert in_child(child) == [0, 0, 0, 0, 0, 0]


def test_root_container_keeps_only_the_configured_capabilities():
    def child():
        user.switch(User(), Capabilities(bounding=("CAP_CHOWN",), effective=("CAP_CHOWN",),
                                         permitted=("CAP_CHOWN",)))
        try:
            os.mknod("/dev/null-should-not-exist", 0o600 | 0o020000, os.makedev(1, 3))
            os.unlink("/dev/null-should-not-exist")
            mknod = "allowed"
        except PermissionError:
            mknod = "EPERM"
        return held("CapEff"), held("CapBnd"), mknod

    eff, bnd, mknod = in_child(child)
    assert eff == bnd == bits("CAP_CHOWN")
    assert mknod == "EPERM"                                     # CAP_MKNOD really is gone


def test_capabilities_the_runtime_does_not_hold_are_warned_about_not_fatal():
    missing = [n for i, n in enumerate(capabilities.NAMES)
               if i <= capabilities.last_cap() and not held("CapBnd") >> i & 1]
    if not missing:
        pytest.skip("the runtime holds every capability here")
    name = missing[0]

    def child():
        warned = []
        user.switch(User(uid=1000, gid=1000),
                    Capabilities(bounding=("CAP_CHOWN", name), effective=("CAP_CHOWN", name),
                                 permitted=("CAP_CHOWN", name)), warn=warned.append)
        return held("CapEff"), warned

    eff, warned = in_child(child)
    assert eff == bits("CAP_CHOWN")
    assert warned and name in warned[0] and "process.capabilities.permitted" in warned[0]


def test_setgroups_is_skipped_when_the_user_namespace_denies_it(tmp_path):
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "setgroups").write_text("deny\n")
    assert user.setgroups_allowed(str(tmp_path)) is False
    (tmp_path / "self" / "setgroups").write_text("allow\n")
    assert user.setgroups_allowed(str(tmp_path)) is True


def test_setgroups_deny_in_a_user_namespace_with_additional_gids_fails_clearly():
    def child():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                       # the child makes the userns; we write its maps as runtimes do
            os.close(w)
            syscalls.unshare(syscalls.CLONE_NEWUSER)
            os.read(r, 1)
            try:
                user.switch(User(uid=0, gid=0, additional_gids=(1,)), None)
                os._exit(0)
            except SyscallError as e:
                os._exit(3 if "setgroups=deny" in str(e) else 4)
        os.close(r)
        import time
        for _ in range(100):               # wait until the child is in its own user namespace
            if os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
                break
            time.sleep(0.01)
        for name, text in (("setgroups", "deny"), ("uid_map", "0 100000 1"), ("gid_map", "0 100000 1")):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        os.write(w, b"x")
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    assert in_child(child) == 3


def test_uid_switch_failure_names_the_field():
    def child():
        # keep what the bounding drop and setresgid need, but not CAP_SETUID: setresuid must fail, naming the field
        keep = bits("CAP_SETPCAP", "CAP_SETGID")
        syscalls.capset(keep, keep, 0)
        user.switch(User(uid=1000, gid=1000), Capabilities())

    with pytest.raises(ChildError) as e:
        in_child(child)
    assert e.value.kind == "SyscallError"
    assert e.value.msg == "setresuid process.user.uid=1000: EPERM"


@pytest.mark.parametrize("mask,expect", [(None, 0o022), (0o077, 0o077), (0, 0)])
def test_umask_defaults_to_0022_and_applies_the_configured_value(mask, expect):
    def child():
        user.apply_umask(User(umask=mask))
        return os.umask(0)

    assert in_child(child) == expect


def test_switch_result_is_what_a_real_program_sees():
    """End to end with a shell: the exec'd process reports the uid and an empty effective set."""
    def child():
        user.switch(User(uid=65534, gid=65534), Capabilities(bounding=("CAP_KILL",)))
        return subprocess.run(["/bin/sh", "-c", "id -u; grep CapEff /proc/self/status"],
                              capture_output=True, text=True).stdout.split()

    out = in_child(child)
    assert out[0] == "65534" and out[-1] == "0000000000000000"


def test_ambient_without_inheritable_is_one_warning_saying_why_not_that_the_runtime_lacks_it():
    # `runc spec`'s default bundle: ambient = bounding = effective = permitted, no inheritable
    three = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    caps = Capabilities(bounding=three, effective=three, permitted=three, ambient=three)

    def child():
        warned = []
        user.switch(User(uid=0, gid=0), caps, warn=warned.append)
        return held("CapAmb"), held("CapEff"), warned

    amb, eff, warned = in_child(child)
    assert amb == 0 and eff == bits(*three)
    assert len(warned) == 1, warned
    assert "process.capabilities.ambient" in warned[0] and "inheritable" in warned[0]
    assert "not held by the runtime" not in warned[0]


def test_each_ungranted_set_is_warned_with_its_own_reason():
    """youki's process_capabilities_bounding: inheritable beyond an empty bounding set was said to be "not held by the
    runtime" (the runtime holds it; the config's bounding set left it out)."""
    caps = Capabilities(bounding=(), inheritable=("CAP_SYS_ADMIN",), effective=("CAP_KILL",), permitted=())

    def child():
        warned = []
        user.switch(User(uid=0, gid=0), caps, warn=warned.append)
        return warned

    warned = in_child(child)
    assert len(warned) == 2, warned
    assert warned[0].startswith("process.capabilities.inheritable: cannot grant CAP_SYS_ADMIN: not in the bounding set")
    assert warned[1].startswith("process.capabilities.effective: cannot grant CAP_KILL: not in "
                                "process.capabilities.permitted")
