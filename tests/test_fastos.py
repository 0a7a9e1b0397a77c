"""fastos: the hot path's `os` without `import os` must behave like os/os.path where it stands in for them."""
import os
import posixpath

from hypothesis import given, strategies as st

from ociruntime import fastos

SEGMENTS = st.lists(st.sampled_from(["", ".", "..", "a", "b", "/", "//", "c.d"]), max_size=8)


@given(SEGMENTS)
def test_normpath_matches_posixpath(parts):
    p = "/".join(parts)
    assert fastos.path.normpath(p) == posixpath.normpath(p)


@given(st.lists(st.sampled_from(["", "a", "/b", "c/", "/", "d/e"]), min_size=1, max_size=5))
def test_join_matches_posixpath(parts):
    assert fastos.path.join(*parts) == posixpath.join(*parts)


@given(st.sampled_from(["", "/", "a", "/a", "/a/", "a/b", "/a/b/", "//a", "a//b"]))
def test_dirname_basename_and_abspath_match_posixpath(p):
    assert fastos.path.dirname(p) == posixpath.dirname(p)
    assert fastos.path.basename(p) == posixpath.basename(p)
    if p:
        assert fastos.path.abspath(p) == posixpath.abspath(p)


def test_predicates_and_makedirs(tmp_path):
    d = tmp_path / "x" / "y" / "z"
    fastos.makedirs(str(d), 0o700)
    assert fastos.path.isdir(str(d)) and not fastos.path.isfile(str(d)) and fastos.path.exists(str(d))
    fastos.makedirs(str(d), exist_ok=True)
    (d / "f").write_text("")
    assert fastos.path.isfile(str(d / "f")) and not fastos.path.exists(str(d / "nope"))
    assert oct(os.stat(d).st_mode & 0o777) == "0o700"


def test_getenv_and_fallbacks(monkeypatch):
    monkeypatch.setenv("FASTOS_TEST", "v")
    assert fastos.getenv("FASTOS_TEST") == "v" and fastos.getenv("FASTOS_NOPE", "d") == "d"
    assert fastos.walk is os.walk and fastos.path.relpath is posixpath.relpath
    assert fastos.open is os.open and fastos.fork is os.fork
