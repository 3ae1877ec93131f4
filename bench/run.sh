#!/usr/bin/env bash
# The side-by-side benchmark (npm run bench), inside a throwaway host (test/sandbox.sh): runs
# bench/bench.ts (or `bun ARGS...` when given, e.g. bench/ipv6.ts), renders bench/results/, and
# removes whatever the peers left outside the throwaway host: Podman's cgroups (cgroups are
# shared with the machine). Everything else it
# makes (namespaces, links, rules, Podman's storage and state, CNI leases) lives in the throwaway
# host's network namespace or on its tmpfs /run, and goes with it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${TSNET_THROWAWAY_HOST:-} != 1 || $(readlink /proc/self/ns/net) == "${TSNET_OUTER_NETNS:-}" ]]; then
  echo "bench/run.sh makes links, namespaces, containers and firewall rules: run it inside test/sandbox.sh (npm run bench)" >&2
  exit 1
fi
BUN=$PWD/node_modules/.bin/bun
export BENCH_WORK=/run/bench
mkdir -p "$BENCH_WORK"

# cgroup v1 hierarchies where Podman (cgroupfs manager) makes libpod_parent/: remove the ones
# this run made, deepest first, once their processes are gone.
cgroup_roots() { find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -name libpod_parent -type d 2>/dev/null || true; }
had_libpod=$(cgroup_roots)
cleanup() {
  local d i p ids
  # If bench.ts died before its own clean-up: every container, then the processes it started
  # (servers, the holder of Podman's mount namespace), by PID.
  if [[ -e $BENCH_WORK/podman/holder.pid ]]; then
    CONTAINERS_CONF=$BENCH_WORK/podman/containers.conf CONTAINERS_STORAGE_CONF=$BENCH_WORK/podman/storage.conf \
      nsenter --mount="/proc/$(cat "$BENCH_WORK/podman/holder.pid")/ns/mnt" podman rm -a -f -t 0 >/dev/null 2>&1 || true
    # Without that namespace podman cannot remove them: end each container's process and its
    # conmon by the PIDs Podman recorded.
    for f in "$BENCH_WORK"/podman/runroot/vfs-containers/*/userdata/pidfile; do
      [[ -e $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null
    done
    for f in "$BENCH_WORK"/podman/runroot/vfs-containers/*/userdata/conmon.pid; do
      [[ -e $f ]] && kill -TERM "$(cat "$f")" 2>/dev/null
    done
  fi
  mapfile -t ids < <("${TSNET:-dist/tsnet}" ps -aq 2>/dev/null)
  if ((${#ids[@]})); then "${TSNET:-dist/tsnet}" rm -f "${ids[@]}" >/dev/null 2>&1 || true; fi
  if [[ -e $BENCH_WORK/pids ]]; then
    for p in $(cat "$BENCH_WORK/pids"); do kill -TERM "$p" 2>/dev/null || true; done
  fi
  for d in $(cgroup_roots); do
    grep -qxF "$d" <<<"$had_libpod" && continue
    for ((i = 0; i < 50; i++)); do
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [[ -d $d ]] || break
      sleep 0.1
    done
    [[ -d $d ]] && echo "bench: could not remove cgroup $d" >&2
  done
  return 0
}
trap cleanup EXIT
# With arguments, another benchmark that uses Podman the same way (bench/ipv6.ts) runs instead,
# with the same clean-up.
if (($#)); then
  "$BUN" "$@"
  exit
fi
"$BUN" bench/bench.ts
"$BUN" bench/render.ts "${BENCH_OUT:-bench/results}"
