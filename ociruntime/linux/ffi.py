"""The slice of ctypes that syscalls.py uses, built straight on the `_ctypes` C module.

`import ctypes` also imports os, struct and types and defines some sixty classes: +4.3 ms of CPU over the bare
interpreter here (rusage, median), against +1.2 ms for `_ctypes` alone, and every process that makes a container pays
it (create's init, exec's parent and child). The classes below are ctypes' own definitions of the same C types, so
they mix freely with ctypes' (devices_bpf.py and seccomp.py import the real ctypes when they are needed).
"""
import _ctypes
from _ctypes import Structure, byref, get_errno, sizeof  # noqa: F401 — re-exported

_SimpleCData = _ctypes._SimpleCData


def _simple(name: str, code: str) -> type:
    return type(name, (_SimpleCData,), {"_type_": code, "__module__": __name__})


c_int, c_uint, c_long, c_ulong = _simple("c_int", "i"), _simple("c_uint", "I"), _simple("c_long", "l"), \
    _simple("c_ulong", "L")
c_ushort, c_char, c_char_p, c_void_p = _simple("c_ushort", "H"), _simple("c_char", "c"), _simple("c_char_p", "z"), \
    _simple("c_void_p", "P")
c_int32, c_uint32 = c_int, c_uint
c_int64, c_uint64 = c_long, c_ulong     # LP64 (x86-64, aarch64): ctypes makes the same choice
c_size_t, c_ssize_t = c_ulong, c_long


class _FuncPtr(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _PyFuncPtr(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class CDLL:
    """ctypes.CDLL(name, use_errno=True): functions looked up by attribute, returning int unless restype is set."""

    _funcptr = _FuncPtr

    def __init__(self, name: str | None = None):
        self._name = name
        self._handle = _ctypes.dlopen(name, _ctypes.RTLD_LOCAL)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = self._funcptr((name, self))
        func.__name__ = name
        setattr(self, name, func)
        return func


class PyDLL(CDLL):
    """ctypes.PyDLL(name, use_errno=True): the same, but the GIL stays held during the call (the Python C API, and
    a fork that must return to the child with the interpreter exactly as os.fork leaves it)."""

    _funcptr = _PyFuncPtr
