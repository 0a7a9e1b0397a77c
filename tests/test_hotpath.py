"""bench/mkhotpath.py: the launcher's one-file import of the hot-path modules gives the same modules as a normal
import, and never stale code: a module edited since the file was made is imported from its source."""
import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("mkhotpath", os.path.join(REPO, "bench", "mkhotpath.py"))
mkhotpath = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mkhotpath)

# what the launcher does (bench/mklauncher.sh), then import the package and report what came from where
PROBE = """
import sys
sys.path[:0] = [{checkout!r}]
import marshal, posix
FD = posix.open({hot!r}, posix.O_RDONLY | posix.O_CLOEXEC)
exec(marshal.loads(posix.pread(FD, 65536, 8)), {{"__name__": "ociruntime_hotpath", "FD": FD}})
import pkg.mod
print(pkg.mod.VALUE, type(pkg.mod.__spec__.loader).__name__ if not isinstance(pkg.mod.__spec__.loader, type)
      else pkg.mod.__spec__.loader.__name__, pkg.mod.__file__, pkg.__path__[0], pkg.mod.__package__)
"""


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 1\n")
    hot = tmp_path / "hot.bin"
    hot.write_bytes(mkhotpath.build(str(tmp_path), names=["pkg", "pkg.mod"]))
    return tmp_path, hot


def _probe(checkout, hot) -> list:
    return subprocess.run([sys.executable, "-IS", "-c", PROBE.format(checkout=str(checkout), hot=str(hot))],
                          check=True, capture_output=True, text=True).stdout.split()


def test_a_module_from_the_file_is_the_module_a_normal_import_gives(tree):
    checkout, hot = tree
    value, loader, file, path, package = _probe(checkout, hot)
    assert (value, loader) == ("1", "HotPath")
    assert file == str(checkout / "pkg" / "mod.py")
    assert path == str(checkout / "pkg") and package == "pkg"


@pytest.mark.parametrize("edit", ["VALUE = 2\n", "VALUE = 22\n"], ids=["same size", "other size"])
def test_a_module_edited_since_the_file_was_made_comes_from_its_source(tree, edit):
    checkout, hot = tree
    src = checkout / "pkg" / "mod.py"
    before = src.stat().st_mtime_ns
    src.write_text(edit)
    if src.stat().st_mtime_ns == before:       # a coarse clock: make the edit visible as the kernel would
        os.utime(src, ns=(before + 1_000_000, before + 1_000_000))
    value, loader, *_ = _probe(checkout, hot)
    assert value == edit.split()[-1]
    assert loader != "HotPath"


def test_the_launcher_runs_without_its_hot_path_file(tmp_path):
    """A missing file (or one from another Python) only means normal imports."""
    venv = os.path.join(REPO, ".venv")
    launcher = os.path.join(venv, "bin", "ociruntime")
    if not os.path.exists(launcher):
        pytest.skip("no launcher: run make deps")
    text = open(launcher).read().replace(os.path.join(venv, "ociruntime-hotpath.bin"), str(tmp_path / "missing"))
    assert str(tmp_path / "missing") in text
    alt = tmp_path / "ociruntime"
    alt.write_text(text)
    alt.chmod(0o755)
    out = subprocess.run([str(alt), "--version"], check=True, capture_output=True, text=True).stdout
    assert out.startswith("ociruntime version")


def test_a_file_made_by_another_python_is_not_used(tree, monkeypatch):
    # bytecode is per Python version: the finder refuses a file whose magic number is not the running one's, and
    # the launcher then imports normally (it catches the ValueError)
    checkout, hot = tree
    monkeypatch.setattr(mkhotpath.importlib.util, "MAGIC_NUMBER", b"\x00\x00\r\n")
    hot.write_bytes(mkhotpath.build(str(checkout), names=["pkg", "pkg.mod"]))
    probe = PROBE.replace("exec(marshal", "try:\n    exec(marshal").replace(
        '"FD": FD}})\n', '"FD": FD}})\nexcept ValueError as e:\n    print("refused", end=" ")\n')
    out = subprocess.run([sys.executable, "-IS", "-c", probe.format(checkout=str(checkout), hot=str(hot))],
                         check=True, capture_output=True, text=True).stdout.split()
    assert out[0] == "refused" and out[1] == "1" and out[2] != "HotPath"


CLOSE_PROBE = PROBE.split("import pkg.mod")[0] + """
sys.path.append({repo!r})
from ociruntime import init
init._note_hot_path_file()
init._close_hot_path_file()
try:
    posix.fstat(FD)
    print("open")
except OSError:
    print("closed")
import pkg.mod
print(any(getattr(f, "__name__", "") == "HotPath" for f in sys.meta_path),
      getattr(pkg.mod.__spec__.loader, "__name__", type(pkg.mod.__spec__.loader).__name__))
"""


def test_init_and_exec_close_the_file_before_the_containers_code_can_see_them(tree):
    """init.py step 24 (exec: before the user switch): forked, not exec'd, they would hold the fd until execve."""
    checkout, hot = tree
    out = subprocess.run([sys.executable, "-IS", "-c", CLOSE_PROBE.format(checkout=str(checkout), hot=str(hot),
                                                                         repo=REPO)],
                         check=True, capture_output=True, text=True).stdout.split()
    assert out == ["closed", "False", "SourceFileLoader"]


@pytest.mark.parametrize("content", ["other-python", "truncated"])
def test_the_launcher_keeps_no_fd_on_a_hot_path_file_it_refuses(tmp_path, monkeypatch, content):
    # a refused file (another Python's, a damaged one) means normal imports and no fd on it: a forked init would
    # otherwise hold the file (0644, root's) open until the container's execve (init._close_hot_path_file closes
    # only a file whose finder runs)
    venv = os.path.join(REPO, ".venv")
    launcher = os.path.join(venv, "bin", "ociruntime")
    if not os.path.exists(launcher):
        pytest.skip("no launcher: run make deps")
    hot = tmp_path / "hot.bin"
    if content == "other-python":
        monkeypatch.setattr(mkhotpath.importlib.util, "MAGIC_NUMBER", b"\x00\x00\r\n")
        hot.write_bytes(mkhotpath.build(REPO))
    else:
        hot.write_bytes(mkhotpath.build(REPO)[:20])
    text = open(launcher).read().replace(os.path.join(venv, "ociruntime-hotpath.bin"), str(hot))
    assert str(hot) in text and text.endswith("run_and_exit()\n")
    text = text[:-len("run_and_exit()\n")] + (
        "import os\nfor f in os.listdir('/proc/self/fd'):\n    try:\n        print(os.readlink('/proc/self/fd/' + f))\n"
        "    except OSError:\n        pass\n")   # the listing's own fd is gone by then
    alt = tmp_path / "ociruntime"
    alt.write_text(text)
    alt.chmod(0o755)
    out = subprocess.run([str(alt)], check=True, capture_output=True, text=True).stdout
    assert str(hot) not in out.split(), out
