"""fastjson must agree with the json module on what it parses and produces."""
import json
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from ociruntime import fastjson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=20)


@given(values)
def test_dumps_round_trips_through_the_json_module(v):
    assert json.loads(fastjson.dumps(v)) == v
    assert json.loads(fastjson.dumps(v, indent=2)) == v


@given(values)
def test_loads_reads_what_the_json_module_writes(v):
    assert fastjson.loads(json.dumps(v)) == v
    assert fastjson.loads(json.dumps(v, indent=1).encode()) == v


@pytest.mark.parametrize("bad", ["", "{", "[1,]", "{} x", "nul", "NaN", "[Infinity]", "-Infinity", "1e400",
                                 "[" * 10000, '"\\ud800', '{"a" 1}'])
def test_loads_rejects_invalid_documents(bad):
    with pytest.raises(ValueError):
        fastjson.loads(bad)


def test_indent_output_matches_the_json_module():
    doc = {"a": [1, {"b": None}], "c": "x\u00e9\"", "d": {}, "e": []}
    assert fastjson.dumps(doc, indent=2) == json.dumps(doc, indent=2)


def test_importing_it_does_not_import_json_or_re():
    code = "import ociruntime.fastjson as f, sys; f.loads('{\"a\": [1]}'); print('json' in sys.modules, 're' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": sys.path[0] if False else __import__("os").path.dirname(
                             __import__("os").path.dirname(__import__("os").path.abspath(__file__)))})
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize("doc, line, column", [("{", 1, 2), ('{\n  "a": [1,\n  ]}', 3, 3), ('{"a": NaN}', 1, 7),
                                                ("[" * 1000, 1, 513), (b'\n\n "\xff"', 3, 3)])
def test_errors_name_line_and_column(doc, line, column):
    with pytest.raises(fastjson.JSONError) as e:
        fastjson.loads(doc)
    assert (e.value.line, e.value.column) == (line, column), str(e.value)
    assert "\n" not in str(e.value)
