#!/bin/sh
# arm64.sh [SUITE]: what `make test-arm64` runs inside the arm64 VM (../shared/tools/arm64-vm.sh), in the checkout.
# The VM sees the checkout through a private overlay: the host's x86-64 .venv and build/ are replaced there by an
# arm64 venv on Debian's packages (the VM has no PyPI; the header of arm64-vm.sh lists them) and an arm64 busybox
# bundle, and nothing reaches the host. Then the unit tests of what differs between architectures, and the spec-test
# subset below twice: with ociruntime, and with runc on the same checks as the control. SUITE (unit, ociruntime,
# runc; default all three) picks one. Exit status: non-zero if any part fails.
set -u
cd "$(dirname "$0")/.."
rm -rf .venv build
python3 -m venv --without-pip --system-site-packages .venv
sh bench/mklauncher.sh .venv
sh bench/mkbundle.sh build/bundle >/dev/null
PYTEST=".venv/bin/python -m pytest -q -rs -p no:cacheprovider ${PYTEST_ARGS:-}"
UNIT="tests/test_arch.py tests/test_dmz.py tests/test_seccomp.py tests/test_capabilities.py tests/test_procattrs.py
  tests/test_cgroups_v2.py tests/test_cgroups_devices_bpf.py"
# The spec-test subset: lifecycle, exec, namespaces, mounts, devices, capabilities, seccomp, every CVE attack of
# test_security.py, cgroup v2 (everything takes ~10-30x longer under emulation: the whole suite would take hours)
SPEC="spec-tests/test_lifecycle.py spec-tests/test_security.py spec-tests/test_isolation.py
  spec-tests/test_process_attrs.py spec-tests/test_cgroups.py"
PICK="(test_security or create_leaves or start_runs or kill_delivers or delete_force or delete_of_stopped
  or run_exits or run_passes_stdio or exec_sets_home or namespace or hostname or readonly or masked or tmpfs
  or bind_mount or symlink or devices or capability_sets or seccomp or memory_limit or pids_limit or cpu_shares
  or device_ or update_is_visible or pause or delete_removes or kill_all) and not sysctl and not time_namespace"
# Checks runc 1.1.5 does not pass on any architecture (x86-64 alike), left out of its run: what runc lacks (time
# namespace, domainname), ociruntime's own wording (the refusal names `cwd` / the config path) and internals (state
# file, exec FIFO), the sealed exec program's guarantees (runc's Go init runs after the filter: a killed getpid or
# a default-deny profile stops it; its `#!/proc/self/exe` target is a read-only bind the check counts as a host
# file) and vm.memfd_noexec (kernel >= 6.3)
S=spec-tests
RUNC_DIFFERS="$S/test_isolation.py::test_each_new_namespace_differs_from_the_runtime[time-time]
  $S/test_isolation.py::test_all_eight_namespaces_with_a_user_namespace_and_mappings
  $S/test_isolation.py::test_hostname_and_domainname_in_new_uts_namespace
  $S/test_security.py::test_run_with_a_proc_cwd_never_starts_on_the_host
  $S/test_security.py::test_run_with_cwd_through_a_host_directory_fd_never_starts_on_the_host
  $S/test_security.py::test_exec_with_cwd_through_a_host_directory_fd_never_starts_on_the_host
  $S/test_process_attrs.py::test_seccomp_unknown_syscall_names_are_ignored_and_named_in_the_debug_log
  $S/test_process_attrs.py::test_seccomp_invalid_profile_fails_naming_the_field
  $S/test_lifecycle.py::test_delete_force_cleans_up_after_a_create_that_was_killed
  $S/test_security.py::test_start_after_a_start_that_died_reports_running_instead_of_waiting
  $S/test_security.py::test_a_filter_refusing_the_exec_programs_fcntl_fails_start_instead_of_leaking_its_report_fd
  $S/test_security.py::test_the_program_runs_under_a_filter_killing_syscalls_it_does_not_need[getpid]
  $S/test_process_attrs.py::test_seccomp_default_errno_ret
  $S/test_security.py::test_container_script_with_proc_self_exe_as_interpreter_gives_no_handle_on_a_host_binary
  $S/test_security.py::test_started_container_script_with_proc_self_exe_as_interpreter_gives_no_handle_on_a_host_binary
  $S/test_security.py::test_without_executable_memfds_create_fails_closed_instead_of_execing_directly"
DESELECT=$(for t in $RUNC_DIFFERS; do printf ' --deselect %s' "$t"; done)
rc=0
for suite in ${*:-unit ociruntime runc}; do
  echo "== arm64 ($(uname -m), $(uname -r)): $suite" >&2
  case $suite in
    unit) CGROUP2_VM=1 $PYTEST $UNIT || rc=1 ;;
    ociruntime) sh spec-tests/confine.sh $PYTEST -k "$(echo $PICK)" $SPEC || rc=1 ;;
    runc) SPEC_RUNTIME=$(command -v runc) sh spec-tests/confine.sh $PYTEST -k "$(echo $PICK)" $DESELECT $SPEC \
            || rc=1 ;;
    *) echo "arm64.sh: unknown suite $suite (unit, ociruntime, runc)" >&2; exit 2 ;;
  esac
done
exit $rc
