"""The command line as runc 1.1.5 shows it to its callers: exit codes, stdout bytes, accepted flags and the state
machine, run under ociruntime and under runc (the control) with the same bundle. Each test states runc's observed
behaviour once and asserts it of both runtimes; the runc side skips when runc is not installed.

Deliberate differences (not asserted here, reason beside each):
* error wording, and usage errors print one line on stderr and nothing on stdout (runc adds "Incorrect Usage" and
  the command's help on stdout): callers read stderr/--log for the message, and exit codes are the same;
* `ociVersion` in state/list/spec/features: the spec version each runtime implements (runtime.md `state`);
* an id starting with `-` is refused (runc accepts it after `--`): any other command line would read it as a flag;
* `kill` also takes RTMIN/RTMAX[+-N] names (kill(1)'s syntax), which runc 1.1.5 refuses as unknown signals;
* `exec -t`, and `run` of a config with a terminal, without --console-socket relay through a pty of their own even
  when our stdin is not a terminal (runc fails with "open /dev/tty");
* `exec -g A --additional-gids B` takes both (runc: "Cannot use two forms of the same flag", a urfave/cli quirk);
* a process whose environment has no PATH finds its program on execvp's default path (config.md: args[0] has
  execvp's semantics); runc fails with "executable file not found in $PATH";
* an explicit `--root` is made by the first `create`, not by every command (runc makes it on `list`, `state`... too:
  a read-only command leaves no directory behind); a user's $XDG_RUNTIME_DIR default is made by any, as runc's;
* `update --pids-limit 0` sets pids.max to 0 (config-linux.md: 0 is a valid limit and SHOULD be treated as such);
  runc 1.1.5 takes 0 as "unchanged";
* `--version` has runc's first three lines (version, commit: the package version as Debian's runc prints, spec),
  not its go/libseccomp lines.
"""
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import EXE, Runtime, reap

RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.fixture(params=["ociruntime", "runc"])
def rt(request, tmp_path):
    """ociruntime, then runc as the control, each with a private --root."""
    if request.param == "runc" and not os.access(RUNC, os.X_OK):
        pytest.skip("runc (the control) is not installed")
    r = Runtime(tmp_path / "root", exe=EXE if request.param == "ociruntime" else RUNC)
    r.name = request.param
    yield r
    r.cleanup()


@pytest.fixture
def ctr(rt):
    c = f"t{uuid.uuid4().hex[:10]}"
    rt.ids.append(c)
    return c


def _status(rt, cid):
    return json.loads(rt("state", cid).stdout)["status"]


def _stopped(rt, cid):
    try:
        rt.wait_status(cid, "stopped")
    finally:
        reap()


