"""linux.intelRdt applied to a fake resctrl tree (this host has no resctrl): groups, schemata, tasks, MON groups,
and what delete removes. The fake behaves like resctrl where it matters: mkdir of a group brings its files and
mon_groups/, rmdir of a group takes its files along."""
import os

import pytest

from ociruntime.errors import ConfigError, SyscallError
from ociruntime.linux import intelrdt

ROOT_SCHEMATA = "    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n"


@pytest.fixture
def root(tmp_path, monkeypatch):
    r = tmp_path / "resctrl"
    (r / "info").mkdir(parents=True)
    (r / "mon_groups").mkdir()
    (r / "info" / "last_cmd_status").write_text("ok\n")
    (r / "schemata").write_text(ROOT_SCHEMATA)
    (r / "tasks").write_text("")
    real_mkdir, real_rmdir = os.mkdir, os.rmdir
    base = str(r)

    def kernfs_mkdir(path, mode=0o777, **kw):
        real_mkdir(path, mode, **kw)
        p = str(path)
        if not p.startswith(base + "/"):
            return
        open(os.path.join(p, "tasks"), "w").close()
        if os.path.dirname(p) == base:                     # a CTRL_MON group
            with open(os.path.join(p, "schemata"), "w") as f:
                f.write(ROOT_SCHEMATA)
            real_mkdir(os.path.join(p, "mon_groups"))

    def kernfs_rmdir(path, **kw):
        p = str(path)
        if p.startswith(base + "/") and os.path.isdir(p):
            for dirpath, dirs, files in os.walk(p, topdown=False):
                for f in files:
                    os.unlink(os.path.join(dirpath, f))
                for d in dirs:
                    real_rmdir(os.path.join(dirpath, d))
        real_rmdir(path, **kw)

    monkeypatch.setattr(os, "mkdir", kernfs_mkdir)
    monkeypatch.setattr(os, "rmdir", kernfs_rmdir)
    return base


def read(*parts):
    with open(os.path.join(*parts)) as f:
        return f.read()


def test_without_closid_a_group_named_after_the_container_is_created_and_removed(root):
    facts = intelrdt.apply({"l3CacheSchema": "L3:0=f0"}, "c1", 4242, root=root)
    group = os.path.join(root, "c1")
    assert facts["group"] == group and read(group, "tasks") == "4242"
    assert read(group, "schemata") == "L3:0=f0\n"
    intelrdt.destroy(facts)
    assert not os.path.exists(group)


def test_schemata_are_written_l3_then_mb_then_the_schemata_lines(root):
    rdt = {"l3CacheSchema": "L3:0=f0", "memBwSchema": "MB:0=20", "schemata": ["L2:0=f", "MB:0=30"]}
    intelrdt.apply(rdt, "c1", 1, root=root)
    assert read(root, "c1", "schemata") == "L3:0=f0\nMB:0=20\nL2:0=f\nMB:0=30\n"


def test_no_schema_means_no_write_to_schemata(root):
    intelrdt.apply({}, "c1", 7, root=root)
    assert read(root, "c1", "schemata") == ROOT_SCHEMATA      # what the kernel put there, untouched
    assert read(root, "c1", "tasks") == "7"


def test_an_existing_closid_group_without_schema_is_joined_and_never_removed(root):
    os.mkdir(os.path.join(root, "shared"))
    facts = intelrdt.apply({"closID": "shared"}, "c1", 99, root=root)
    assert read(root, "shared", "tasks") == "99"
    intelrdt.destroy(facts)
    intelrdt.destroy(facts, rollback=True)
    assert os.path.isdir(os.path.join(root, "shared"))


def test_a_missing_closid_group_without_schema_is_an_error_and_nothing_is_made(root):
    with pytest.raises(ConfigError, match=r"linux\.intelRdt\.closID: no resctrl group .*/gone"):
        intelrdt.apply({"closID": "gone"}, "c1", 1, root=root)
    assert not os.path.exists(os.path.join(root, "gone"))


def test_a_missing_closid_group_with_schema_is_created_and_kept_on_delete(root):
    facts = intelrdt.apply({"closID": "gold", "memBwSchema": "MB:0=50"}, "c1", 3, root=root)
    assert read(root, "gold", "schemata") == "MB:0=50\n" and read(root, "gold", "tasks") == "3"
    intelrdt.destroy(facts)
    assert os.path.isdir(os.path.join(root, "gold")), "closID set: the spec forbids removing it on delete"
    intelrdt.destroy(facts, rollback=True)
    assert not os.path.exists(os.path.join(root, "gold")), "a failed create removes what it made"


def test_an_existing_group_must_match_the_schema_as_numbers(root):
    os.mkdir(os.path.join(root, "gold"))      # the kernel's format: padded names, no leading zeros
    intelrdt.apply({"closID": "gold", "l3CacheSchema": "L3:0=07ff", "memBwSchema": "MB:1=100"}, "c1", 5, root=root)
    assert read(root, "gold", "schemata") == ROOT_SCHEMATA, "a matching group is joined, not rewritten"
    assert read(root, "gold", "tasks") == "5"


