"""The CLI surface: features, validate, help and version, errors as one line."""
import json
import os

import pytest

from conftest import REPO

SCHEMA_DIR = os.path.join(REPO, "..", "shared", "runtime-spec-v1.3.0", "schema")


def test_features_document_validates_against_the_features_schema(runtime):
    jsonschema = pytest.importorskip("jsonschema")
    if not os.path.isdir(SCHEMA_DIR):
        pytest.skip("official schema not present")
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4
    docs = {}
    for n in os.listdir(SCHEMA_DIR):
        with open(os.path.join(SCHEMA_DIR, n)) as f:
            docs[n] = json.load(f)
    reg = Registry().with_resources((n, Resource(d, DRAFT4)) for n, d in docs.items())
    doc = json.loads(runtime("features").stdout)
    jsonschema.Draft4Validator(docs["features-schema.json"], registry=reg).validate(doc)
    assert doc["ociVersionMax"] == "1.3.0"
    assert "time" in doc["linux"]["namespaces"] and "rbind" in doc["mountOptions"]


def test_validate_accepts_the_default_spec_and_names_the_bad_path(runtime, bundle):
    bundle.write()
    assert runtime("validate", "--bundle", bundle.path).returncode == 0
    bundle.config["linux"]["namespaces"].append({"type": "foo"})
    bundle.write()
    p = runtime("validate", "--bundle", bundle.path, check=False)
    assert p.returncode == 1
    assert "linux.namespaces[6].type: 'foo' is not one of pid, network" in p.stderr


def test_create_with_invalid_config_fails_naming_the_path_and_leaves_nothing(runtime, bundle, cid):
    bundle.config["process"]["user"]["uid"] = "root"
    p = runtime("create", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == "ociruntime: config.json: process.user.uid: expected integer, got string"
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_init_side_error_is_carried_back_to_create(runtime, bundle, cid):
    bundle.config["process"]["cwd"] = "/etc/passwd"     # a file: init's chdir fails (a missing cwd is created)
    p = runtime("create", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode == 1
    assert "process.cwd /etc/passwd" in p.stderr and "ENOTDIR" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_errors_go_to_the_log_as_json_lines(runtime, tmp_path):
    log = tmp_path / "log.json"
    p = runtime("--log", str(log), "--log-format", "json", "state", "nosuch", check=False)
    assert p.returncode == 1
    entry = json.loads(log.read_text().strip().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"] and entry["time"].endswith("Z")


@pytest.mark.parametrize("cmd", ["create", "start", "state", "kill", "delete", "run", "exec", "list", "ps",
                                 "pause", "resume", "update", "events", "spec", "features", "validate"])
def test_every_command_has_help(runtime, cmd):
    p = runtime(cmd, "--help")
    assert p.stdout.startswith(f"NAME:\n   ociruntime {cmd} - ")


def test_version_prints_the_spec_version(runtime):
    out = runtime("--version").stdout
    assert "spec: 1.3.0" in out


def test_spec_writes_a_config_that_validates(runtime, tmp_path):
    runtime("spec", "--bundle", str(tmp_path))
    os.mkdir(tmp_path / "rootfs")
    assert runtime("validate", "--bundle", str(tmp_path)).returncode == 0
    assert runtime("spec", "--bundle", str(tmp_path), check=False).returncode == 1   # exists: refuse to overwrite


def test_log_file_is_created_even_when_nothing_is_logged(runtime, tmp_path):
    # runc opens --log FILE (0644) at start: a caller reads it after a failure, so it must exist; a file that
    # cannot be opened fails the command naming it
    log = tmp_path / "log.json"
    runtime("--log", str(log), "--log-format", "json", "list")
    assert log.exists() and log.read_text() == "" and (log.stat().st_mode & 0o777) == 0o644
    p = runtime("--log", str(tmp_path / "nodir" / "log"), "list", check=False)
    assert p.returncode == 1 and f"open {tmp_path}/nodir/log: ENOENT" in p.stderr


# -- crun's flags: crun's own test suite calls the runtime under test with `--cgroup-manager cgroupfs ... run --config
# config.json` (tests/tests_utils.py run_and_get_output). runc has neither; accepting them costs runc's callers nothing.

@pytest.mark.skipif(bool(os.environ.get("SPEC_RUNTIME")), reason="crun's flags: runc has none")
def test_run_and_create_read_the_config_named_by_config_and_exec_reads_it_again(runtime, bundle, cid, make_id):
    bundle.set_args("sh", "-c", "echo $WHICH")
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin", "WHICH=default"]
    path = bundle.write()
    alt = dict(bundle.config, process=dict(bundle.config["process"], env=["PATH=/bin:/usr/bin", "WHICH=alternate"]))
    with open(os.path.join(path, "alt.json"), "w") as f:
        json.dump(alt, f)
    p = runtime("--cgroup-manager", "cgroupfs", "run", "--bundle", path, "--config", "alt.json", cid)
    assert p.stdout == "alternate\n"
    other = make_id()
    bundle.set_args("sleep", "100")
    alt["process"]["args"] = ["sleep", "100"]
    with open(os.path.join(path, "alt.json"), "w") as f:
        json.dump(alt, f)
    runtime("create", "--bundle", path, "--config", "alt.json", other)
    try:
        p = runtime("exec", other, "sh", "-c", "echo $WHICH")     # the process's defaults: alt.json's
        assert p.stdout == "alternate\n"
    finally:
        runtime("delete", "--force", other)


@pytest.mark.skipif(bool(os.environ.get("SPEC_RUNTIME")), reason="crun's flags: runc has none")
def test_cgroup_manager_disabled_makes_no_cgroup_and_an_unknown_manager_is_a_usage_error(runtime, bundle, cid):
    bundle.set_args("sleep", "100")
    runtime("--cgroup-manager", "disabled", "create", "--bundle", bundle.write(), cid)
    try:
        pid = runtime.state(cid)["pid"]
        with open(f"/proc/{pid}/cgroup") as a, open("/proc/self/cgroup") as b:
            assert a.read() == b.read()          # where the runtime was: no cgroup of its own
    finally:
        runtime("delete", "--force", cid)
    p = runtime("--cgroup-manager", "bogus", "state", cid, check=False)
    assert p.returncode == 1 and "unknown cgroup manager 'bogus'" in p.stderr
