# A TCP server for the connection-rate benchmark, run as a container's command:
#   python3 bench/listen.py LO HI
# listens on every port LO..HI (both included) and, for each connection, accepts it and closes it
# at once (the client sees EOF). One process, one selector, so 1,000 ports cost one process.
import selectors
import socket
import sys

lo, hi = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
for port in range(lo, hi + 1):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print(f"listening on {lo}-{hi}", file=sys.stderr, flush=True)
while True:
    for key, _ in sel.select():
        while True:
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                break
            conn.close()
