"""config.md "POSIX-platform Hooks": each kind runs at its moment, in order, with the state on stdin."""
import json
import os
import stat


def _hook_script(tmp_path, name, body="cat > \"$OUT\""):
    path = tmp_path / f"{name}.sh"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_all_hook_kinds_run_in_order_with_the_state_on_stdin(runtime, bundle, cid, tmp_path):
    log = tmp_path / "order"
    hooks = {}
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        # createContainer/startContainer run in the container's mount namespace: write where it can see
        target = "/tmp/hook-" + kind if kind == "startContainer" else str(tmp_path / kind)
        script = _hook_script(tmp_path, kind, f'cat > "{target}"; echo {kind} >> "{log}" 2>/dev/null || true')
        if kind == "startContainer":      # its path resolves in the container (config.md)
            os.rename(script, os.path.join(bundle.rootfs, "hook.sh"))
            script = "/hook.sh"
        hooks[kind] = [{"path": script, "args": [kind], "env": [f"KIND={kind}"], "timeout": 10}]
    bundle.config["hooks"] = hooks
    bundle.set_args("true").write()
    runtime("create", "--bundle", bundle.path, cid)
    pid = runtime.state(cid)["pid"]
    order = log.read_text().split()
    # createContainer runs in the container's namespaces before pivot_root, so it still sees the host log
    assert order == ["prestart", "createRuntime", "createContainer"]
    assert json.loads((tmp_path / "createContainer").read_text())["id"] == cid
    st = json.loads((tmp_path / "createRuntime").read_text())
    assert st["id"] == cid and st["pid"] == pid and st["bundle"] == bundle.path
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    # startContainer runs after pivot_root: it wrote its state inside the container
    assert json.loads(open(os.path.join(bundle.rootfs, "tmp/hook-startContainer")).read())["id"] == cid
    assert log.read_text().split() == ["prestart", "createRuntime", "createContainer", "poststart"]
    runtime("delete", cid)
    assert log.read_text().split()[-1] == "poststop"
    assert json.loads((tmp_path / "poststop").read_text())["status"] == "stopped"


def test_failing_create_runtime_hook_fails_create_and_cleans_up(runtime, bundle, cid, tmp_path):
    bad = _hook_script(tmp_path, "bad", "echo nope >&2; exit 3")
    bundle.config["hooks"] = {"createRuntime": [{"path": bad}]}
    p = runtime("create", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode == 1
    assert "hooks.createRuntime[0]" in p.stderr and "exit status 3" in p.stderr and "nope" in p.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_hook_timeout_is_enforced(runtime, bundle, cid, tmp_path):
    slow = _hook_script(tmp_path, "slow", "sleep 5")
    bundle.config["hooks"] = {"prestart": [{"path": slow, "timeout": 1}]}
    p = runtime("create", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode == 1 and "timed out after 1s" in p.stderr


def test_failing_poststop_hook_is_logged_and_delete_goes_on(runtime, bundle, cid, tmp_path):
    bad = _hook_script(tmp_path, "bad", "exit 1")
    bundle.config["hooks"] = {"poststop": [{"path": bad}]}
    runtime("create", "--bundle", bundle.set_args("true").write(), cid)
    p = runtime("delete", cid)
    assert "hooks.poststop[0]" in p.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_hook_state_has_the_implemented_spec_version_and_the_status_of_its_moment(runtime, bundle, cid, tmp_path):
    # runc side by side: createRuntime/createContainer see "creating", startContainer "created", poststop no pid;
    # ociVersion is the runtime's spec version, not the config's. poststart: "running" (runc 1.1.5 says "created",
    # but the program has been started then: runtime.md's "running")
    hooks = {}
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        target = "/tmp/hook-" + kind if kind == "startContainer" else str(tmp_path / kind)
        script = _hook_script(tmp_path, kind, f'cat > "{target}"')
        if kind == "startContainer":
            os.rename(script, os.path.join(bundle.rootfs, "hook.sh"))
            script = "/hook.sh"
        hooks[kind] = [{"path": script}]
    bundle.config["hooks"] = hooks
    bundle.config["ociVersion"] = "1.0.0"
    bundle.set_args("true").write()
    runtime("create", "--bundle", bundle.path, cid)
    pid = runtime.state(cid)["pid"]
    runtime("start", cid)
    runtime.wait_status(cid, "stopped")
    runtime("delete", cid)
    seen = {k: json.loads((tmp_path / k).read_text()) for k in hooks if k != "startContainer"}
    seen["startContainer"] = json.loads(open(os.path.join(bundle.rootfs, "tmp/hook-startContainer")).read())
    assert {k: v["status"] for k, v in seen.items()} == {
        "prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
        "startContainer": "created", "poststart": "running", "poststop": "stopped"}
    assert {v["ociVersion"] for v in seen.values()} == {"1.3.0"}
    assert "pid" not in seen["poststop"]
    # runtime.md: hooks in the container's namespaces see the pid as the container sees it (1: its own pid
    # namespace), the others the runtime's view (runc alike)
    assert {k: v["pid"] for k, v in seen.items() if k != "poststop"} == {
        "prestart": pid, "createRuntime": pid, "createContainer": 1, "startContainer": 1, "poststart": pid}


def test_hooks_without_env_get_the_runtimes_environment(runtime, bundle, cid, tmp_path):
    # runc/crun: a hook without "env" inherits the runtime's environment; "env": [] is an empty one. Hooks that run
    # in the container's namespaces (createContainer, startContainer) get the process's environment, as in runc
    # (never the host's inside the container)
    bundle.config["hooks"] = {
        "prestart": [{"path": _hook_script(tmp_path, "inherit", f'env > "{tmp_path}/inherit"')},
                     {"path": _hook_script(tmp_path, "empty", f'env > "{tmp_path}/empty"'), "env": []},
                     {"path": _hook_script(tmp_path, "own", f'env > "{tmp_path}/own"'), "env": ["MINE=1"]}],
        "createContainer": [{"path": _hook_script(tmp_path, "cc", f'env > "{tmp_path}/cc"')}],
    }
    bundle.config["process"]["env"] = ["PATH=/bin", "FROM_PROCESS=yes"]
    bundle.set_args("true").write()
    env = dict(os.environ, FROM_RUNTIME="here")
    runtime("create", "--bundle", bundle.path, cid, env=env)
    assert "FROM_RUNTIME=here" in (tmp_path / "inherit").read_text().splitlines()
    assert "FROM_RUNTIME" not in (tmp_path / "empty").read_text()
    own = (tmp_path / "own").read_text().splitlines()
    assert "MINE=1" in own and "FROM_RUNTIME=here" not in own
    cc = (tmp_path / "cc").read_text().splitlines()
    assert "FROM_PROCESS=yes" in cc and "FROM_RUNTIME=here" not in cc


def test_a_failing_poststart_hook_fails_start_and_destroys_the_container(runtime, bundle, cid, tmp_path):
    # runtime.md lifecycle step 9: "If any poststart hook fails, the runtime MUST generate an error, stop the
    # container, and continue the lifecycle at step 12": destroyed and its poststop hooks run, no `delete` needed.
    # runc 1.1.5 ends the same (it runs poststart hooks in create, which then fails and destroys), and crun's
    # test_hooks poststart-fail-deletes-container expects `state` to fail afterwards
    marker = tmp_path / "poststop"
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}],
                              "poststop": [{"path": _hook_script(tmp_path, "post", f'cat > "{marker}"')}]}
    p = runtime("create", "--bundle", bundle.set_args("sleep", "100").write(), cid, check=False)
    if p.returncode == 0:                # runc 1.1.5 already failed here
        p = runtime("start", cid, check=False)
        assert p.returncode == 1 and "hooks.poststart[0]" in p.stderr, p.stderr
    assert p.returncode != 0
    assert runtime("state", cid, check=False).returncode != 0
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert json.loads(marker.read_text())["status"] == "stopped"


