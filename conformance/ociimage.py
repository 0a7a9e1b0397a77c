"""Build a busybox image with no registry: a rootfs layer tar from Debian's busybox-static, packed as an OCI
image-layout tar archive (oci-layout, index.json, blobs/sha256/...) that `ctr images import` and `podman load` read.

One layer is shared by every image in the archive; each image differs only in its config (user, cwd, env), so a
test can prove the client's image config reaches the runtime's process.
"""
import hashlib
import io
import json
import platform
import subprocess
import tarfile
from dataclasses import dataclass, field

BUSYBOX = "/bin/busybox"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = 1700000000  # fixed mtime: the layer (and so its digest) is the same on every build
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"
DIRS = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "proc", "sys", "dev", "etc", "root", "var", "run", "tmp")

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class ImageSpec:
    """One image of the archive: its full name (registry/repo:tag) and the config fields a runtime must honour."""
    name: str
    user: str = ""
    workdir: str = "/"
    env: tuple = ()
    cmd: tuple = ("sh",)
    labels: dict = field(default_factory=dict)


def _add(tar, name, kind, data=b"", mode=0o644, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, EPOCH, 0, 0
    info.linkname = target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def rootfs_layer(busybox=BUSYBOX):
    """The uncompressed layer tar: busybox, one symlink per applet, /etc/passwd and /etc/group, empty dirs."""
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with open(busybox, "rb") as f:
        binary = f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in DIRS:
            _add(tar, d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", tarfile.REGTYPE, binary, mode=0o755)
        for app in sorted(set(applets) - {"busybox"}):
            _add(tar, f"bin/{app}", tarfile.SYMTYPE, target="busybox")
        _add(tar, "etc/passwd", tarfile.REGTYPE, PASSWD.encode())
        _add(tar, "etc/group", tarfile.REGTYPE, GROUP.encode())
        _add(tar, "etc/resolv.conf", tarfile.REGTYPE, b"nameserver 127.0.0.1\n")
    return buf.getvalue()


def _blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def _json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _image_config(spec, diff_id):
    arch = ARCHES.get(platform.machine(), platform.machine())
    return {
        "architecture": arch, "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"User": spec.user, "WorkingDir": spec.workdir, "Env": [DEFAULT_PATH, *spec.env],
                   "Cmd": list(spec.cmd), "Labels": dict(spec.labels)},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "conformance/ociimage.py"}],
    }


def oci_archive(path, specs, busybox=BUSYBOX):
    """Write an OCI image-layout tar at `path` holding one image per ImageSpec; return the image names.

    Each index entry carries both `io.containerd.image.name` (containerd's full name) and
    `org.opencontainers.image.ref.name` (the name podman and skopeo read)."""
    layer_digest, layer = _blob(rootfs_layer(busybox))
    blobs = {layer_digest: layer}
    manifests = []
    for spec in specs:
        cfg_digest, cfg = _blob(_json(_image_config(spec, layer_digest)))
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": {"mediaType": MT_CONFIG, "digest": cfg_digest, "size": len(cfg)},
                    "layers": [{"mediaType": MT_LAYER, "digest": layer_digest, "size": len(layer)}]}
        man_digest, man = _blob(_json(manifest))
        blobs.update({cfg_digest: cfg, man_digest: man})
        arch = ARCHES.get(platform.machine(), platform.machine())
        manifests.append({"mediaType": MT_MANIFEST, "digest": man_digest, "size": len(man),
                          "platform": {"architecture": arch, "os": "linux"},
                          "annotations": {"io.containerd.image.name": spec.name,
                                          "org.opencontainers.image.ref.name": spec.name}})
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", tarfile.REGTYPE, _json({"imageLayoutVersion": "1.0.0"}))
        _add(tar, "index.json", tarfile.REGTYPE, _json(index))
        _add(tar, "blobs", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", tarfile.DIRTYPE, mode=0o755)
        for digest, data in sorted(blobs.items()):
            _add(tar, "blobs/sha256/" + digest.split(":", 1)[1], tarfile.REGTYPE, data)
    return [s.name for s in specs]
