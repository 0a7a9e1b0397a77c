# ociruntime — see README.md. Every target installs what it needs (Debian 12, root).
# Debian's interpreter: statically linked and PGO/LTO-built, it starts and runs our code ~15-20% faster than a
# shared-libpython build (pyenv's); every CLI call pays that.
PYTHON  ?= /usr/bin/python3
VENV    := .venv
BIN     := $(VENV)/bin
APT_PKGS := python3 python3-venv python3-dev busybox-static libcap-dev libseccomp2 runc iproute2 util-linux containerd podman docker.io
# what a criu >= 4.1 binary needs at run time for checkpoint/restore (Debian 12's own criu 3.17 fails on kernels
# >= 6.13; see ../shared/tools/criu/README.md): its libraries, iptables (network locking), tar + gzip (tmpfs)
APT_PKGS += libbsd0 libgnutls30 libnftables1 libprotobuf-c1 libnl-3-200 libnet1 libuuid1 iptables tar gzip
# rootless containers: newuidmap/newgidmap for mappings of more than the user's own ids
APT_PKGS += uidmap
BUNDLE  := build/bundle
PYTEST_ARGS ?=

.PHONY: all deps apt venv launcher bundle demo test test-unit test-spec bench install conformance clean

all: demo

# apt_install: the recipe of a stamp target installing the packages of variable $(1) that are missing.
# Packages with services (docker.io, containerd) must not start the host's own daemons: the tests run private ones.
# Where no policy-rc.d forbids service starts, one does for the length of the install.
define apt_install
	@mkdir -p build
	@missing=""; for p in $($(1)); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  tmp_policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    tmp_policy=1; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  rc=$$?; [ -z "$$tmp_policy" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc -eq 0 ]; \
	fi
	@touch $@
endef

apt: build/.apt
build/.apt:
	$(call apt_install,APT_PKGS)

venv: $(VENV)/.stamp
$(VENV)/.stamp: build/.apt setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
	$(MAKE) --no-print-directory launcher
	@touch $@

# The executable every CLI call starts (bench/mklauncher.sh says why it is no pip script), and the hot-path file it
# reads (bench/mkhotpath.py): remade when either script or a source changed, so an existing checkout gets them too.
HOTPATH := $(VENV)/ociruntime-hotpath.bin
launcher:
	@sh bench/mklauncher.sh $(VENV)
$(HOTPATH): $(VENV)/.stamp bench/mklauncher.sh bench/mkhotpath.py $(shell find ociruntime -name '*.py')
	@sh bench/mklauncher.sh $(VENV)

deps: venv $(HOTPATH)

bundle: $(BUNDLE)/config.json
$(BUNDLE)/config.json: build/.apt $(VENV)/.stamp bench/mkbundle.sh
	sh bench/mkbundle.sh $(BUNDLE)

demo: deps bundle
	@echo "== ociruntime run: a busybox container in new pid, network, ipc, uts, mount and cgroup namespaces =="
	$(BIN)/ociruntime --root build/state run --bundle $(BUNDLE) demo-$$$$

# The whole suite runs confined: a new cgroup + mount namespace whose cgroup hierarchies are
# remounted, so every cgroup a test creates lands below this process's own cgroups.
test: deps bundle
	sh spec-tests/confine.sh $(BIN)/python -m pytest -q $(PYTEST_ARGS) tests spec-tests conformance

test-unit: deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

# BENCH_ARGS: e.g. --reps 9, --only exec,state, --ociruntime-flag=--debug (bench/lifecycle.py --help)
BENCH_ARGS ?=
bench: deps bundle launcher    # launcher: the hot-path file from the sources as they are now (bench/mkhotpath.py)
	sh spec-tests/confine.sh $(BIN)/python bench/lifecycle.py $(BENCH_ARGS)

install: deps
	cp $(BIN)/ociruntime /usr/local/bin/ociruntime
	chmod 755 /usr/local/bin/ociruntime
	@echo "installed /usr/local/bin/ociruntime -> $(CURDIR)/$(BIN)/ociruntime"

conformance: deps bundle
	@if [ -z "$(RUNTIME_TOOLS)" ]; then echo "RUNTIME_TOOLS is unset: no runtime-tools validation suite here; skipping"; exit 0; fi; \
	sh spec-tests/confine.sh $(BIN)/python conformance/runtime_tools.py "$(RUNTIME_TOOLS)"

