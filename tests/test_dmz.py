"""linux/dmz.py: the sealed in-memory program through which the container's program is exec'd."""
import os
import subprocess

import pytest

from ociruntime.linux import dmz

pytestmark = pytest.mark.skipif(not dmz.supported(), reason="the exec program is x86-64 only")


def _exec_through_dmz(tmp_path, path, args, env=None, chmod=True):
    """Fork; the child execs path through the program with stdout to a file. (exit code, stdout, report)."""
    out = tmp_path / "out"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 77, inheritable=False)     # a number nothing else uses: the test looks for it
            os.close(w)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            memfd = dmz.prepare(77, os.getuid(), os.getgid(), chmod=chmod)
            dmz.execve(memfd, 77, path, args, env or {"PATH": "/bin:/usr/bin"})
        finally:
            os._exit(99)
    os.close(w)
    report = b""
    while chunk := os.read(r, 4096):
        report += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.read_text() if out.exists() else "", report


def test_the_image_is_a_static_x86_64_executable(tmp_path):
    path = tmp_path / "dmz"
    path.write_bytes(dmz.image(5))
    info = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True).stdout
    if info:  # `file` may be absent
        assert "ELF 64-bit" in info and "x86-64" in info and "statically linked" in info


def test_program_runs_with_its_argv_and_env_and_no_report_fd(tmp_path):
    rc, out, report = _exec_through_dmz(tmp_path, "/bin/sh", ["sh", "-c", 'echo "$0|$X"; ls /proc/self/fd'],
                                        {"X": "y", "PATH": "/bin"})
    lines = out.split()
    assert rc == 0 and report == b""
    assert lines[0] == "sh|y"
    assert "77" not in lines[1:] and "0" in lines[1:]  # the report fd is close-on-exec once the program runs


def test_proc_self_exe_during_the_programs_exec_is_no_host_file(tmp_path):
    # a script whose interpreter is /proc/self/exe: that is the sealed program, made non-executable by itself
    evil = tmp_path / "evil"
    evil.write_text("#!/proc/self/exe\n")
    evil.chmod(0o755)
    rc, _, report = _exec_through_dmz(tmp_path, str(evil), ["evil"])
    assert rc == 127
    assert dmz.failure_message(report) == f"exec {evil}: permission denied"


def test_a_failed_exec_is_reported_with_errno_and_path(tmp_path):
    notexe = tmp_path / "text"
    notexe.write_text("just text\n")
    notexe.chmod(0o755)
    rc, _, report = _exec_through_dmz(tmp_path, str(notexe), ["text"])
    assert rc == 127
    assert dmz.failure_message(report) == f"exec {notexe}: exec format error"
    rc, _, report = _exec_through_dmz(tmp_path, "/nonexistent", ["x"])
    assert dmz.failure_message(report) == "exec /nonexistent: no such file or directory"


def test_the_sealed_copy_cannot_be_written():
    r, w = os.pipe()
    try:
        fd = dmz.prepare(w)
        with pytest.raises(PermissionError):
            os.write(fd, b"x")
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
        os.close(fd)
    finally:
        os.close(r)
        os.close(w)


def test_other_data_is_not_a_report():
    assert dmz.failure_message(b"exec foo: bar") is None
    assert dmz.failure_message(b"") is None
