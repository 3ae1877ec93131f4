#!/usr/bin/env bash
# Runs a command inside a throwaway host: a new network namespace (its own lo, routes, nf_tables)
# and a private mount namespace with a fresh tmpfs on /run, so every bridge, namespace, lease and
# rule the tests make vanishes with it. The machine's own network is never touched.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "test/sandbox.sh: the kernel tests need root (network namespaces); run them as root" >&2
  exit 1
fi
# The namespace we were started in: the tests refuse to run if they find themselves still in it.
export TSNET_OUTER_NETNS=$(readlink /proc/self/ns/net)
exec unshare --net --mount --propagation private -- bash -c '
  set -e
  mount -t tmpfs -o mode=755 tsnet-test-run /run
  ip link set lo up
  export TSNET_THROWAWAY_HOST=1
  # Network records live on this tmpfs too (tsnet defaults to /var/lib/tsnet).
  export TSNET_STATE_DIR=/run/tsnet-state
  exec "$@"
' sandbox "$@"