def test_an_existing_group_that_differs_is_an_error_and_no_task_moves(root):
    os.mkdir(os.path.join(root, "gold"))
    with pytest.raises(ConfigError, match=r"linux\.intelRdt: resctrl group .*/gold exists with L3:1=7ff, the config "
                                          r"asks for f"):
        intelrdt.apply({"closID": "gold", "schemata": ["L3:0=7ff;1=f"]}, "c1", 5, root=root)
    assert read(root, "gold", "tasks") == ""


def test_closid_slash_is_the_root_group(root):
    facts = intelrdt.apply({"closID": "/"}, "c1", 8, root=root)
    assert facts["group"] == root and read(root, "tasks") == "8"
    intelrdt.destroy(facts, rollback=True)
    assert os.path.isdir(root)


def test_monitoring_makes_a_mon_group_named_after_the_container_and_delete_removes_it(root):
    os.mkdir(os.path.join(root, "shared"))
    facts = intelrdt.apply({"closID": "shared", "enableMonitoring": True}, "c1", 11, root=root)
    mon = os.path.join(root, "shared", "mon_groups", "c1")
    assert read(root, "shared", "tasks") == "11" and read(mon, "tasks") == "11"
    intelrdt.destroy(facts)
    assert not os.path.exists(mon) and os.path.isdir(os.path.join(root, "shared"))


def test_an_exec_process_joins_the_group_and_the_mon_group(root):
    facts = intelrdt.apply({"enableMonitoring": True}, "c1", 11, root=root)
    intelrdt.add_task(facts, 12, root=root)
    assert read(root, "c1", "tasks") == "12" and read(root, "c1", "mon_groups", "c1", "tasks") == "12"


def test_a_group_named_after_the_container_that_exists_already_is_an_error_and_is_left_alone(root):
    os.mkdir(os.path.join(root, "c1"))
    with pytest.raises(ConfigError, match=r"linux\.intelRdt: resctrl group .*/c1 exists already"):
        intelrdt.apply({}, "c1", 1, root=root)
    assert os.path.isdir(os.path.join(root, "c1"))


def test_a_refused_write_names_the_file_and_resctrls_reason_and_undoes_the_group(root, monkeypatch):
    with open(os.path.join(root, "info", "last_cmd_status"), "w") as f:
        f.write("Unknown or unsupported resource name 'L9'\n")
    real_write = intelrdt.write_file

    def refusing_write(path, data, flags=0):     # the kernel refuses a schema it cannot parse with EINVAL
        if str(path).endswith("/schemata"):
            raise OSError(22, "Invalid argument")
        return real_write(path, data, flags)

    monkeypatch.setattr(intelrdt, "write_file", refusing_write)
    with pytest.raises(SyscallError, match=r"write .*/c1/schemata \(linux\.intelRdt; resctrl: Unknown or "
                                           r"unsupported resource name 'L9'\): EINVAL"):
        intelrdt.apply({"schemata": ["L9:0=1"]}, "c1", 1, root=root)
    assert not os.path.exists(os.path.join(root, "c1"))


def test_destroy_of_groups_already_gone_succeeds(root):
    facts = intelrdt.apply({"enableMonitoring": True}, "c1", 1, root=root)
    intelrdt.destroy(facts)
    intelrdt.destroy(facts)


def test_check_requires_resctrl_mounted_at_the_root(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 0:20 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n")
    with pytest.raises(ConfigError) as e:
        intelrdt.check(mountinfo=str(mi))
    assert str(e.value) == ("config.json: linux.intelRdt: resctrl filesystem not mounted at /sys/fs/resctrl (the "
                            "host has no Intel RDT or it is not mounted)")
    mi.write_text("40 22 0:35 / /sys/fs/resctrl rw,relatime shared:20 - resctrl resctrl rw\n")
    intelrdt.check(mountinfo=str(mi))


def test_parse_reads_the_kernels_format():
    assert intelrdt.parse("    L3:0=07ff;1=ff\n    MB:0=100;1= 70\nL2CODE:0=f\n") == {
        "L3": {"0": 0x7ff, "1": 0xff}, "MB": {"0": 100, "1": 70}, "L2CODE": {"0": 0xf}}


@pytest.mark.parametrize("rdt", [{}, {"closID": "new", "l3CacheSchema": "L3:0=f;1=f"}, {"enableMonitoring": True},
                                 {"closID": "new", "l3CacheSchema": "L3:0=f;1=f", "enableMonitoring": True}])
def test_plan_facts_saved_before_apply_let_a_rollback_remove_what_apply_made(root, rdt):
    # create saves plan() before apply(); killed after apply, delete --force destroys with the planned facts
    planned = intelrdt.plan(rdt, "c1", root)
    intelrdt.apply(rdt, "c1", 42, root)
    intelrdt.destroy(planned, rollback=True)
    assert sorted(os.listdir(root)) == ["info", "mon_groups", "schemata", "tasks"]


def test_plan_never_claims_a_group_that_exists_already(root):
    os.mkdir(os.path.join(root, "shared"))
    os.mkdir(os.path.join(root, "shared", "mon_groups", "c1"))
    planned = intelrdt.plan({"closID": "shared", "enableMonitoring": True}, "c1", root)
    intelrdt.destroy(planned, rollback=True)
    assert os.path.isdir(os.path.join(root, "shared", "mon_groups", "c1"))
