#!/usr/bin/env bash
# Runs a command inside a throwaway host: a new network namespace (its own lo, routes, nf_tables),
# a private mount namespace with a fresh tmpfs on /run, and a PID namespace of its own, so every
# bridge, namespace, lease, rule and process the tests make vanishes with it. The machine's own
# network is never touched.
#
# cgroups are shared with the machine: the host gets a cgroup namespace rooted at a cgroup of this
# run's own, with the unified hierarchy mounted again from inside it, so whatever runs there sees
# and makes cgroups only below that one (a tsnet that lost TSNET_CGROUP_PARENT, run with env -i,
# makes its default parent there too). It is emptied (cgroup.kill) and removed when the run ends.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "test/sandbox.sh: the kernel tests need root (network namespaces); run them as root" >&2
  exit 1
fi
# The namespace we were started in: the tests refuse to run if they find themselves still in it.
export TSNET_OUTER_NETNS=$(readlink /proc/self/ns/net)

# The tests' oracles and workloads are the Debian packages test/deps.sh installs: the system's
# directories come first in PATH (after this checkout's node_modules/.bin, for bun), ahead of what
# version managers put there. A pyenv shim runs about fifteen processes for each `python3`, some
# 0.6 s of CPU each time on this machine kind, where Debian's python3 takes 0.05 s.
PATH=$(cd "$(dirname "$0")/.." && pwd)/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

# The unified hierarchy's mount point: the field after " - " is the file system type.
cgroot=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
export TSNET_CGROUP_PARENT=tsnet-test-$$

# Kills what is left in each cgroup of the tree and removes it, deepest first. A few passes: the
# namespace's processes die with its PID 1 (--kill-child below), and one still dying may have
# made a cgroup after the first pass listed the tree.
remove_cgroups() {
  local dir=$cgroot/$TSNET_CGROUP_PARENT d pass
  for pass in 1 2 3 4 5; do
    [[ -n $cgroot && -d $dir ]] || return 0
    while IFS= read -r d; do
      if [[ -e $d/cgroup.kill ]]; then echo 1 >"$d/cgroup.kill" 2>/dev/null || true; fi
      for _ in $(seq 500); do grep -qs '^populated 0' "$d/cgroup.events" && break; [[ -d $d ]] || break; sleep 0.01; done
      rmdir "$d" 2>/dev/null || true
    done < <(find "$dir" -depth -type d 2>/dev/null)
    sleep 0.1
  done
  [[ ! -d $dir ]] || echo "test/sandbox.sh: could not remove cgroup $dir" >&2
}
trap remove_cgroups EXIT

# The namespace's root cgroup: unshare's child is forked while this script is in it, and takes it
# as the root of its cgroup namespace; this script then goes back where it was, so the root holds
# no process (its children's controllers stay free to enable) and the host's PID 1 moves to init.
own_cgroup=$(sed -n 's/^0:://p' /proc/self/cgroup)
mkdir "$cgroot/$TSNET_CGROUP_PARENT" "$cgroot/$TSNET_CGROUP_PARENT/init"
echo $$ >"$cgroot/$TSNET_CGROUP_PARENT/cgroup.procs"

# PID 1 of the new PID namespace is this bash: it runs the command as its child (never execs it)
# and reaps every orphan re-parented to it; when it exits, the kernel kills whatever remains.
# A signal that ends this script (a job stopped with SIGTERM, Ctrl-C) must end the namespace
# before the cgroups are removed: the init of a PID namespace ignores a TERM from outside, and
# the tests used to go on running (and making cgroups) after this script had exited. So unshare
# runs as a job this script waits for; a signal kills it, and --kill-child has the kernel send
# SIGKILL to its child, PID 1, which takes the whole namespace with it. stdin is passed on
# explicitly (a background job's would be /dev/null).
unshare --net --mount --pid --cgroup --fork --kill-child --mount-proc --propagation private -- bash -c '
  set -e
  umount -l "$0"
  mount -t cgroup2 tsnet-test-cgroup "$0"
  echo 0 >"$0/init/cgroup.procs"
  mount -t tmpfs -o mode=755 tsnet-test-run /run
  ip link set lo up
  export TSNET_THROWAWAY_HOST=1
  # Network records live on this tmpfs too (tsnet defaults to /var/lib/tsnet).
  export TSNET_STATE_DIR=/run/tsnet-state
  # Whatever is started here with a scrubbed environment (a container runtime calling its CNI
  # plugins, libcni caching results in /var/lib/cni) must not write to the machine either: /var/lib
  # becomes an overlay whose writes land on this tmpfs, and /var/lib/tsnet is the same directory
  # as TSNET_STATE_DIR, so a tsnet that lost the variable still finds the same records.
  mkdir -p /run/sandbox-varlib/upper /run/sandbox-varlib/work "$TSNET_STATE_DIR"
  mount -t overlay sandbox-varlib -o lowerdir=/var/lib,upperdir=/run/sandbox-varlib/upper,workdir=/run/sandbox-varlib/work /var/lib
  mkdir -p /var/lib/tsnet
  mount --bind "$TSNET_STATE_DIR" /var/lib/tsnet
  # /tmp the same way: what is there stays readable (a script or build given by path), and the
  # sites, env files and scratch directories tests and benchmarks make go with this host.
  mkdir -p /run/sandbox-tmp/upper /run/sandbox-tmp/work
  chmod 1777 /run/sandbox-tmp/upper
  mount -t overlay sandbox-tmp -o lowerdir=/tmp,upperdir=/run/sandbox-tmp/upper,workdir=/run/sandbox-tmp/work /tmp
  set +e
  "$@"
  exit $?
' "$cgroot" "$@" <&0 &
ns=$!
echo $$ >"$cgroot$own_cgroup/cgroup.procs"
end_namespace() { kill -KILL "$ns" 2>/dev/null || true; wait "$ns" 2>/dev/null || true; }
trap 'end_namespace; exit 143' TERM
trap 'end_namespace; exit 130' INT
trap 'end_namespace; exit 129' HUP
set +e
wait "$ns"
status=$?
set -e
exit "$status"
