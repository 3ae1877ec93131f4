#!/usr/bin/env bash
# The same container cycle as `tsnet run --rm -- true` in bridge mode, done by hand with iproute2:
# namespace, veth with its peer inside, master, up, address, route, exec, delete. 9 processes.
set -e
n=bench$$
ip netns add "$n"
ip link add "v$n" type veth peer name eth0 netns "$n"
ip link set "v$n" master tsnet0 up
ip -n "$n" link set eth0 up
ip -n "$n" addr add 10.77.200.2/16 dev eth0
ip -n "$n" route add default via 10.77.0.1
ip netns exec "$n" true
ip link del "v$n"
ip netns del "$n"