# --- the state machine ------------------------------------------------------------------------------------------
def test_a_paused_created_container_is_paused_until_resumed_then_starts(rt, bundle, ctr):
    # runc freezes a created container and then reports it paused (the freezer is read before the exec FIFO):
    # start and delete refuse it, resume thaws it back to created. ociruntime said `created`: resume refused,
    # start blocked forever on the frozen init and delete (no --force) killed it.
    rt("create", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    assert rt("pause", ctr).returncode == 0
    assert _status(rt, ctr) == "paused"
    assert rt("pause", ctr, check=False).returncode == 1
    assert rt("start", ctr, check=False, timeout=10).returncode == 1
    assert rt("delete", ctr, check=False).returncode == 1
    assert rt("resume", ctr).returncode == 0
    assert _status(rt, ctr) == "created"
    assert rt("resume", ctr, check=False).returncode == 1
    assert rt("start", ctr, timeout=10).returncode == 0
    assert _status(rt, ctr) == "running"


@pytest.mark.parametrize("argv, status", [
    (["state"], 1), (["start"], 1), (["kill"], 1), (["delete"], 1), (["delete", "--force"], 0), (["pause"], 1),
    (["resume"], 1), (["ps"], 1), (["exec", "ID", "true"], 255), (["events", "--stats"], 1),
    (["update", "--pids-limit", "10"], 1)], ids=lambda a: " ".join(a) if isinstance(a, list) else str(a))
def test_every_command_on_an_unknown_id_exits_as_runc(rt, argv, status):
    argv = [a.replace("ID", "nosuch") for a in argv] if "ID" in argv else argv + ["nosuch"]
    assert rt(*argv, check=False).returncode == status


# what each command exits with in each status, as runc 1.1.5 did in the sweep (commands that change the status are
# the lifecycle tests' business); ID is the container
MATRIX = {
    "created": [(["resume", "ID"], 1), (["exec", "ID", "true"], 0), (["ps", "ID"], 0), (["kill", "ID", "0"], 0),
                (["update", "--pids-limit", "10", "ID"], 0), (["events", "--stats", "ID"], 0)],
    "running": [(["start", "ID"], 1), (["resume", "ID"], 1), (["delete", "ID"], 1), (["exec", "ID", "true"], 0),
                (["ps", "ID"], 0), (["kill", "ID", "0"], 0), (["update", "--pids-limit", "10", "ID"], 0)],
    "paused": [(["start", "ID"], 1), (["pause", "ID"], 1), (["delete", "ID"], 1), (["exec", "ID", "true"], 255),
               (["ps", "ID"], 0), (["kill", "ID", "0"], 0), (["update", "--pids-limit", "10", "ID"], 0)],
    "stopped": [(["start", "ID"], 1), (["pause", "ID"], 1), (["resume", "ID"], 1), (["exec", "ID", "true"], 255),
                (["kill", "ID"], 1), (["kill", "--all", "ID", "KILL"], 0), (["ps", "ID"], 0),
                (["update", "--pids-limit", "10", "ID"], 1), (["events", "--stats", "ID"], 1)],
}


@pytest.mark.parametrize("status", list(MATRIX))
def test_exit_codes_of_each_command_in_each_status(rt, bundle, ctr, status):
    rt("create", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    if status in ("running", "paused"):
        rt("start", ctr)
    if status == "paused":
        rt("pause", ctr)
    if status == "stopped":
        rt("kill", ctr, "KILL")
        _stopped(rt, ctr)
    got = {" ".join(argv): rt(*[a.replace("ID", ctr) for a in argv], check=False).returncode
           for argv, _ in MATRIX[status]}
    assert got == {" ".join(argv): want for argv, want in MATRIX[status]}
    assert _status(rt, ctr) == status


def test_pause_and_resume_twice_fail_on_a_running_container(rt, bundle, ctr):
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    rt("pause", ctr)
    assert rt("pause", ctr, check=False).returncode == 1
    assert rt("exec", ctr, "true", check=False).returncode == 255      # runc: no exec in a paused container
    rt("resume", ctr)
    assert rt("resume", ctr, check=False).returncode == 1


@pytest.mark.parametrize("started", [True, False], ids=["running", "created"])
def test_kill_with_sigkill_stops_a_paused_container(rt, bundle, ctr, started):
    # runc thaws a paused container it SIGKILLs (a frozen process acts on no signal); other signals wait
    rt("create", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    if started:
        rt("start", ctr)
    rt("pause", ctr)
    rt("kill", ctr, "TERM")
    assert _status(rt, ctr) == "paused"
    rt("kill", ctr, "KILL")
    _stopped(rt, ctr)
    rt("delete", ctr)


def test_delete_force_of_an_invalid_id_fails(rt):
    # an unknown id is fine with --force (the shim's cleanup relies on it); an invalid one is an error
    assert rt("delete", "--force", "nosuch").returncode == 0
    assert rt("delete", "--force", "a/b", check=False).returncode == 1
    assert rt("delete", "--force", "..", check=False).returncode == 1


@pytest.mark.parametrize("cid", ["a,b", ".x", "_x", "+x", "...", "x.", "A-b_c.d+e"])
def test_ids_runc_accepts_are_accepted(rt, bundle, cid):
    # runc's validateID is ^[\w+-\.]+$: its class holds the range + , - . and any of them may come first
    rt.ids.append(cid)
    rt("create", "--bundle", bundle.set_args("true").write(), "--", cid)
    assert json.loads(rt("state", "--", cid).stdout)["id"] == cid
    assert rt("list", "-q").stdout == cid + "\n"
    rt("delete", "--", cid)


@pytest.mark.parametrize("cid", [".", "..", "a/b", "a b", "a:b", "é", ""])
def test_ids_runc_refuses_are_refused(rt, bundle, cid):
    p = rt("create", "--bundle", bundle.set_args("true").write(), "--", cid, check=False)
    assert p.returncode == 1 and rt("list", "-q").stdout == ""


# --- stdout formats ---------------------------------------------------------------------------------------------
def test_state_prints_the_document_without_a_trailing_newline(rt, bundle, ctr):
    rt("create", "--bundle", bundle.set_args("true").write(), ctr)
    out = rt("state", ctr).stdout
    assert out.startswith('{\n  "ociVersion": ') and out.endswith("\n}")


def test_list_table_has_runcs_tabwriter_columns(rt, bundle, ctr):
    # text/tabwriter(minwidth 12, padding 3): a column is max(12, widest cell + 3) wide; OWNER is not padded
    assert rt("list").stdout == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    rt("create", "--bundle", bundle.set_args("true").write(), ctr)
    st = json.loads(rt("state", ctr).stdout)
    head, row = rt("list").stdout.split("\n")[:2]
    cells = [ctr, str(st["pid"]), "created", st["bundle"], st["created"]]
    widths = [max(12, len(c) + 3) for c in cells]
    assert row == "".join(c.ljust(w) for c, w in zip(cells, widths)) + "root"
    assert head == "".join(h.ljust(w) for h, w in zip(("ID", "PID", "STATUS", "BUNDLE", "CREATED"), widths)) + "OWNER"


def test_list_json_names_the_owner_and_empty_is_null(rt, bundle, ctr):
    assert rt("list", "--format", "json").stdout == "null\n"
    rt("create", "--bundle", bundle.set_args("true").write(), ctr)
    (row,) = json.loads(rt("list", "--format", "json").stdout)
    assert list(row) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]
    assert row["owner"] == "root"      # list names the state dir's owner (state's own `owner` stays "")
    assert json.loads(rt("state", ctr).stdout)["owner"] == ""


def test_ps_json_of_a_stopped_container_is_null(rt, bundle, ctr):
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    assert len(json.loads(rt("ps", "--format", "json", ctr).stdout)) == 1
    rt("kill", ctr, "KILL")
    _stopped(rt, ctr)
    assert rt("ps", "--format", "json", ctr).stdout == "null\n"
    assert rt("ps", ctr).stdout.split("\n")[1:] == [""]         # the header only


def test_features_lists_are_sorted_as_runcs(rt):
    doc = json.loads(rt("features").stdout)
    lx = doc["linux"]
    for name, values in (("namespaces", lx["namespaces"]), ("mountOptions", doc["mountOptions"]),
                         ("seccomp.actions", lx["seccomp"]["actions"]), ("seccomp.archs", lx["seccomp"]["archs"])):
        assert values == sorted(values), name


# --- what the command line accepts ------------------------------------------------------------------------------
def test_no_command_prints_the_help_and_exits_zero(rt):
    p = rt(check=False)
    assert p.returncode == 0 and p.stdout.startswith("NAME:\n")
    p = rt("h", "state", check=False)                           # `h`: urfave/cli's alias of help
    assert p.returncode == 0 and "state" in p.stdout.split("\n")[1]


def test_version_has_runcs_first_lines(rt):
    # `NAME version V`, `commit: C`, `spec: S`: what Docker's info and go-runc parse
    for flag in ("--version", "-v"):
        lines = rt(flag).stdout.splitlines()
        assert lines[0] == f"{rt.name} version " + lines[0].split(" version ", 1)[1]
        assert lines[1].startswith("commit: ") and lines[2].startswith("spec: ")


def test_unknown_command_exits_3(rt):
    assert rt("nosuch", check=False).returncode == 3
    assert rt("help", "nosuch", check=False).returncode == 3


@pytest.mark.parametrize("argv", [
    ["--nosuch", "list"],                      # unknown global flag
    ["list", "--debug"],                       # a global flag after the command
    ["list", "extra"],                         # an argument too many
    ["state"],                                 # a missing argument
    ["delete", "a", "b"],
    ["kill", "--nosuch", "x"],                 # unknown command flag
    ["create", "--bundle"],                    # a flag without its value
], ids=lambda a: " ".join(a))
def test_usage_errors_exit_1(rt, argv):
    assert rt(*argv, check=False).returncode == 1


def test_flags_take_one_or_two_dashes_long_or_short(rt):
    # Go's flag package: -flag and --flag are the same, for short names too
    for argv in (["list", "-quiet"], ["list", "--q"], ["list", "-q"], ["-root", rt.root, "list", "-q"]):
        assert rt(*argv).stdout == "", argv
    assert rt("list", "--f", "json").stdout == rt("list", "-format=json").stdout == "null\n"


def test_boolean_flag_values_are_read_as_gos_parsebool(rt):
    assert rt("list", "--quiet=F").stdout.startswith("ID ")            # F is false: the table, not the ids
    assert rt("list", "-q=1").stdout == ""
    assert rt("--debug=junk", "list", check=False).returncode == 1
    assert rt("delete", "--force=junk", "x", check=False).returncode == 1


def test_double_dash_after_the_command_reaches_the_process(rt, bundle, ctr):
    # `--` ends the flags only where a flag could stand; after the container id it is the process's argument
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    assert rt("exec", ctr, "echo", "--", "x").stdout == "-- x\n"
    assert rt("exec", ctr, "--", "true", check=False).returncode == 255     # no program called `--`


def test_flags_after_the_container_id_are_taken(rt, bundle, ctr):
    rt("create", ctr, "--bundle", bundle.set_args("sleep", "100").write())
    assert _status(rt, ctr) == "created"
    rt("delete", ctr, "--force")


@pytest.mark.parametrize("userns", [False, True], ids=["", "user-namespace"])
def test_run_accepts_no_subreaper_and_still_waits_for_the_process_status(rt, bundle, ctr, userns):
    # with a user namespace (as with a pid namespace joined by path, a time namespace, the sealed interpreter) init
    # is forked by an intermediate that exits: runc's init is its child all the same (nsexec's CLONE_PARENT); ours
    # is a subreaper's orphan only
    if userns:
        bundle.config["linux"]["namespaces"].append({"type": "user"})
        bundle.config["linux"]["uidMappings"] = bundle.config["linux"]["gidMappings"] = [
            {"containerID": 0, "hostID": 0, "size": 65536}]
        bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["type"] not in ("cgroup", "sysfs")]
    bundle.set_args("sh", "-c", "sleep 0.3; exit 3")
    p = rt("run", "--no-subreaper", "--bundle", bundle.write(), ctr, check=False)
    assert p.returncode == 3, p.stderr


def test_a_users_default_root_is_made_in_xdg_runtime_dir_0700_and_sticky(rt):
    # runc: a non-root user's state lives in $XDG_RUNTIME_DIR/runc, made 0700 with the sticky bit (the XDG spec's
    # way to keep the periodic clean-up away); here as nobody, the directory named after the runtime
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the runtime as another user")
    with tempfile.TemporaryDirectory(dir="/tmp") as xdg:      # pytest's tmp_path is not reachable by nobody
        os.chmod(xdg, 0o777)
        env = {"XDG_RUNTIME_DIR": xdg, "PATH": "/usr/bin:/bin"}
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", rt.exe, "list", "-q"],
                           env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout == "", p.stderr
        st = os.stat(os.path.join(xdg, rt.name))
        assert st.st_uid == 65534 and st.st_mode & 0o7777 == 0o1700


# --- exec's process -------------------------------------------------------------------------------------------
def test_exec_env_replaces_a_variable_in_place_and_appends_new_ones(rt, bundle, ctr):
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin", "TERM=xterm", "A=1", "A=2"]
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    out = rt("exec", "-e", "X=1", "-e", "PATH=/bin", "-e", "A=3", ctr, "env").stdout.split()
    assert out[:4] == ["PATH=/bin", "TERM=xterm", "A=3", "X=1"]


@pytest.mark.parametrize("argv", [["-e", "NOVAL"], ["--cwd", "tmp"]], ids=["env without =", "relative cwd"])
def test_exec_refuses_an_env_entry_without_a_value_and_a_relative_cwd(rt, bundle, ctr, argv):
    # config.md: env is environ's KEY=VALUE; cwd "MUST be an absolute path"
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    p = rt("exec", *argv, ctr, "true", check=False)
    assert p.returncode == 255 and p.stdout == ""


@pytest.mark.parametrize("proc", [{"cwd": "tmp"}, {"cwd": None}, {"env": ["PATH=/bin", "NOVAL"]}],
                         ids=["relative cwd", "no cwd", "env"])
def test_exec_process_file_is_held_to_the_same_rules(rt, bundle, ctr, tmp_path, proc):
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    f = tmp_path / "process.json"
    doc = {"args": ["/bin/true"], "cwd": "/", "env": ["PATH=/bin"], **proc}
    f.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))     # None: the key left out
    assert rt("exec", "--process", str(f), ctr, check=False).returncode == 255