clean:
	rm -rf build $(VENV) *.egg-info

# The cgroup v2 half of the cgroup tests, in a throw-away VM whose /sys/fs/cgroup is pure cgroup2 (this host is v1
# hybrid): the v2 driver and eBPF device tests, then the version-agnostic cgroup spec-tests with real containers, and
# the rootless ones (a delegated v2 subtree there), the lifecycle and crash-injection spec-tests (its named steps:
# timed kills of an emulated create all land before its cgroups). Not the device-race stress test: v2 swaps its eBPF
# program atomically, and under TCG its creates with 1,000 rules each outlast the fixture's 30 s timeout. brd gives
# io.max a block device, tun the default rule's /dev/net/tun. One VM boot (~20-30 s under TCG) runs all; ~25-40 min
# on a loaded 2-core host; not in `make test`.
CGROUP2_VM := ../shared/tools/cgroup2-vm.sh
CGROUP2_SPEC := tests/test_cgroups_cli.py spec-tests/test_cgroups.py spec-tests/test_rootless.py \
  spec-tests/test_lifecycle.py spec-tests/test_crash_injection.py spec-tests/test_cgroup_birth.py \
  spec-tests/test_pidns_fork.py
.PHONY: test-cgroup2 test-arm64
test-cgroup2: deps bundle
	@if [ ! -x $(CGROUP2_VM) ]; then echo "test-cgroup2: $(CGROUP2_VM) is absent: no cgroup v2 VM here; skipping"; exit 0; fi; \
	$(CGROUP2_VM) 'modprobe brd rd_nr=1 rd_size=16384; modprobe tun; \
	CGROUP2_VM=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) \
	  tests/test_cgroups_v2.py tests/test_cgroups_devices_bpf.py tests/test_fork_into_cgroup.py; unit=$$?; \
	OCIRUNTIME_VM=1 sh spec-tests/confine.sh $(BIN)/python -m pytest -q -p no:cacheprovider -rs $(PYTEST_ARGS) \
	  -k "not after_a_delay" $(CGROUP2_SPEC); spec=$$?; exit $$((unit | spec))'

# The systemd cgroup driver (--systemd-cgroup) against a real systemd 252 on cgroup v2: the VM of cgroup2-vm.sh
# --systemd (~1 min to boot under TCG, then each container ~2-5 s). Every spec-test runs for ociruntime and for runc
# (the control): as root through the system manager, and rootless through a user manager (user@UID.service of a
# throw-away user; its bus is dbus-user-session's, installed here: the VM runs the host's /usr). Not part of `make
# test`: it takes minutes (~20 min on a loaded 2-core host).
SYSTEMD_APT_PKGS := systemd dbus dbus-user-session passwd util-linux
build/.apt-systemd:
	$(call apt_install,SYSTEMD_APT_PKGS)

.PHONY: test-systemd
test-systemd: deps bundle build/.apt-systemd
	@if [ ! -x $(CGROUP2_VM) ]; then echo "test-systemd: $(CGROUP2_VM) is absent: no systemd VM here; skipping"; exit 0; fi; \
	$(CGROUP2_VM) --systemd 'OCIRUNTIME_SYSTEMD_TESTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -rs $(PYTEST_ARGS) \
	  tests/test_cgroups_systemd.py spec-tests/test_systemd_driver.py spec-tests/test_systemd_user.py'

# arm64: spec-tests/arm64.sh in a throw-away arm64 VM (qemu TCG, Debian 12 arm64, pure cgroup v2): an arm64 venv on
# Debian's packages, the per-architecture unit tests, then a focused spec-test subset with ociruntime and with runc
# as the control. Slow (everything runs ~10-30x slower than natively; the VM's first use installs for ~5 min);
# not part of `make test`. ARM64_SUITES="unit ociruntime runc" picks parts; PYTEST_ARGS is passed on.
ARM64_VM := ../shared/tools/arm64-vm.sh
ARM64_SUITES ?= unit ociruntime runc
test-arm64:
	@if [ ! -x $(ARM64_VM) ]; then echo "test-arm64: $(ARM64_VM) is absent: no arm64 VM here; skipping"; exit 0; fi; \
	$(ARM64_VM) 'PYTEST_ARGS="$(PYTEST_ARGS)" sh spec-tests/arm64.sh $(ARM64_SUITES)'
