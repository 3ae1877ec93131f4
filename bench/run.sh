#!/usr/bin/env bash
# The side-by-side benchmark (npm run bench), inside a throwaway host (test/sandbox.sh): runs
# bench/bench.ts (or `bun ARGS...` when given, e.g. bench/ipv6.ts), renders bench/results/, and
# removes whatever the peers left outside the throwaway host: Podman's and Docker's cgroups
# (cgroups are shared with the machine). Everything else it makes (namespaces, links, rules,
# Podman's and Docker's storage and state, CNI leases) lives in the throwaway host's network
# namespace or on its tmpfs /run, and goes with it.
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
  docker_cleanup
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

# Docker (bench/lib/tools.ts): if bench.ts died before stopping it, its containers, then dockerd
# and containerd by the PIDs it recorded. runc (cgroupfs driver) makes DIR/<container> in every
# cgroup hierarchy, v1 and unified, under the parent named in docker/cgroup-parent (a name of this
# run's); the containers' leaves go with them, the parents stay: remove them all, deepest first,
# after ending any process still in them (only this run's containers can be).
docker_cleanup() {
  local w=$BENCH_WORK/docker client=${BENCH_DOCKER_DIR:-bench/.cache/docker}/root/usr/bin/docker name d p f i ids pid dirs
  [[ -e $w/cgroup-parent ]] || return 0
  name=$(cat "$w/cgroup-parent")
  [[ $name == tsnet-bench-docker-* ]] || return 0
  if [[ -S $w/docker.sock ]]; then
    mapfile -t ids < <(timeout 30 "$client" -H "unix://$w/docker.sock" ps -aq 2>/dev/null)
    if ((${#ids[@]})); then timeout 120 "$client" -H "unix://$w/docker.sock" rm -f "${ids[@]}" >/dev/null 2>&1 || true; fi
  fi
  for f in dockerd containerd; do
    [[ -e $w/$f.pid ]] || continue
    pid=$(cat "$w/$f.pid")
    kill -TERM "$pid" 2>/dev/null || continue
    for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    ((i < 200)) || kill -KILL "$pid" 2>/dev/null || true
  done
  for ((i = 0; i < 50; i++)); do
    mapfile -t dirs < <(find /sys/fs/cgroup -maxdepth 6 -type d -name "$name" 2>/dev/null)
    ((${#dirs[@]})) || return 0
    for d in "${dirs[@]}"; do
      for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
        [[ $p == 0 ]] || kill -KILL "$p" 2>/dev/null || true
      done
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    sleep 0.1
  done
  echo "bench: could not remove Docker's cgroups: $(find /sys/fs/cgroup -maxdepth 6 -type d -name "$name" | tr '\n' ' ')" >&2
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