def test_exec_additional_gids_that_are_not_numbers_is_a_usage_error(rt, bundle, ctr):
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    assert rt("exec", "-g", "x", ctr, "true", check=False).returncode == 1


def test_run_in_the_foreground_refuses_a_console_socket(rt, bundle, ctr, tmp_path):
    # runc's checkTerminal: only a detached run hands its pty to a console socket
    p = rt("run", "--console-socket", str(tmp_path / "sock"), "--bundle", bundle.set_args("true").write(), ctr,
           check=False)
    assert p.returncode == 1


@pytest.mark.parametrize("argv", [["--console-socket", "S"], ["-d", "--console-socket", "S"],
                                  ["-t", "--console-socket", "S"]], ids=["no tty", "detached, no tty", "attached"])
def test_exec_refuses_a_console_socket_unless_detached_with_a_tty(rt, bundle, ctr, tmp_path, argv):
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    argv = [str(tmp_path / "sock") if a == "S" else a for a in argv]
    assert rt("exec", *argv, ctr, "true", check=False).returncode == 255


def _status_field(text, name):
    return next(ln.split()[1] for ln in text.splitlines() if ln.startswith(name + ":"))


def test_exec_cap_adds_the_capability_without_a_warning(rt, bundle, ctr):
    # runc appends --cap to bounding, effective, permitted and ambient; not being inheritable it is not raised
    # as ambient, silently
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    p = rt("exec", "--cap", "CAP_SYS_ADMIN", ctr, "cat", "/proc/self/status")
    assert int(_status_field(p.stdout, "CapEff"), 16) & (1 << 21)
    assert int(_status_field(p.stdout, "CapAmb"), 16) == 0
    assert p.stderr == ""


