#!/bin/sh
# mklauncher.sh VENV: write VENV/bin/ociruntime, the executable every CLI call starts (make launcher runs this).
# It is the venv's interpreter in isolated mode without `site` (-IS), the checkout and the venv's site directories
# put on sys.path by hand: pip's generated script imports `re` and runs `site`, ~6 ms per call that
# create/start/state/kill/delete would all pay. A venv made with --system-site-packages (the arm64 VM's: the
# dependencies are Debian packages there) gets the system's site directories too. Bytecode is compiled once here.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
venv=$(cd "$1" && pwd)
path=$("$venv/bin/python" -c 'import os, site, sys
print(", ".join(repr(p) for p in [sys.argv[1]] + [d for d in site.getsitepackages() if os.path.isdir(d)]))' "$here")
# The hot-path modules come from one file made here (bench/mkhotpath.py says why): opened close-on-exec, read on
# demand; missing, unreadable or from another Python, the launcher closes it and imports as before (a forked init
# would otherwise hold it open until the container's execve).
hot="$venv/ociruntime-hotpath.bin"
printf '#!%s -IS\nimport sys\nsys.path[:0] = [%s]\nFD = -1\ntry:\n    import marshal, posix\n    FD = posix.open(%s, posix.O_RDONLY | posix.O_CLOEXEC)\n    exec(marshal.loads(posix.pread(FD, 65536, 8)), {"__name__": "ociruntime_hotpath", "FD": FD})\nexcept (OSError, ValueError, EOFError, TypeError):\n    if FD >= 0:\n        posix.close(FD)\nfrom ociruntime.__main__ import run_and_exit\nrun_and_exit()\n' \
  "$venv/bin/python3" "$path" "'$hot'" > "$venv/bin/ociruntime.tmp"
chmod 755 "$venv/bin/ociruntime.tmp" && mv "$venv/bin/ociruntime.tmp" "$venv/bin/ociruntime"
"$venv/bin/python" -m compileall -q "$here/ociruntime" >/dev/null
"$venv/bin/python" "$here/bench/mkhotpath.py" "$here" "$hot"
