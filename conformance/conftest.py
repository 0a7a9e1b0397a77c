"""Fixtures for the real-client conformance suite (containerd via ctr, podman).

Run confined: `sh spec-tests/confine.sh .venv/bin/python -m pytest -q conformance/`. Unconfined, the clients'
absolute cgroup paths would land in the host's root cgroups, so every client check skips instead.

Each check is parametrized over RUNTIMES: ociruntime (the runtime under test) and runc (the control, same checks,
same run). Both are called through logging wrappers so a check can prove which binary the client ran.
"""
import os
import shutil
import tempfile
import uuid

import pytest

from conformance.ociimage import oci_archive
from conformance.runtimes import IMAGE_SPECS, OCIRUNTIME, RUNTIMES, RuntimeUnderTest
from conformance.sandbox import confined


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="ocirt-conformance-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("CONFORMANCE_KEEP") == "1":  # debugging: keep logs and argv records
        print(f"\nconformance workdir kept: {d}")
        for sub in ("containerd/root", "podman/root"):  # the bulky image stores go anyway
            shutil.rmtree(os.path.join(d, sub), ignore_errors=True)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def cgroup_parent():
    """Absolute cgroup parent for every client container: /ocirt-conformance-<pid> below our own cgroups."""
    return f"/ocirt-conformance-{os.getpid()}"


@pytest.fixture(scope="session")
def require_confined():
    if not confined():
        pytest.skip("not confined: run under `sh spec-tests/confine.sh` (absolute cgroup paths would reach "
                    "the host's root cgroups)")


@pytest.fixture(scope="session")
def runtimes(workdir):
    if not os.access(OCIRUNTIME, os.X_OK):
        pytest.skip(f"{OCIRUNTIME} missing: run `make deps`")
    return {name: RuntimeUnderTest(name, real, workdir) for name, real in RUNTIMES.items() if os.access(real, os.X_OK)}


@pytest.fixture(scope="session")
def image_archive(workdir):
    if not os.access("/bin/busybox", os.X_OK):
        pytest.skip("/bin/busybox missing (apt-get install busybox-static)")
    path = os.path.join(workdir, "busybox-oci.tar")
    oci_archive(path, IMAGE_SPECS)
    return path


@pytest.fixture(params=sorted(RUNTIMES, key=lambda n: n != "ociruntime"))
def runtime(request, runtimes):
    if request.param not in runtimes:
        pytest.skip(f"{request.param} is not installed")
    return runtimes[request.param]


@pytest.fixture
def make_id(runtime):
    """Container ids unique to this check, prefixed with the runtime's name."""
    return lambda: f"{runtime.name}-{uuid.uuid4().hex[:8]}"