def test_exec_no_new_privs_false_clears_the_configs(rt, bundle, ctr):
    bundle.config["process"]["noNewPrivileges"] = True
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    assert _status_field(rt("exec", ctr, "cat", "/proc/self/status").stdout, "NoNewPrivs") == "1"
    p = rt("exec", "--no-new-privs=false", ctr, "cat", "/proc/self/status")
    assert _status_field(p.stdout, "NoNewPrivs") == "0"


@pytest.mark.parametrize("size, ok", [("512m", True), ("1.5g", True), ("1 GiB", True), ("-1", True),
                                      (" 1g", False), ("1g ", False), ("-2", False), ("1x", False)])
def test_update_memory_sizes_as_go_units_reads_them(rt, bundle, ctr, size, ok):
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    assert rt("update", "--memory", size, ctr, check=False).returncode == (0 if ok else 1)


# --- events ---------------------------------------------------------------------------------------------------
def test_events_stats_keys_are_in_runcs_order(rt, bundle, ctr):
    # Go writes a struct's fields in declaration order and a map's keys sorted; a byte-level consumer sees both
    rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    line = rt("events", "--stats", ctr).stdout
    assert line.endswith("}\n") and line.count("\n") == 1
    ev = json.loads(line)
    assert list(ev) == ["type", "id", "data"] and ev["type"] == "stats"
    cpuset = list(ev["data"].get("cpuset") or {})
    if cpuset:
        assert cpuset[:3] == ["cpus", "cpu_exclusive", "mems"]
    raw = list(ev["data"]["memory"].get("raw") or {})
    assert raw == sorted(raw)


