"""Run the opencontainers runtime-tools validation suite against ociruntime and print a pass/fail table.

    python conformance/runtime_tools.py DIR [--runtime PATH] [--timeout S] [-k SUBSTRING] [--verbose] [--report-only]

DIR is a runtime-tools checkout in which `make runtimetest validation-executables` was run: it holds `runtimetest`,
`rootfs-<arch>.tar.gz` and the TAP-printing executables `validation/**/*.t`. Each executable runs with DIR as its
working directory (they find runtimetest and the rootfs tarball there) and RUNTIME=<ociruntime>. Exit status: 0 when
every executable passed or skipped (or with --report-only, or when DIR is unset), 1 otherwise, 2 on bad usage.

The executables create containers with absolute cgroup paths: unless already confined, this script re-runs itself
under spec-tests/confine.sh so they land below this process's own cgroups.
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_RUNTIME = os.path.join(REPO, ".venv", "bin", "ociruntime")
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
TAP_LINE = re.compile(r"^(not ok|ok)\b", re.IGNORECASE)
TAP_DIRECTIVE = re.compile(r"#\s*(SKIP|TODO)\b", re.IGNORECASE)
TAP_PLAN = re.compile(r"^1\.\.(\d+)\b")


@dataclass
class Result:
    """One validation executable's outcome, from its TAP output and exit status."""
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    todo: int = 0
    planned: int = None
    exit_code: int = None
    seconds: float = 0.0
    timed_out: bool = False
    failures: list = field(default_factory=list)
    stderr: str = ""

    @property
    def status(self):
        if self.timed_out:
            return "TIMEOUT"
        if self.failed:
            return "FAIL"
        if self.exit_code not in (0, None):
            return "ERROR"  # it died (util.Fatal exits 1) without reporting a failed assertion
        ran = self.passed + self.skipped + self.todo
        if ran == 0 and self.planned != 0:
            return "ERROR"  # no TAP at all
        if self.planned is not None and ran < self.planned:
            return "FAIL"   # stopped before its plan was complete
        return "SKIP" if self.passed == 0 else "PASS"


def parse_tap(name, text):
    """Count the results in a TAP stream: `ok`, `not ok`, `# SKIP`/`# TODO` directives, the `1..N` plan."""
    r = Result(name)
    for line in text.splitlines():
        line = line.strip()
        plan = TAP_PLAN.match(line)
        if plan:
            r.planned = int(plan.group(1))
            continue
        m = TAP_LINE.match(line)
        if not m:
            continue
        d = TAP_DIRECTIVE.search(line)
        ok, directive = m.group(1).lower() == "ok", d.group(1).upper() if d else ""
        if directive == "SKIP":
            r.skipped += 1
        elif directive == "TODO":
            r.todo += 1
        elif ok:
            r.passed += 1
        else:
            r.failed += 1
            r.failures.append(line)
    return r


def find_executables(suite_dir, keyword=None):
    """validation/**/*.t executables under suite_dir, sorted, filtered by substring `keyword`."""
    found = []
    for d, _, files in os.walk(os.path.join(suite_dir, "validation")):
        for f in files:
            path = os.path.join(d, f)
            if f.endswith(".t") and os.access(path, os.X_OK) and (not keyword or keyword in f):
                found.append(path)
    return sorted(found)


def run_one(path, suite_dir, runtime, timeout):
    name = os.path.relpath(path, os.path.join(suite_dir, "validation"))
    env = {**os.environ, "RUNTIME": runtime}
    start = time.monotonic()
    try:
        p = subprocess.run([path], cwd=suite_dir, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as e:
        r = parse_tap(name, e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))
        r.timed_out, r.seconds = True, time.monotonic() - start
        return r
    r = parse_tap(name, p.stdout)
    r.exit_code, r.stderr, r.seconds = p.returncode, p.stderr, time.monotonic() - start
    return r


