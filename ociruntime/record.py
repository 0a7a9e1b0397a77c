"""@record: frozen, slotted value classes built from annotations — what @dataclass(frozen=True, slots=True) gives,
without importing dataclasses (it pulls in inspect and re: ~10 ms that every `create` would pay)."""


class factory:
    """A default built per instance: `hooks: Hooks = factory(Hooks)` (dataclasses' default_factory)."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


_MISSING = object()


def record(cls):
    names = tuple(cls.__dict__.get("__annotations__", {}))
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    ns = {k: v for k, v in cls.__dict__.items() if k not in names and k not in ("__dict__", "__weakref__")}
    ns["__slots__"] = names
    new = type(cls.__name__, cls.__bases__, ns)
    new.__qualname__ = cls.__qualname__

    def __init__(self, *args, **kw):
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} positional arguments")
        for n, v in zip(names, args):
            object.__setattr__(self, n, v)
        for n in names[len(args):]:
            v = kw.pop(n, _MISSING)
            if v is _MISSING:
                v = defaults.get(n, _MISSING)
                if v is _MISSING:
                    raise TypeError(f"{cls.__name__}() missing argument {n!r}")
                if isinstance(v, factory):
                    v = v.make()
            object.__setattr__(self, n, v)
        if kw:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kw)}")

    def __setattr__(self, name, value):
        raise AttributeError(f"{cls.__name__} is frozen: cannot set {name}")

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    def __hash__(self):
        return hash(tuple(_hashable(getattr(self, n)) for n in names))

    def __repr__(self):
        return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

    new.__init__, new.__setattr__, new.__delattr__ = __init__, __setattr__, __setattr__
    new.__eq__, new.__hash__, new.__repr__ = __eq__, __hash__, __repr__
    new._fields = names
    return new


def _hashable(v):
    return tuple(sorted(v.items())) if isinstance(v, dict) else v


def replace(obj, **changes):
    """A copy of the record with some fields changed (dataclasses.replace)."""
    values = {n: getattr(obj, n) for n in obj._fields}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no fields {sorted(unknown)}")
    values.update(changes)
    return type(obj)(**values)