def test_create_refuses_a_console_socket_for_a_process_without_a_terminal(rt, bundle, ctr, tmp_path):
    # runc's checkTerminal: "cannot use console socket if runc will not detach or allocate tty", status 1
    bundle.config["process"]["terminal"] = False
    p = rt("create", "--console-socket", str(tmp_path / "console.sock"), "--bundle",
           bundle.set_args("true").write(), ctr, check=False)
    assert p.returncode == 1, p.stderr
    assert rt("state", ctr, check=False).returncode == 1      # nothing was made


@pytest.mark.parametrize("entry", ["NOVAL", "=value"])
def test_an_environment_entry_that_is_not_name_equals_value_fails_the_container(rt, bundle, ctr, entry):
    # runc: "invalid environment variable" from init, status 1 (ociruntime refuses it at create, naming process.env)
    bundle.config["process"]["env"].append(entry)
    p = rt("run", "--bundle", bundle.set_args("true").write(), ctr, check=False)
    assert p.returncode == 1, p.stderr
    assert rt("state", ctr, check=False).returncode == 1


def test_with_log_format_json_and_no_log_the_error_is_a_json_line_on_stderr(rt):
    # runc's log goes to stderr when there is no --log, in the format asked for: one {"level","msg","time"} line
    p = rt("--log-format", "json", "state", "no-such-container", check=False)
    assert p.returncode == 1
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    doc = json.loads(lines[0])
    assert doc["level"] == "error" and "does not exist" in doc["msg"] and doc["time"]


