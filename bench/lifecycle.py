"""make bench: ociruntime side by side with runc, in one run, on busybox /bin/true — the figures a node cares about.

For each of --reps repetitions (who goes first alternates every repetition, and every phase runs both runtimes
back to back, so a burst of load on this shared machine lands on both):

  serial     --serial lifecycles the way containerd's shim drives them: create --pid-file, start, wait for the
             container's process (we are its subreaper, as the shim is), delete. Wall time per lifecycle, and the
             CPU they cost (user and sys of EVERY process: the runtime's, its children, the container's).
  parallel   --parallel N lifecycles run P at a time (default 30 at 10): the wall time of the batch.
  exec       --execs `exec ID /bin/true` on a running container: wall and CPU per exec.
  state      --states `state ID`: CPU per call.

CPU is read from a cgroup made for the run below the bench's own (cpuacct.usage_user/usage_sys on cgroup v1,
cpu.stat on cgroup2): every command is started in it, and the containers' cgroups are made below it too, so all
their processes count, however short-lived. Each runtime has its own such cgroup.

The table prints, per figure, the ratio ociruntime/runc first: the median of the per-repetition ratios with their
min-max, then each runtime's median (min-max) over the repetitions. A repetition's figure is itself a median (wall
times) or a mean over its calls (CPU). This machine is shared and noisy: compare ratios from one run, not
milliseconds across runs; CPU figures are steadier than wall times.

Run it confined (make bench does): every cgroup it creates lands below the caller's own.
"""
import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# (key, label, unit scale, target ratio or None)
FIGURES = (
    ("cpu", "CPU per lifecycle (ms)", 1e3, 1.4),
    ("cpu_user", "  user, tick-sampled (ms)", 1e3, None),
    ("cpu_sys", "  sys, tick-sampled (ms)", 1e3, None),
    ("serial", "serial lifecycle, wall (ms)", 1e3, 1.25),
    ("parallel", "{n} lifecycles {p} at a time, wall (s)", 1, 1.4),
    ("parallel_cpu", "  CPU per lifecycle there (ms)", 1e3, None),
    ("exec", "exec, wall (ms)", 1e3, 1.3),
    ("exec_cpu", "exec, CPU (ms)", 1e3, 1.6),
    ("state_cpu", "state, CPU (ms)", 1e3, None),
)


# -- the CPU meter: a cgroup per runtime -----------------------------------------------------------------------------

def _cgroup_mounts():
    """(mount point, fstype, super options) of every cgroup hierarchy we see."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4], fstype, opts.split(",")))
    return out


class Meter:
    """A cgroup below ours that counts CPU: processes started in `run` (a child of it) count, and so do the
    containers' cgroups, made as siblings of `run` (cgroupsPath = the absolute path `cgpath(slot)`)."""

    def __init__(self, name: str):
        mounts = _cgroup_mounts()
        v1 = [m for m, t, o in mounts if t == "cgroup" and "cpuacct" in o]
        if v1:
            self.mnt, self.v2 = v1[0], False
        else:
            v2 = [m for m, t, o in mounts if t == "cgroup2"]
            if not v2:
                raise SystemExit("bench: no cpuacct or cgroup2 hierarchy mounted: cannot count CPU")
            self.mnt, self.v2 = v2[0], True
        self.rel = f"/ocibench-{os.getpid()}/{name}"       # the hierarchy root is our own cgroup (confine.sh)
        self.dir = self.mnt + self.rel
        os.makedirs(self.dir + "/run")
        # v1: `tasks`, so the move costs no RCU grace period (see enter); v2 has only cgroup.procs for this
        self.procs_fd = os.open(self.dir + ("/run/cgroup.procs" if self.v2 else "/run/tasks"),
                                os.O_WRONLY | os.O_CLOEXEC)

    def cgpath(self, slot) -> str:
        return f"{self.rel}/c-{slot}"

    def enter(self):
        """preexec_fn: the forked child moves itself in before it execs the runtime. On cgroup v1 it writes "0" into
        `tasks`: a single-threaded process moving its own thread is the one migration the kernel makes without the
        global threadgroup rwsem, whose first write-lock of a burst waits for an RCU grace period (7-24 ms here).
        Written to cgroup.procs, that wait landed on whichever command came after a quiet spell, and its end kept
        the next writes cheap: the meter shifted the wait between the runtimes' commands (a runtime that writes no
        cgroup.procs itself paid it in `start`, in a write a real shim never makes)."""
        os.write(self.procs_fd, b"0")

    def read(self) -> tuple[float, float, float]:
        """(total, user, sys) seconds so far. The total is exact (the scheduler's runtime); the user/sys split is
        sampled at timer ticks (4 ms here), so it is only meaningful summed over many calls."""
        if self.v2:
            with open(self.dir + "/cpu.stat") as f:
                kv = dict(line.split() for line in f)
            return int(kv["usage_usec"]) / 1e6, int(kv["user_usec"]) / 1e6, int(kv["system_usec"]) / 1e6
        vals = []
        for name in ("usage", "usage_user", "usage_sys"):
            with open(f"{self.dir}/cpuacct.{name}") as f:
                vals.append(int(f.read()) / 1e9)
        return tuple(vals)

    def close(self):
        os.close(self.procs_fd)
        top = os.path.dirname(self.rel)
        for mnt, _, _ in _cgroup_mounts():       # the runtimes made the parents of c-* in every hierarchy
            for d in (self.rel + "/run", self.rel, top):
                try:
                    os.rmdir(mnt + d)
                except OSError:
                    pass


