#!/usr/bin/env bash
# The container cycle of `tsnet run --rm [-p 8080:80] -- true` in bridge mode, done by hand with
# iproute2 on tsnet's bridge (tsnet0 must exist). Two layouts:
#   bash bench/by-hand.sh            namespace, veth with its peer inside, master + up, eth0 up,
#                                    address, route, exec, `ip link del`, `ip netns del`:
#                                    9 processes, the kernel's rcu_barrier() paid by `ip link del`
#   bash bench/by-hand.sh netns-del  the same with lo up and no `ip link del`: 9 processes ending
#                                    in `ip netns del`; the kernel removes the veth pair after the
#                                    command returns, as it does for a runtime that just drops the
#                                    namespace
# A further -p adds the port the way tsnet holds it: `nft add element` into tsnet's map after the
# setup and `nft delete element` before the teardown (2 more processes; table inet tsnet, made by
# tsnet's first run).
set -e
layout=link-del
publish=
for a in "$@"; do
  case $a in
    netns-del | link-del) layout=$a ;;
    -p) publish=1 ;;
    *) echo "usage: bash bench/by-hand.sh [netns-del|link-del] [-p]" >&2; exit 2 ;;
  esac
done
n=bench$$
addr=10.77.200.2
ip netns add "$n"
ip link add "v$n" type veth peer name eth0 netns "$n"
ip link set "v$n" master tsnet0 up
[[ $layout == netns-del ]] && ip -n "$n" link set lo up
ip -n "$n" link set eth0 up
ip -n "$n" addr add "$addr/16" dev eth0
ip -n "$n" route add default via 10.77.0.1
if [[ $publish ]]; then
  # A failed run must not leave the element behind for the next run of any tool on 8080.
  trap 'nft delete element inet tsnet ports "{ tcp . 8080 }" 2>/dev/null' EXIT
  nft add element inet tsnet ports "{ tcp . 8080 : $addr . 80 }"
fi
ip netns exec "$n" true
if [[ $publish ]]; then
  trap - EXIT
  nft delete element inet tsnet ports "{ tcp . 8080 }"
fi
[[ $layout == link-del ]] && ip link del "v$n"
ip netns del "$n"
