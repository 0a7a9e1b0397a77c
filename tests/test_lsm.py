"""AppArmor / SELinux: detection, the clear error when a label needs an LSM the host lacks, and the exec labels
written to /proc/thread-self/attr (against a recorded proc tree, and against the real one where the kernel allows)."""
import errno
import os

import pytest

from ociruntime.config.model import Process
from ociruntime.errors import RuntimeErr, SyscallError
from ociruntime.linux import lsm


@pytest.fixture
def no_lsm(monkeypatch, tmp_path):
    monkeypatch.setattr(lsm, "APPARMOR_PARAM", str(tmp_path / "no-param"))
    monkeypatch.setattr(lsm, "APPARMOR_FS", str(tmp_path / "no-apparmor"))
    monkeypatch.setattr(lsm, "SELINUX_MNTS", (str(tmp_path / "no-selinux"),))
    monkeypatch.setattr(lsm, "_selinuxfs_mounted", lambda: False)


@pytest.fixture
def apparmor_on(monkeypatch, tmp_path):
    (tmp_path / "aafs").mkdir()
    (tmp_path / "param").write_text("Y\n")
    monkeypatch.setattr(lsm, "APPARMOR_PARAM", str(tmp_path / "param"))
    monkeypatch.setattr(lsm, "APPARMOR_FS", str(tmp_path / "aafs"))


def fake_proc(tmp_path, *names):
    attr = tmp_path / "proc" / "thread-self" / "attr"
    for n in names:
        (attr / n).parent.mkdir(parents=True, exist_ok=True)
        (attr / n).write_text("")
    return str(tmp_path / "proc"), attr


def test_apparmor_detection_needs_securityfs_and_the_module_parameter(apparmor_on, tmp_path):
    assert lsm.apparmor_enabled() is True
    (tmp_path / "param").write_text("N\n")
    assert lsm.apparmor_enabled() is False


def test_detection_matches_this_host():
    on = os.path.isdir("/sys/kernel/security/apparmor") and \
        open("/sys/module/apparmor/parameters/enabled").read().startswith("Y") \
        if os.path.exists("/sys/module/apparmor/parameters/enabled") else False
    assert lsm.apparmor_enabled() is on
    if not os.path.exists("/sys/fs/selinux/enforce"):
        assert lsm.selinux_enabled() is False


@pytest.mark.parametrize("proc,mount_label,field", [
    (Process(apparmor_profile="docker-default"), None, "process.apparmorProfile"),
    (Process(selinux_label="system_u:system_r:container_t:s0"), None, "process.selinuxLabel"),
    (Process(), "system_u:object_r:container_file_t:s0", "linux.mountLabel"),
])
def test_a_label_without_its_lsm_is_a_clear_error_naming_the_field(no_lsm, proc, mount_label, field):
    with pytest.raises(RuntimeErr) as e:
        lsm.check(proc, mount_label)
    assert str(e.value).startswith(field) and "not enabled on this host" in str(e.value)


def test_no_labels_need_no_lsm(no_lsm):
    lsm.check(Process(), None)
    lsm.check(None, None)


def test_apparmor_profile_passes_the_check_when_apparmor_is_on(apparmor_on, monkeypatch):
    monkeypatch.setattr(lsm, "_selinuxfs_mounted", lambda: False)
    lsm.check(Process(apparmor_profile="p"), None)


def test_apparmor_exec_label_prefers_the_stacked_attr_dir(tmp_path):
    root, attr = fake_proc(tmp_path, "apparmor/exec", "exec")
    lsm.apply_exec_labels(Process(apparmor_profile="my-profile"), proc_root=root)
    assert (attr / "apparmor" / "exec").read_text() == "exec my-profile"
    assert (attr / "exec").read_text() == ""


def test_apparmor_exec_label_falls_back_to_attr_exec(tmp_path):
    root, attr = fake_proc(tmp_path, "exec")
    lsm.apply_exec_labels(Process(apparmor_profile="my-profile"), proc_root=root)
    assert (attr / "exec").read_text() == "exec my-profile"


def test_selinux_label_goes_to_exec_and_keycreate(tmp_path):
    root, attr = fake_proc(tmp_path, "exec", "keycreate")
    label = "system_u:system_r:container_t:s0:c1,c2"
    lsm.apply_exec_labels(Process(selinux_label=label), proc_root=root)
    assert (attr / "exec").read_text() == label
    assert (attr / "keycreate").read_text() == label


def test_no_labels_write_nothing(tmp_path):
    root, attr = fake_proc(tmp_path, "exec")
    lsm.apply_exec_labels(Process(), proc_root=root)
    lsm.apply_exec_labels(None, proc_root=root)
    assert (attr / "exec").read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_the_real_kernel_refuses_a_label_when_no_lsm_takes_it_and_the_error_names_the_field():
    if lsm.apparmor_enabled() or lsm.selinux_enabled():
        pytest.skip("an LSM is active here: writing a label would change this process")
    pid = os.fork()
    if pid == 0:
        try:
            lsm.apply_exec_labels(Process(apparmor_profile="unconfined"))
            os._exit(1)
        except SyscallError as e:
            ok = "process.apparmorProfile" in str(e) and e.err in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP)
            os._exit(0 if ok else 2)
        except BaseException:  # noqa: BLE001
            os._exit(3)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
