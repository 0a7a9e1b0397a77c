"""mkhotpath.py CHECKOUT OUT: the runtime's hot-path modules compiled into one file, OUT, that the launcher
(bench/mklauncher.sh) puts in front of the normal import system.

Every module a normal import finds costs a FileFinder lookup (stat of its directory, of the source), an open, fstat,
read and close of its pyc, and the Python code of importlib that checks it: ~0.08 ms each here, ~9 modules for
`start` or `delete`, ~25 for create's parent and ~15 more for its init. From OUT a module costs one stat of its source
(the same check a pyc gets: a module edited since `make` is imported the normal way, from its source) and one pread.

OUT: 8 bytes (little-endian offset of the code area), then a marshalled code object, the finder (FINDER below, with
the index of modules as a constant), then each module's marshalled code. The launcher opens OUT (close-on-exec: no
exec'd program gets it) and executes the finder with the fd; the finder reads the rest on demand.
"""
import importlib.util
import marshal
import os
import sys

# Modules of the commands a container engine calls for every container (create with its init, start, state, kill,
# delete, exec). Another module is imported the normal way, as are all of them when OUT is missing or stale.
HOT = """
ociruntime ociruntime.__main__ ociruntime.cli ociruntime.cli.create ociruntime.cli.start ociruntime.cli.state
ociruntime.cli.kill ociruntime.cli.delete ociruntime.cli.exec ociruntime.cli.run ociruntime.errors ociruntime.fastos
ociruntime.log ociruntime.fastjson ociruntime.state ociruntime.container ociruntime.launch ociruntime.initargs
ociruntime.sync ociruntime.record ociruntime.init ociruntime.config ociruntime.config.model ociruntime.config.schema
ociruntime.config.validate ociruntime.linux ociruntime.linux.arch ociruntime.linux.arch.x86_64
ociruntime.linux.arch.aarch64 ociruntime.linux.ffi ociruntime.linux.syscalls ociruntime.linux.cgroups
ociruntime.linux.cgroups.common ociruntime.linux.cgroups.v1 ociruntime.linux.cgroups.v2 ociruntime.linux.cgroups.mount
ociruntime.linux.cgroups.devices_bpf ociruntime.linux.capabilities ociruntime.linux.user ociruntime.linux.rlimits
ociruntime.linux.namespaces ociruntime.linux.rootfs ociruntime.linux.mounts ociruntime.linux.devices
ociruntime.linux.paths ociruntime.linux.network ociruntime.linux.dmz ociruntime.linux.console ociruntime.linux.seccomp
ociruntime.linux.procattrs ociruntime.linux.sysctl ociruntime.linux.hooks
""".split()

FINDER = '''
import posix as _posix
import marshal as _marshal
import sys as _sys
from _frozen_importlib import ModuleSpec as _Spec

if _sys.modules["_frozen_importlib_external"].MAGIC_NUMBER != %r:
    raise ValueError("hot-path file made by another Python: normal imports")   # the launcher catches it
_BASE = int.from_bytes(_posix.pread(FD, 8, 0), "little")
_INDEX = %r


class HotPath:
    """Meta path finder of the modules bench/mkhotpath.py compiled into one file (fd FD)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        e = _INDEX.get(name)
        if e is None:
            return None
        pkg, src, mtime_ns, size, off, n = e
        try:
            st = _posix.stat(src)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None             # edited since `make`: imported the normal way
        spec = _Spec(name, HotPath, origin=src, is_package=pkg)
        if pkg:
            spec.submodule_search_locations = [src.rpartition("/")[0]]
        spec.has_location = True
        return spec

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        e = _INDEX[module.__spec__.name]
        exec(_marshal.loads(_posix.pread(FD, e[5], _BASE + e[4])), module.__dict__)


_sys.meta_path.insert(0, HotPath)
'''


def build(checkout: str, names=HOT) -> bytes:
    index, blobs, off = {}, [], 0
    for name in names:
        rel = os.path.join(checkout, *name.split("."))
        pkg = os.path.isdir(rel)
        src = os.path.join(rel, "__init__.py") if pkg else rel + ".py"
        if not os.path.exists(src):
            continue
        st = os.stat(src)
        with open(src, "rb") as f:
            code = compile(f.read(), src, "exec", dont_inherit=True)
        data = marshal.dumps(code)
        index[name] = (pkg, src, st.st_mtime_ns, st.st_size, off, len(data))
        blobs.append(data)
        off += len(data)
    finder = marshal.dumps(compile(FINDER % (importlib.util.MAGIC_NUMBER, index), "<ociruntime hot path>", "exec", dont_inherit=True))
    if len(finder) > 65536:
        raise SystemExit("mkhotpath: the finder is larger than the launcher's first read (64 KiB)")
    base = 8 + len(finder)
    return base.to_bytes(8, "little") + finder + b"".join(blobs)


def main():
    checkout, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(build(checkout))
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
