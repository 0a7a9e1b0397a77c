"""Fuzzing the config reader (issue 10): whatever bytes config.json holds, reading and validating it (what `create`
and `validate` do before anything else) ends in a RuntimeErr with one line of text, never another exception.

Inputs: random bytes, truncations and byte mutations of a valid config, deep nesting, huge strings and numbers,
invalid UTF-8, and structural mutations (a value of any JSON type anywhere). In-process here (thousands of
examples in seconds); spec-tests/test_hostile_input.py runs a sample through the real CLI.
"""
import json
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ociruntime.config import model  # noqa: E402
from ociruntime.errors import RuntimeErr  # noqa: E402

try:
    from test_validate import typical_config
except ImportError:     # tests/ made a package
    from tests.test_validate import typical_config

VALID = json.dumps(typical_config(), indent=1).encode()
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
COUNT = {"n": 0}


def read_config(tmp: str, data: bytes):
    """What create and validate do with config.json: read, parse, validate, build the typed config. Returns the
    error text (None when the document is a valid config)."""
    COUNT["n"] += 1
    with open(os.path.join(tmp, "config.json"), "wb") as f:
        f.write(data)
    try:
        model.load(tmp)
    except RuntimeErr as e:
        return str(e)
    return None


def assert_one_line(tmp, data):
    err = read_config(tmp, data)
    if err is not None:
        assert err and "\n" not in err and "Traceback" not in err, repr(err)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("fuzz"))
    os.mkdir(os.path.join(d, "rootfs"))
    return d


def test_the_valid_config_reads(tmp):
    assert read_config(tmp, VALID) is None


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_give_one_line(tmp, data):
    assert_one_line(tmp, data)


@FUZZ
@given(st.integers(0, len(VALID)))
def test_truncations_give_one_line(tmp, n):
    assert_one_line(tmp, VALID[:n])


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_byte_mutations_give_one_line(tmp, edits):
    data = bytearray(VALID)
    for i, b in edits:
        data[i] = b
    assert_one_line(tmp, bytes(data))


_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=20) | st.sampled_from(["", "/", "..", "a\nb", "\x00", "x" * 5000, 2**64, -1, 1e300]))
_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                       max_leaves=6)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(typical_config()) if p]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), _values), min_size=1, max_size=3))
def test_structural_mutations_give_one_line(tmp, edits):
    doc = typical_config()
    for path, value in edits:
        node = doc
        try:
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    assert_one_line(tmp, json.dumps(doc).encode())


@pytest.mark.parametrize("data", [
    b"[" * 100000, b"{\"a\":" * 50000, b"[" * 600 + b"]" * 600, b'{"ociVersion": "' + b"x" * 10_000_000 + b'"}',
    b'{"ociVersion": ' + b"9" * 100000 + b"}", b'{"a": 1e999}', b'{"a": NaN}', b'{"a": -Infinity}',
    b'\xff\xfe{}', b'{"ociVersion": "\xc3\x28"}', b'\xef\xbb\xbf{', b"{", b'{"a"', b'{"a": 1', b'"abc', b"[1,]",
    b'{"a": 1,}', b"", b"\x00",
], ids=lambda d: repr(d[:12]))
def test_hostile_documents_give_one_line_naming_line_and_column(tmp, data):
    err = read_config(tmp, data)
    assert err and "\n" not in err
    if not data.startswith((b'{"ociVersion": "x', b"[" * 600)):
        assert "line " in err and " column " in err, err


def test_fuzz_ran_enough_examples():
    """The issue's floor: at least 2,000 documents read in this module (the parametrised ones included)."""
    if EXAMPLES >= 600:
        assert COUNT["n"] >= 2000, COUNT["n"]