# -- one runtime ------------------------------------------------------------------------------------------------------

class Runtime:
    def __init__(self, name: str, binary: str, tmp: str, src_bundle: str, extra=()):
        self.name, self.binary = name, binary
        self.meter = Meter(name)
        self.root = os.path.join(tmp, "root-" + name)
        self.tmp = tmp
        self.src_bundle = src_bundle
        self.base = [binary, "--root", self.root, "--log", os.path.join(tmp, name + ".log"), "--log-format", "json",
                     *extra]
        self.bundles = {}
        self.seq = 0

    def bundle(self, slot, args=("/bin/true",)) -> str:
        """One bundle per slot: its own cgroupsPath, so lifecycles running at once never share a cgroup."""
        key = (slot, tuple(args))
        if key not in self.bundles:
            d = os.path.join(self.tmp, f"bundle-{self.name}-{slot}")
            os.makedirs(d)
            with open(os.path.join(self.src_bundle, "config.json")) as f:
                cfg = json.load(f)
            cfg["root"]["path"] = os.path.realpath(os.path.join(self.src_bundle, "rootfs"))  # runc: no symlink
            cfg["process"]["args"] = list(args)
            cfg["process"]["terminal"] = False
            cfg["linux"]["cgroupsPath"] = self.meter.cgpath(slot)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f)
            self.bundles[key] = d
        return self.bundles[key]

    def cmd(self, *args, check=True):
        subprocess.run(self.base + list(args), check=check, stdin=subprocess.DEVNULL, preexec_fn=self.meter.enter)

    def next_id(self) -> str:
        self.seq += 1
        return f"b{self.name[0]}{os.getpid()}-{self.seq}"

    def lifecycle(self, slot) -> float:
        bundle = self.bundle(slot)
        cid = self.next_id()
        pidfile = os.path.join(bundle, f"{cid}.pid")
        t0 = time.perf_counter()
        self.cmd("create", "--bundle", bundle, "--pid-file", pidfile, cid)
        with open(pidfile) as f:
            pid = int(f.read())
        self.cmd("start", cid)
        os.waitpid(pid, 0)        # we are the subreaper, as the shim is
        self.cmd("delete", cid)
        dt = time.perf_counter() - t0
        os.unlink(pidfile)
        return dt


def measure_cpu(rt: Runtime, fn) -> tuple[float, float, float, object]:
    """(total, user, sys) CPU seconds of every process fn started, and fn's result."""
    before = rt.meter.read()
    result = fn()
    after = rt.meter.read()
    return (*(y - x for x, y in zip(before, after)), result)


def phase_serial(rt, n, out):
    total, user, sys_, walls = measure_cpu(rt, lambda: [rt.lifecycle(0) for _ in range(n)])
    out["serial"].append(statistics.median(walls))
    out["cpu_user"].append(user / n)
    out["cpu_sys"].append(sys_ / n)
    out["cpu"].append(total / n)


def phase_parallel(rt, n, p, out):
    todo = list(range(n))
    lock = threading.Lock()
    errors = []

    def worker(slot):
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            try:
                rt.lifecycle(f"p{slot}")
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                return

    def batch():
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(p)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0
    total, _, _, wall = measure_cpu(rt, batch)
    if errors:
        raise errors[0]
    out["parallel"].append(wall)
    out["parallel_cpu"].append(total / n)


def phase_exec(rt, cid, n, out):
    def run():
        walls = []
        for _ in range(n):
            t0 = time.perf_counter()
            rt.cmd("exec", cid, "/bin/true")
            walls.append(time.perf_counter() - t0)
        return walls
    total, _, _, walls = measure_cpu(rt, run)
    out["exec"].append(statistics.median(walls))
    out["exec_cpu"].append(total / n)


