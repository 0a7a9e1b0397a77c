#!/bin/sh
# mkbundle.sh DIR: build a busybox bundle (DIR/rootfs + DIR/config.json) from Debian's busybox-static.
# config.json is `ociruntime spec` with a demo command and no terminal, so it runs anywhere.
set -eu
dir=$1
bb=/bin/busybox
[ -x "$bb" ] || { echo "mkbundle: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/rootfs"
r="$dir.tmp/rootfs"
mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/root" "$r/var" "$r/run"
cp "$bb" "$r/bin/busybox"
for app in $("$bb" --list); do
  [ "$app" = busybox ] || ln -s busybox "$r/bin/$app"
done
chmod 1777 "$r/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$r/etc/group"
echo 'nameserver 127.0.0.1' > "$r/etc/resolv.conf"
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/.venv/bin/ociruntime" spec --bundle "$dir.tmp"
"$here/.venv/bin/python" - "$dir.tmp/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c",
    "echo \"hello from ociruntime: hostname=$(hostname)\"; id; echo 'processes (PID 1 is this shell):'; ps; exit 0"]
json.dump(c, open(p, "w"), indent="\t")
PY
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "bundle ready: $dir"
