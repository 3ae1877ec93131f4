#!/usr/bin/env bash
# Installs what `npm run bench` measures and uses, from Debian, when missing: the test tools
# (test/deps.sh: iproute2, nftables, python3, iperf3, ...) and the peers tsnet is measured
# beside: Podman with netavark (podman, netavark, conmon, crun) and the CNI reference plugins
# (containernetworking-plugins, which brings iptables). A peer that cannot be installed is left
# out: the benchmark says which are missing and how to install them, and measures the rest.
# Docker is never installed: Debian's docker.io, containerd and runc are downloaded with
# `apt-get download` and unpacked with `dpkg-deb -x` into bench/.cache/docker (git-ignored),
# once; bench/lib/tools.ts starts them from there inside the throwaway host, which has no
# network to download them itself.
# BENCH_NO_INSTALL=1 installs nothing beyond test/deps.sh (Docker is still fetched unless
# BENCH_SKIP names docker).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../test/deps.sh"
fetch_docker() {
  local cache=$here/.cache/docker scratch deb
  [[ -e $cache/unpacked ]] && return 0
  echo "bench/deps.sh: fetching Debian's docker.io, containerd and runc into $cache (unpacked, not installed)" >&2
  scratch=$(mktemp -d)
  if (cd "$scratch" && apt-get download -qq docker.io containerd runc 2>/dev/null); then
    rm -rf "$cache"
    mkdir -p "$cache/root"
    for deb in "$scratch"/*.deb; do
      dpkg-deb -x "$deb" "$cache/root"
      echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)" >>"$cache/versions"
    done
    touch "$cache/unpacked"
  else
    echo "bench/deps.sh: could not download docker.io, containerd and runc; the benchmark goes on without Docker" >&2
  fi
  rm -rf "$scratch"
}
[[ ,${BENCH_SKIP:-}, == *,docker,* ]] || fetch_docker
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
