#!/bin/sh
# confine.sh CMD [ARG...]: run CMD inside a fresh cgroup namespace and mount namespace in which every
# cgroup hierarchy is mounted again, so the roots CMD sees are this process's own cgroups. Whatever
# cgroups CMD creates, absolute cgroupsPath included, end up below the caller's cgroups.
set -eu
if [ "${OCIRUNTIME_CONFINED:-}" = 1 ]; then exec "$@"; fi
export OCIRUNTIME_CONFINED=1
exec unshare --cgroup --mount --propagation private /bin/sh -eu -c '
fs=/sys/fs/cgroup
if [ "$(stat -f -c %T $fs)" = cgroup2fs ]; then
  umount -l $fs && mount -t cgroup2 cgroup2 $fs
else
  ctrls=$(ls $fs)
  umount -l $fs
  mount -t tmpfs -o mode=755 cgroup_root $fs
  for c in $ctrls; do
    mkdir -p $fs/$c
    case $c in
      unified) mount -t cgroup2 cgroup2 $fs/$c ;;
      systemd) mount -t cgroup -o none,name=systemd cgroup $fs/$c ;;
      *) mount -t cgroup -o $c cgroup $fs/$c ;;
    esac
  done
fi
exec "$@"' confine "$@"
