"""linux/dmz.py: the sealed in-memory program through which the container's program is exec'd."""
import os
import shutil
import subprocess

import pytest

from ociruntime.linux import arch, dmz

native = pytest.mark.skipif(not dmz.supported(), reason=f"no sealed exec program for {arch.MACHINE} (linux/arch/)")
FILE_NAMES = {"x86_64": "x86-64", "aarch64": "ARM aarch64"}      # what `file` calls each table's machine


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


@pytest.mark.parametrize("machine", sorted(FILE_NAMES))
def test_the_image_is_a_static_executable_for_its_architecture(tmp_path, machine):
    if not shutil.which("file"):
        pytest.skip("file(1) is not installed")
    path = tmp_path / "dmz"
    path.write_bytes(dmz.image(5, table=arch.table(machine)))
    info = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True).stdout
    assert "ELF 64-bit" in info and FILE_NAMES[machine] in info and "statically linked" in info


@pytest.mark.parametrize("machine", sorted(FILE_NAMES))
def test_the_report_fd_is_patched_into_every_slot_and_the_entry_skips_the_chmod_under_seccomp(machine):
    t = arch.table(machine)
    for at in t.DMZ_ERRFD_AT:
        assert t.DMZ_CODE[at:at + 4] == (0x7EADBEEF).to_bytes(4, "little")     # the listing's placeholder
    img, img_nochmod = dmz.image(0x1234, table=t), dmz.image(0x1234, chmod=False, table=t)
    code = img[64 + 2 * 56:]
    assert [code[at:at + 4] for at in t.DMZ_ERRFD_AT] == [(0x1234).to_bytes(4, "little")] * len(t.DMZ_ERRFD_AT)
    entry, entry_nochmod = (int.from_bytes(i[24:32], "little") for i in (img, img_nochmod))
    assert entry_nochmod - entry == t.DMZ_SKIP_CHMOD > 0
    assert img[18:20] == t.DMZ_ELF_MACHINE.to_bytes(2, "little") and img[64 + 2 * 56:] == img_nochmod[64 + 2 * 56:]


def test_an_architecture_without_the_program_fails_closed_naming_it(monkeypatch):
    monkeypatch.setattr(arch, "NATIVE", None)
    monkeypatch.setattr(arch, "MACHINE", "riscv64")
    assert not dmz.supported()
    with pytest.raises(arch.Unsupported, match="no machine code for riscv64"):
        dmz.prepare(5)


@native
def test_program_runs_with_its_argv_and_env_and_no_report_fd(tmp_path):
    rc, out, report = _exec_through_dmz(tmp_path, "/bin/sh", ["sh", "-c", 'echo "$0|$X"; ls /proc/self/fd'],
                                        {"X": "y", "PATH": "/bin"})
    lines = out.split()
    assert rc == 0 and report == b""
    assert lines[0] == "sh|y"
    assert "77" not in lines[1:] and "0" in lines[1:]  # the report fd is close-on-exec once the program runs


@native
def test_without_the_chmod_the_program_still_execs_without_its_report_fd(tmp_path):
    rc, out, report = _exec_through_dmz(tmp_path, "/bin/sh", ["sh", "-c", "ls /proc/self/fd"], chmod=False)
    assert rc == 0 and report == b"" and "77" not in out.split() and "0" in out.split()


@native
def test_proc_self_exe_during_the_programs_exec_is_no_host_file(tmp_path):
    # a script whose interpreter is /proc/self/exe: that is the sealed program, made non-executable by itself
    evil = tmp_path / "evil"
    evil.write_text("#!/proc/self/exe\n")
    evil.chmod(0o755)
    rc, _, report = _exec_through_dmz(tmp_path, str(evil), ["evil"])
    assert rc == 127
    assert dmz.failure_message(report) == f"exec {evil}: permission denied"


@native
def test_a_failed_exec_is_reported_with_errno_and_path(tmp_path):
    notexe = tmp_path / "text"
    notexe.write_text("just text\n")
    notexe.chmod(0o755)
    rc, _, report = _exec_through_dmz(tmp_path, str(notexe), ["text"])
    assert rc == 127
    assert dmz.failure_message(report) == f"exec {notexe}: exec format error"
    rc, _, report = _exec_through_dmz(tmp_path, "/nonexistent", ["x"])
    assert dmz.failure_message(report) == "exec /nonexistent: no such file or directory"


@native
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
