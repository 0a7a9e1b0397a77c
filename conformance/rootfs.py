"""Copies of the busybox rootfs (build/bundle/rootfs) for test bundles, shared by spec-tests and conformance."""
import os
import shutil
import stat


def copy_rootfs(src: str, dst: str) -> str:
    """A copy of the rootfs src at dst: directories, regular files and symlinks only. A device node left in the base
    rootfs (a container run without a mount namespace or a /dev mount creates them there, as runc does) would be read
    by the copy, and /dev/full or /dev/zero never ends (one filled the disk once)."""
    def special(d, names):
        return [n for n in names if not stat.S_ISDIR(m := os.lstat(os.path.join(d, n)).st_mode)
                and not stat.S_ISREG(m) and not stat.S_ISLNK(m)]
    shutil.copytree(src, dst, symlinks=True, ignore=special)
    return dst
