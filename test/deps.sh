#!/usr/bin/env bash
# Installs the Debian packages the kernel tests and benchmarks use as independent oracles and
# workloads, if any is missing. tsnet itself needs nothing at run time; its build embeds libmnl0's library.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip || need+=(iproute2)
have nft || need+=(nftables)
have curl || need+=(curl)
have ping || need+=(iputils-ping)
[[ -x /usr/bin/python3 ]] || need+=(python3)
have setpriv || need+=(util-linux)
have nginx || need+=(nginx-light)
have hyperfine || need+=(hyperfine)
have iperf3 || need+=(iperf3)
# Completion scripts are run in each shell; the arm64 release runs under qemu-user.
have zsh || need+=(zsh)
have fish || need+=(fish)
have script || need+=(bsdutils)
# test/bareroot.test.ts builds a root of glibc and a static busybox (sh, httpd, ls, cat...).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
have qemu-aarch64 || need+=(qemu-user)
[[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]] || need+=(libc6-arm64-cross)
ldconfig -p | grep -q 'libmnl\.so\.0' || need+=(libmnl0)
# tsnet as a CNI plugin is chained with the reference plugins (portmap needs iptables) and run by
# Podman 4 with its CNI backend (crun, conmon).
[[ -x /usr/lib/cni/portmap && -x /usr/lib/cni/tuning && -x /usr/lib/cni/host-local ]] || need+=(containernetworking-plugins)
have iptables || need+=(iptables)
have podman || need+=(podman)
have crun || need+=(crun)
have conmon || need+=(conmon)
if ((${#need[@]})); then
  echo "test/deps.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