def test_a_create_that_fails_runs_the_poststop_hooks(runtime, bundle, make_id, tmp_path):
    # runtime.md steps 3-5: a failing prestart/createRuntime/createContainer hook MUST stop the container and
    # "continue the lifecycle at step 12": destroyed, then the poststop hooks (13). runc 1.1.5 runs them after any
    # failure once the id is taken (its destroy does), e.g. a program that does not exist; crun's
    # test_hooks.py poststop-hook-on-createruntime-failure checks the same. The hook sees "stopped", no pid.
    marker = tmp_path / "poststop"
    poststop = [{"path": _hook_script(tmp_path, "post", f'cat > "{marker}"')}]
    for why, hooks, args in (("createRuntime", {"createRuntime": [{"path": "/bin/false"}]}, ["true"]),
                             ("prestart", {"prestart": [{"path": "/bin/false"}]}, ["true"]),
                             ("missing program", {}, ["/does-not-exist"])):
        bundle.config["hooks"] = dict(hooks, poststop=poststop)
        bundle.set_args(*args).write()
        cid = make_id()
        p = runtime("create", "--bundle", bundle.path, cid, check=False)
        assert p.returncode != 0, why
        assert not os.path.exists(os.path.join(runtime.root, cid)), why
        seen = json.loads(marker.read_text())
        assert seen["id"] == cid and seen["status"] == "stopped" and "pid" not in seen, (why, seen)
        marker.unlink()


def test_a_failing_poststop_hook_after_a_failed_create_is_only_a_warning(runtime, bundle, cid, tmp_path):
    # step 13: a poststop failure is a warning; the error the user sees is the create's own
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}], "poststop": [{"path": "/bin/false"}]}
    p = runtime("create", "--bundle", bundle.set_args("true").write(), cid, check=False)
    assert p.returncode == 1
    assert "hooks.createRuntime[0]" in p.stderr and "hooks.poststop[0]" in p.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_create_time_hooks_run_in_the_bundle_directory_and_create_container_in_the_rootfs(runtime, bundle, cid,
                                                                                          tmp_path):
    # runc 1.1.5 chdirs to --bundle for create, so prestart and createRuntime run there whatever the caller's
    # directory; its init chdirs to the rootfs before the createContainer hooks, the container's mounts made (/proc
    # among them) and pivot_root not yet done. crun runs createContainer in the bundle directory: runc's way here
    hooks = {}
    for kind in ("prestart", "createRuntime", "createContainer"):
        check = ' && test -e proc/self' if kind == "createContainer" else ""
        hooks[kind] = [{"path": _hook_script(tmp_path, kind, f'pwd > "{tmp_path}/{kind}.cwd"{check}')}]
    bundle.config["hooks"] = hooks
    runtime("create", "--bundle", bundle.set_args("true").write(), cid, cwd="/")
    for kind in hooks:
        want = bundle.rootfs if kind == "createContainer" else bundle.path
        assert (tmp_path / f"{kind}.cwd").read_text().strip() == want, kind