def table(results):
    """The pass/fail table, one row per executable, then the totals."""
    width = max([len(r.name) for r in results] + [10])
    rows = [f"{'validation':<{width}}  {'status':<7} {'pass':>5} {'fail':>5} {'skip':>5} {'secs':>6}",
            "-" * (width + 34)]
    for r in results:
        rows.append(f"{r.name:<{width}}  {r.status:<7} {r.passed:>5} {r.failed:>5} {r.skipped + r.todo:>5} "
                    f"{r.seconds:>6.1f}")
    counts = {s: sum(1 for r in results if r.status == s) for s in ("PASS", "SKIP", "FAIL", "ERROR", "TIMEOUT")}
    rows.append("-" * (width + 34))
    rows.append(f"executables: {len(results)}  " + "  ".join(f"{k.lower()}: {v}" for k, v in counts.items()))
    rows.append(f"assertions: {sum(r.passed for r in results)} passed, {sum(r.failed for r in results)} failed, "
                f"{sum(r.skipped + r.todo for r in results)} skipped")
    return "\n".join(rows)


def details(results):
    out = []
    for r in results:
        if r.status in ("FAIL", "ERROR", "TIMEOUT"):
            out.append(f"== {r.name}: {r.status} (exit {r.exit_code})")
            out.extend("   " + f for f in r.failures[:20])
            out.extend("   stderr: " + ln for ln in r.stderr.strip().splitlines()[-10:])
    return "\n".join(out)


def check_suite_dir(suite_dir):
    """Problems that make the suite unrunnable, as messages (empty when it looks complete)."""
    problems = []
    if not os.path.isdir(suite_dir):
        return [f"{suite_dir}: not a directory"]
    if not os.access(os.path.join(suite_dir, "runtimetest"), os.X_OK):
        problems.append(f"{suite_dir}/runtimetest missing: run `make runtimetest` there")
    arch = GOARCH.get(platform.machine(), platform.machine())
    if not os.path.exists(os.path.join(suite_dir, f"rootfs-{arch}.tar.gz")):
        problems.append(f"{suite_dir}/rootfs-{arch}.tar.gz missing (it ships with runtime-tools)")
    if not find_executables(suite_dir):
        problems.append(f"no validation/**/*.t executables in {suite_dir}: run `make validation-executables` there")
    return problems


def reexec_confined(argv):
    if REPO not in sys.path:
        sys.path.insert(0, REPO)  # run as a script: make the conformance package importable
    from conformance.sandbox import confined
    if confined():
        return
    confine = os.path.join(REPO, "spec-tests", "confine.sh")
    os.execvp("sh", ["sh", confine, sys.executable, os.path.abspath(__file__), *argv])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default=os.environ.get("RUNTIME_TOOLS", ""),
                    help="runtime-tools checkout with built validation executables (default: $RUNTIME_TOOLS)")
    ap.add_argument("--runtime", default=os.environ.get("OCIRUNTIME_BIN", DEFAULT_RUNTIME))
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per executable")
    ap.add_argument("-k", dest="keyword", help="run only executables whose name contains this")
    ap.add_argument("--verbose", "-v", action="store_true", help="print failing assertions and stderr")
    ap.add_argument("--report-only", action="store_true", help="exit 0 even when some validation failed")
    args = ap.parse_args(argv)
    if not args.dir:
        print("runtime-tools: no suite directory given (RUNTIME_TOOLS is unset): nothing to run")
        return 0
    suite = os.path.abspath(args.dir)
    problems = check_suite_dir(suite)
    if problems:
        print("runtime-tools: cannot run:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if not os.access(args.runtime, os.X_OK):
        print(f"runtime-tools: runtime {args.runtime} is not executable", file=sys.stderr)
        return 2
    reexec_confined(argv)
    results = []
    for path in find_executables(suite, args.keyword):
        results.append(run_one(path, suite, os.path.abspath(args.runtime), args.timeout))
        r = results[-1]
        print(f"{r.status:<7} {r.name} ({r.passed} passed, {r.failed} failed, {r.skipped + r.todo} skipped)",
              flush=True)
    print()
    print(table(results))
    if args.verbose:
        print(details(results))
    bad = [r for r in results if r.status in ("FAIL", "ERROR", "TIMEOUT")]
    return 0 if args.report_only or not bad else 1


if __name__ == "__main__":
    sys.exit(main())