def phase_state(rt, cid, n, out):
    def run():
        for _ in range(n):
            subprocess.run(rt.base + ["state", cid], check=True, stdout=subprocess.DEVNULL,
                           preexec_fn=rt.meter.enter)
    total, _, _, _ = measure_cpu(rt, run)
    out["state_cpu"].append(total / n)


def start_sleeper(rt) -> str:
    bundle = rt.bundle("exec", ("sleep", "100000"))
    cid = rt.next_id()
    rt.cmd("create", "--bundle", bundle, cid)
    rt.cmd("start", cid)
    return cid


def fmt_range(vals, scale) -> str:
    med = statistics.median(vals)
    digits = 2 if med * scale < 10 else 1
    return f"{med * scale:.{digits}f} ({min(vals) * scale:.{digits}f}-{max(vals) * scale:.{digits}f})"


def report(res, names, a):
    oci, runc = names[0], names[1] if len(names) > 1 else None
    print(f"\nociruntime{' vs runc' if runc else ''}: {a.reps} repetitions, who goes first alternating; "
          "median (min-max) over the repetitions")
    head = f"{'':<40} {'ratio':<20} {'target':<8} {oci:<22}" + (f" {runc:<22}" if runc else "")
    print(head)
    for key, label, scale, target in FIGURES:
        label = label.format(n=a.parallel, p=a.at_a_time)
        o = res[oci][key]
        if not o:
            continue
        line = f"{label:<40} "
        if runc:
            r = res[runc][key]
            ratios = [x / y for x, y in zip(o, r)]
            med = statistics.median(ratios)
            line += f"{f'{med:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})':<20} "
            line += f"{(f'<={target}' + (' ok' if med <= target else ' NO')) if target else '':<8} "
            line += f"{fmt_range(o, scale):<22} {fmt_range(r, scale)}"
        else:
            line += f"{'':<20} {'':<8} {fmt_range(o, scale)}"
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions (medians over these; default 5)")
    ap.add_argument("--serial", type=int, default=6, help="serial lifecycles per repetition")
    ap.add_argument("--parallel", type=int, default=30, help="lifecycles in the parallel batch")
    ap.add_argument("--at-a-time", type=int, default=10, help="how many of them run at once")
    ap.add_argument("--execs", type=int, default=5, help="execs per repetition")
    ap.add_argument("--states", type=int, default=5, help="state calls per repetition")
    ap.add_argument("--only", default="serial,parallel,exec,state", help="phases to run (comma-separated)")
    ap.add_argument("--bundle", default=os.path.join(REPO, "build", "bundle"))
    ap.add_argument("--ociruntime", default=os.path.join(REPO, ".venv", "bin", "ociruntime"))
    ap.add_argument("--ociruntime-flag", action="append", default=[],
                    help="a global flag for ociruntime only (e.g. --debug, to see what tracing costs)")
    ap.add_argument("--runc", default=shutil.which("runc"))
    a = ap.parse_args()
    phases = set(a.only.split(","))
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    with tempfile.TemporaryDirectory(prefix="ocibench") as tmp:
        src = os.path.abspath(a.bundle)
        rts = [Runtime("ociruntime", a.ociruntime, tmp, src, a.ociruntime_flag)]
        if a.runc:
            rts.append(Runtime("runc", a.runc, tmp, src))
        else:
            print("runc not installed (apt-get install runc): measuring ociruntime alone")
        res = {rt.name: {k[0]: [] for k in FIGURES} for rt in rts}
        sleepers = {}
        try:
            for rt in rts:
                rt.lifecycle(0)                          # warm caches for both
                if phases & {"exec", "state"}:
                    sleepers[rt.name] = start_sleeper(rt)
            for i in range(a.reps):
                order = rts if i % 2 else rts[::-1]
                if "serial" in phases:
                    for rt in order:
                        phase_serial(rt, a.serial, res[rt.name])
                if "parallel" in phases:
                    for rt in order:
                        phase_parallel(rt, a.parallel, a.at_a_time, res[rt.name])
                if "exec" in phases:
                    for rt in order:
                        phase_exec(rt, sleepers[rt.name], a.execs, res[rt.name])
                if "state" in phases:
                    for rt in order:
                        phase_state(rt, sleepers[rt.name], a.states, res[rt.name])
                print(f"repetition {i + 1}/{a.reps} done", file=sys.stderr)
        finally:
            for rt in rts:
                if rt.name in sleepers:
                    rt.cmd("delete", "--force", sleepers[rt.name], check=False)
                rt.meter.close()
        report(res, [rt.name for rt in rts], a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
