"""JSON without importing the json package: `import json` pulls in `re` (~3 ms here), and every CLI call of the
hot path (create/start/state/kill/delete) pays its imports. The C helpers in `_json` do the real work."""
try:
    import _json
except ImportError:  # pragma: no cover — a Python without the accelerator
    _json = None


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_WS = " \t\n\r"


def loads(text):
    """Parse a JSON document (str or bytes). Raises ValueError with the position on bad input."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
    if _json is None:
        import json
        return json.loads(text)
    ctx = _Ctx()
    ctx.memo = {}
    scan = _json.make_scanner(ctx)
    start = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = scan(text, start)
    except StopIteration as e:
        raise ValueError(f"Expecting value: char {e.value}") from None
    if text[end:].strip(_WS):
        raise ValueError(f"Extra data: char {end}")
    return obj


def dumps(obj, indent=None) -> str:
    """Serialise dict/list/str/int/float/bool/None; `indent` an int for pretty output (runc's `state` style)."""
    out = []
    _enc(obj, out, indent, 0)
    return "".join(out)


def _enc(o, out, indent, level):
    if isinstance(o, str):
        out.append(_json.encode_basestring_ascii(o) if _json else __import__("json").dumps(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        if o != o or o in (float("inf"), float("-inf")):
            out.append("NaN" if o != o else "Infinity" if o > 0 else "-Infinity")   # as the json module writes them
        else:
            out.append(float.__repr__(o))
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        nl = "\n" + " " * (indent * (level + 1)) if indent else ""
        out.append("{")
        first = True
        for k, v in o.items():
            out.append(("" if first else ",") + nl)
            first = False
            out.append(_json.encode_basestring_ascii(str(k)) if _json else __import__("json").dumps(str(k)))
            out.append(": " if indent is not None else ":")
            _enc(v, out, indent, level + 1)
        out.append(("\n" + " " * (indent * level) if indent else "") + "}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        nl = "\n" + " " * (indent * (level + 1)) if indent else ""
        out.append("[")
        for i, v in enumerate(o):
            out.append(("," if i else "") + nl)
            _enc(v, out, indent, level + 1)
        out.append(("\n" + " " * (indent * level) if indent else "") + "]")
    else:
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")
