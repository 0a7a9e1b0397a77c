"""make bench: the container lifecycle the way containerd's shim drives it — create --pid-file, start, wait for
the container's process to exit, delete — N rounds of busybox /bin/true, for ociruntime and (side by side, in the
same run, interleaved) for runc when installed. Prints the median per round and the ratio ociruntime/runc.

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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def make_bundle(src: str, dst: str):
    os.makedirs(dst)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = os.path.realpath(os.path.join(src, "rootfs"))   # runc refuses a symlinked rootfs
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"]["terminal"] = False
    cfg["linux"]["cgroupsPath"] = "ociruntime-bench"
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f)


def one_round(binary: str, root: str, bundle: str, cid: str) -> float:
    pidfile = os.path.join(bundle, f"{cid}.pid")
    base = [binary, "--root", root, "--log", os.path.join(bundle, "log.json"), "--log-format", "json"]
    t0 = time.perf_counter()
    subprocess.run(base + ["create", "--bundle", bundle, "--pid-file", pidfile, cid], check=True,
                   stdin=subprocess.DEVNULL)
    with open(pidfile) as f:
        pid = int(f.read())
    subprocess.run(base + ["start", cid], check=True)
    os.waitpid(pid, 0)        # we are the subreaper, as the shim is
    subprocess.run(base + ["delete", cid], check=True)
    dt = time.perf_counter() - t0
    os.unlink(pidfile)
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--bundle", default=os.path.join(REPO, "build", "bundle"))
    ap.add_argument("--ociruntime", default=os.path.join(REPO, ".venv", "bin", "ociruntime"))
    ap.add_argument("--runc", default=shutil.which("runc"))
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds between runs, so one run's asynchronous teardown (network namespace cleanup, RCU "
                         "callbacks) does not land on the next one's clock")
    a = ap.parse_args()
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    runtimes = {"ociruntime": a.ociruntime}
    if a.runc:
        runtimes["runc"] = a.runc
    else:
        print("runc not installed (apt-get install runc): measuring ociruntime alone")
    times = {n: [] for n in runtimes}
    with tempfile.TemporaryDirectory(prefix="ocibench") as tmp:
        bundle = os.path.join(tmp, "bundle")
        make_bundle(os.path.abspath(a.bundle), bundle)
        order = list(runtimes.items())
        for i in range(a.rounds + 1):
            for name, binary in (order if i % 2 else order[::-1]):   # alternate who goes first
                time.sleep(a.settle)
                dt = one_round(binary, os.path.join(tmp, "root-" + name), bundle, f"bench-{name}-{i}")
                if i:                   # round 0 warms caches for both
                    times[name].append(dt)
    med = {n: statistics.median(t) for n, t in times.items()}
    for n, m in med.items():
        print(f"{n:<11} median {m * 1000:7.1f} ms per create+start+wait+delete ({a.rounds} rounds)")
    if "runc" in med:
        paired = statistics.median(o / r for o, r in zip(times["ociruntime"], times["runc"]))
        print(f"median of the per-round ratios: {paired:.2f}x")
        print(f"ratio ociruntime/runc: {med['ociruntime'] / med['runc']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
