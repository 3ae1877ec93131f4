# A TCP server for the connection-rate benchmark, run as a container's command:
#   python3 bench/listen.py [-6] RANGE...      RANGE is PORT or LO-HI (both included)
# listens on every port of every range and, for each connection, accepts it and closes it at
# once (the client sees EOF). One process, one selector, so 1,000 ports cost one process.
# -6: each socket is an IPv6 one on [::] taking IPv4 too (IPV6_V6ONLY off), for dual-stack runs.
import selectors
import socket
import sys

args = sys.argv[1:]
six = bool(args) and args[0] == "-6"
if six:
    args = args[1:]
ports = []
for arg in args:
    lo, _, hi = arg.partition("-")
    ports += range(int(lo), int(hi or lo) + 1)
if not ports:
    sys.exit("usage: listen.py PORT|LO-HI...")
sel = selectors.DefaultSelector()
for port in ports:
    s = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if six:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::" if six else "0.0.0.0", port))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print(f"listening on {len(ports)} ports: {' '.join(args)}", file=sys.stderr, flush=True)
while True:
    for key, _ in sel.select():
        while True:
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                break
            conn.close()