def test_create_makes_the_root_0700_and_the_containers_directory_0711(rt, bundle, ctr):
    # runc 1.1.5: MkdirAll(root, 0700), the container's directory 0711 (ids are not listed to other users)
    rt("create", "--bundle", bundle.set_args("true").write(), ctr)
    assert os.stat(rt.root).st_mode & 0o7777 == 0o700
    assert os.stat(os.path.join(rt.root, ctr)).st_mode & 0o7777 == 0o711


def test_a_container_frozen_only_by_an_ancestor_cgroup_is_running(rt, bundle, ctr):
    # cgroup v1: freezer.state reads FROZEN in every descendant of a frozen cgroup; runc's freezer GetState calls
    # that thawed unless freezer.self_freezing is 1 (the container itself was paused)
    from conftest import CGROUP_PARENT, V2, cgroup_dir, own_cgroup_dirs
    if V2 or "freezer" not in own_cgroup_dirs():
        pytest.skip("the cgroup v1 freezer's descendants (cgroup v2's cgroup.freeze is per cgroup)")
    import time
    import uuid as _uuid
    parent = f"{CGROUP_PARENT}-{_uuid.uuid4().hex[:8]}"
    bundle.config["linux"]["cgroupsPath"] = f"{parent}/child"
    freezer = os.path.join(cgroup_dir("freezer", parent), "freezer.state")
    try:
        rt("run", "--detach", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
        with open(freezer, "w") as f:
            f.write("FROZEN")
        time.sleep(0.1)
        assert _status(rt, ctr) == "running"
        with open(freezer, "w") as f:
            f.write("THAWED")
        rt("pause", ctr)
        assert _status(rt, ctr) == "paused"
        rt("resume", ctr)
    finally:
        try:
            with open(freezer, "w") as f:
                f.write("THAWED")
        except OSError:
            pass
        rt("delete", "--force", ctr, check=False)
        reap()
        left = []
        for base in own_cgroup_dirs().values():           # runc leaves the parent; so may we
            d = os.path.join(base, parent)
            for _ in range(50):                          # a child cgroup may still be going away
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    err = e
                    time.sleep(0.02)
            else:
                left.append(f"{d}: {err}")
        assert not left, left


def _cgroup_dirs_of(cgpath):
    """The container's directory in every cgroup hierarchy (a relative cgroupsPath: below our own), once each."""
    from conftest import own_cgroup_dirs
    dirs = {os.path.realpath(os.path.join(base, cgpath)) for base in own_cgroup_dirs().values()}
    return sorted(d for d in dirs if os.path.isdir(d))


@pytest.mark.parametrize("flag, moved", [("sub", "all"), ("pids:sub", "pids"), ("pids,memory:sub", "pids+memory")])
def test_exec_cgroup_runs_the_process_in_an_existing_sub_cgroup(rt, bundle, ctr, flag, moved):
    # runc 1.1: exec --cgroup [<controller>[,...]:]<path>, a sub-cgroup that must exist below the container's; the
    # container's cgroup namespace shows it as /<path> in the hierarchies it names (all of them without a prefix)
    if not all(os.path.isdir(f"/sys/fs/cgroup/{c}") for c in ("pids", "memory", "freezer")):
        pytest.skip("needs cgroup v1 pids, memory and freezer hierarchies (the controller-prefixed form is v1's)")
    rt("run", "-d", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    made = []
    try:
        for d in _cgroup_dirs_of(bundle.config["linux"]["cgroupsPath"]):
            os.mkdir(d + "/sub")
            made.append(d + "/sub")
            for f in ("cpuset.cpus", "cpuset.mems"):   # an empty v1 cpuset takes no process (ENOSPC, both runtimes)
                if os.path.exists(f"{d}/{f}"):
                    with open(f"{d}/{f}") as src, open(f"{d}/sub/{f}", "w") as dst:
                        dst.write(src.read())
        lines = rt("exec", "--cgroup", flag, ctr, "cat", "/proc/self/cgroup").stdout.splitlines()
        where = {ln.split(":")[1]: ln.split(":", 2)[2] for ln in lines}
        assert where["pids"] == "/sub"
        assert where["memory"] == ("/" if moved == "pids" else "/sub")
        assert where["freezer"] == ("/sub" if moved == "all" else "/")
    finally:
        rt("delete", "--force", ctr, check=False)     # both runtimes remove the sub-cgroups too
        for d in made:
            if os.path.isdir(d):
                os.rmdir(d)


@pytest.mark.parametrize("flag", ["no-such-sub", "a:b:c", "nosuchcontroller:sub"])
def test_exec_cgroup_refuses_a_missing_sub_cgroup_or_a_bad_argument(rt, bundle, ctr, flag):
    rt("run", "-d", "--bundle", bundle.set_args("sleep", "100").write(), ctr)
    p = rt("exec", "--cgroup", flag, ctr, "true", check=False)
    assert p.returncode == 255, p.stderr
    rt("delete", "--force", ctr)
