#!/usr/bin/env bash
# Installs what `npm run bench` measures and uses, from Debian, when missing: the test tools
# (test/deps.sh: iproute2, nftables, python3, iperf3, ...) and the peers tsnet is measured
# beside: Podman with netavark (podman, netavark, conmon, crun) and the CNI reference plugins
# (containernetworking-plugins, which brings iptables). A peer that cannot be installed is left
# out: the benchmark says which are missing and how to install them, and measures the rest.
# BENCH_NO_INSTALL=1 installs nothing beyond test/deps.sh.
set -euo pipefail
bash "$(dirname "$0")/../test/deps.sh"
[[ ${BENCH_NO_INSTALL:-} == 1 ]] && exit 0
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have podman || need+=(podman)
[[ -x /usr/lib/podman/netavark || -x /usr/libexec/podman/netavark ]] || need+=(netavark)
have conmon || need+=(conmon)
have crun || need+=(crun)
[[ -x /usr/lib/cni/portmap || -x /opt/cni/bin/portmap ]] || need+=(containernetworking-plugins)
have taskset || need+=(util-linux)
if ((${#need[@]})); then
  echo "bench/deps.sh: installing the peers' packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    echo "bench/deps.sh: could not install ${need[*]}; the benchmark goes on without what is missing" >&2
  fi
fi
exit 0
