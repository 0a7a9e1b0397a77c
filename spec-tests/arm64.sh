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
rc=0
for suite in ${*:-unit ociruntime runc}; do
  echo "== arm64 ($(uname -m), $(uname -r)): $suite" >&2
  case $suite in
    unit) CGROUP2_VM=1 $PYTEST $UNIT || rc=1 ;;
    ociruntime) sh spec-tests/confine.sh $PYTEST -k "$(echo $PICK)" $SPEC || rc=1 ;;
    runc) SPEC_RUNTIME=$(command -v runc) sh spec-tests/confine.sh $PYTEST -k "$(echo $PICK)" $SPEC || rc=1 ;;
    *) echo "arm64.sh: unknown suite $suite (unit, ociruntime, runc)" >&2; exit 2 ;;
  esac
done
exit $rc
