"""JSON without importing the json package: `import json` pulls in `re` (~3 ms here), and every CLI call of the
hot path (create/start/state/kill/delete) pays its imports. The C helpers in `_json` do the real work."""
try:
    import _json
except ImportError:  # pragma: no cover — a Python without the accelerator
    _json = None


MAX_DEPTH = 512     # nesting deeper than this is refused (runc: "exceeded max depth"); _json recurses in C


class JSONError(ValueError):
    """Bad JSON: one line with the 1-based line and column of the problem."""

    def __init__(self, msg: str, line: int, column: int):
        self.msg, self.line, self.column = msg, line, column
        super().__init__(f"line {line} column {column}: {msg}")


class _Constant(Exception):
    """NaN, Infinity, -Infinity: the json module's extensions, not JSON (RFC 8259); runc refuses them. Also a
    number out of a float's range (1e999: Go's decoder refuses it, Python would read inf)."""

    def __init__(self, token: str, msg: str):
        super().__init__(token)
        self.msg = msg


def _float(s: str) -> float:
    v = float(s)
    if v - v != 0.0:             # inf (the literal has no NaN form)
        raise _Constant(s, f"number {s[:40]} is out of range")
    return v


def _constant(name: str):
    raise _Constant(name, f"{name} is not valid JSON")


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = staticmethod(_float)     # called for floats only: a config has few
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo = None


_WS = " \t\n\r"


def loads(text):
    """Parse a JSON document (str or bytes). Raises JSONError (a ValueError) naming line and column on bad input:
    syntax, invalid UTF-8, NaN/Infinity, nesting deeper than MAX_DEPTH, integers too long to convert."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
        except UnicodeDecodeError as e:
            raw = bytes(text)
            line = raw.count(b"\n", 0, e.start) + 1
            raise JSONError(f"invalid UTF-8 (byte 0x{raw[e.start]:02x})", line,
                            e.start - raw.rfind(b"\n", 0, e.start)) from None
    if _json is None:  # pragma: no cover
        import json
        return json.loads(text)
    start = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, start)
    except Exception as e:  # noqa: BLE001 — the fast path only; _error() finds what and where
        raise _error(text, start, e) from None
    if text[end:].strip(_WS):
        raise _at(text, end, "Extra data")
    return obj


def _scan(text, start):
    ctx = _Ctx()
    ctx.memo = {}
    return _json.make_scanner(ctx)(text, start)


def _at(text: str, pos: int, msg: str) -> JSONError:
    return JSONError(msg, text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos))


def _error(text: str, start: int, e: BaseException) -> JSONError:
    """The error path (never taken by a good document): name the problem and its position."""
    if isinstance(e, StopIteration):
        return _at(text, e.value, "Expecting value")
    if isinstance(e, _Constant):
        tok = str(e)
        return _at(text, _outside_strings(text, lambda c, i, d: c == tok[0] and text.startswith(tok, i)), e.msg)
    if isinstance(e, RecursionError):
        return _at(text, _outside_strings(text, lambda c, i, d: d > MAX_DEPTH), f"exceeded max depth {MAX_DEPTH}")
    if isinstance(e, ValueError) and "integer string" in str(e):
        return _at(text, _outside_strings(text, lambda c, i, d: c.isdigit() and _digits(text, i) > 4000),
                   "number too long")
    # _json's own decode errors need json.decoder loaded (without it: SystemError): load it and scan again
    import json.decoder
    try:
        _scan(text, start)
    except json.decoder.JSONDecodeError as je:
        return JSONError(je.msg, je.lineno, je.colno)
    except StopIteration as si:
        return _at(text, si.value, "Expecting value")
    except Exception as other:  # noqa: BLE001
        return _at(text, start, f"{type(other).__name__}: {other}")
    return _at(text, start, f"{type(e).__name__}: {e}")


def _digits(text: str, i: int) -> int:
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    return j - i


def _outside_strings(text: str, hit) -> int:
    """The index of the first character outside a string for which hit(char, index, depth) is true."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        else:
            if c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
            if hit(c, i, depth):
                return i
        i += 1
    return 0


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
