#!/usr/bin/env bash
# The servers behind a published port, run as a container's command: bench/listen.py on :80
# (accept, close: the connection-rate target, pinned to the client's CPU) and iperf3 on :5201.
# Ends both on TERM or INT. With -6, listen.py takes IPv6 too (iperf3 always does).
dir=$(dirname "$0")
trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
taskset -c "${PIN_CPU:-0}" python3 "$dir/listen.py" ${1:+"$1"} 80 2>/dev/null &
iperf3 -s -p 5201 >/dev/null 2>&1 &
wait
