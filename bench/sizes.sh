#!/usr/bin/env bash
# README's release sizes beside the peers': the bytes of dist/'s release files, and of the main
# executables in Debian's netavark, containernetworking-plugins and docker.io packages (with
# containerd and runc, which dockerd needs), downloaded with `apt-get download` from this
# machine's configured mirror into a scratch directory and unpacked there: nothing is installed.
# Run after `npm run release` (the archives at xz's default level, 6).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
size() { stat -c %s "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
for f in dist/tsnet-linux-x64 dist/tsnet-linux-arm64 dist/tsnet-*-linux-*.tar.xz; do
  echo "$(basename "$f"): $(mb "$(size "$f")")"
done
(cd "$scratch" && apt-get download -qq netavark aardvark-dns containernetworking-plugins docker.io containerd runc 2>/dev/null)
for deb in "$scratch"/*.deb; do
  echo "$(basename "$deb"): $(mb "$(size "$deb")") (.deb)"
  dpkg-deb -x "$deb" "$scratch/root"
done
sum() { local t=0 f; for f in "$@"; do t=$((t + $(size "$scratch/root/$f"))); done; echo "$t"; }
show() { echo "$1: $(mb "$(sum "${@:2}")") (${*:2})"; }
show netavark usr/lib/podman/netavark
show aardvark-dns usr/lib/podman/aardvark-dns
show "CNI plugins for a bridge network" usr/lib/cni/{bridge,host-local,portmap,firewall,loopback}
echo "CNI plugins, all $(ls "$scratch/root/usr/lib/cni" | wc -l): $(mb "$(du -sb "$scratch/root/usr/lib/cni" | cut -f1)")"
show "Docker (docker.io)" usr/sbin/dockerd usr/bin/docker usr/sbin/docker-proxy
show "containerd and runc" usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/sbin/runc
