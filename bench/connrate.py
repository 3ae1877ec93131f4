# New-connection rate, the client side: for each target, opens and closes N sequential TCP
# connections and reports connections per second. One connection = connect (the handshake goes
# through NAT), read until the server's close (EOF), then close with RST (SO_LINGER 0) so that
# neither end keeps a TIME_WAIT socket and conntrack keeps the entry 10 s, not 120 s.
#
#   python3 bench/connrate.py ROUNDS COUNT MAX_SECONDS LABEL=HOST:PORT...
#
# HOST is an IPv4 address or an IPv6 one in brackets ([::1]:8080).
#
# Rounds are interleaved (every target once per round, the order rotated each round) so drift
# in the machine's load shifts every target alike. Each measurement stops after COUNT connections
# or MAX_SECONDS, whichever comes first. Prints JSON: {label: [rate per round, ...]}.
import json
import socket
import struct
import sys
import time

rounds, count, max_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
targets = []
for arg in sys.argv[4:]:
    label, addr = arg.split("=", 1)
    host, port = addr.rsplit(":", 1)
    targets.append((label, (host.strip("[]"), int(port))))

LINGER0 = struct.pack("ii", 1, 0)


def one(addr):
    s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(addr)
        s.recv(1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    finally:
        s.close()


def rate(addr):
    for _ in range(5):  # warm-up, not counted
        one(addr)
    t0 = time.perf_counter()
    deadline = t0 + max_s
    n = 0
    while n < count:
        one(addr)
        n += 1
        if (n & 63) == 0 and time.perf_counter() > deadline:
            break
    return n / (time.perf_counter() - t0)


out = {label: [] for label, _ in targets}
for r in range(rounds):
    k = r % len(targets)
    for label, addr in targets[k:] + targets[:k]:
        out[label].append(round(rate(addr), 1))
print(json.dumps(out))
