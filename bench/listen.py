# A TCP server for the connection-rate benchmark, run as a container's command:
#   python3 bench/listen.py RANGE...      RANGE is PORT or LO-HI (both included)
# listens on every port of every range and, for each connection, accepts it and closes it at
# once (the client sees EOF). One process, one selector, so 1,000 ports cost one process.
import selectors
import socket
import sys

ports = []
for arg in sys.argv[1:]:
    lo, _, hi = arg.partition("-")
    ports += range(int(lo), int(hi or lo) + 1)
if not ports:
    sys.exit("usage: listen.py PORT|LO-HI...")
sel = selectors.DefaultSelector()
for port in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print(f"listening on {len(ports)} ports: {' '.join(sys.argv[1:])}", file=sys.stderr, flush=True)
while True:
    for key, _ in sel.select():
        while True:
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                break
            conn.close()
