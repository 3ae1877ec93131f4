// linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/veth.h, linux/if.h: kernel names.
// Multicast group bits for bind(2) (RTMGRP_*), not RTNLGRP_* numbers.
export const RTMGRP_LINK = 1;
export const RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_SETLINK = 19;
export const RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24, RTM_DELROUTE = 25, RTM_GETROUTE = 26;

export const AF_UNSPEC = 0, AF_INET = 2, AF_BRIDGE = 7, AF_INET6 = 10;

export const IFF_UP = 0x1, IFF_RUNNING = 0x40, IFF_LOWER_UP = 0x10000;

export const IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_LINK = 5, IFLA_MASTER = 10,
  IFLA_PROTINFO = 12, IFLA_OPERSTATE = 16, IFLA_LINKINFO = 18, IFLA_NET_NS_PID = 19,
  IFLA_NET_NS_FD = 28, IFLA_LINK_NETNSID = 37, IFLA_TARGET_NETNSID = 46;
export const IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2;
export const VETH_INFO_PEER = 1;
export const IFLA_BRPORT_MODE = 4;

// RFC 2863 operational states carried in IFLA_OPERSTATE.
export const IF_OPER_UNKNOWN = 0, IF_OPER_DOWN = 2, IF_OPER_UP = 6;

export const IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_LABEL = 3, IFA_BROADCAST = 4;
/** ifaddrmsg.ifa_flags: no duplicate address detection for this IPv6 address. */
export const IFA_F_NODAD = 0x02;

export const RTA_DST = 1, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_PRIORITY = 6, RTA_PREFSRC = 7,
  RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254, RT_TABLE_LOCAL = 255;
export const RTPROT_KERNEL = 2, RTPROT_BOOT = 3, RTPROT_STATIC = 4;
export const RT_SCOPE_UNIVERSE = 0, RT_SCOPE_LINK = 253, RT_SCOPE_HOST = 254;
export const RTN_UNICAST = 1, RTN_LOCAL = 2;

export const IFNAMSIZ = 16;

// net/bridge/br_private.h: a bridge numbers its ports in BR_PORT_BITS (10) bits and port 0 is
// never used, so it takes BR_MAX_PORTS - 1 ports; one more is EXFULL.
export const BR_MAX_PORTS = 1 << 10;

// Traffic control (linux/rtnetlink.h, linux/pkt_sched.h, linux/pkt_cls.h, linux/if_ether.h).
export const RTM_NEWQDISC = 36, RTM_NEWTFILTER = 44, RTM_GETTFILTER = 46;
export const TCA_KIND = 1, TCA_OPTIONS = 2;
/** The parent of the clsact (and ingress) qdisc: TC_H_CLSACT == TC_H_INGRESS. */
export const TC_H_CLSACT = 0xfffffff1;
export const TC_H_MIN_INGRESS = 0xfff2;
export const TCA_BPF_OPS_LEN = 4, TCA_BPF_OPS = 5, TCA_BPF_FLAGS = 8;
export const TCA_BPF_FLAG_ACT_DIRECT = 1;
export const TC_ACT_UNSPEC = -1, TC_ACT_OK = 0, TC_ACT_SHOT = 2;
export const ETH_P_ALL = 0x0003, ETH_P_IP = 0x0800, ETH_P_IPV6 = 0x86dd, ETH_P_8021Q = 0x8100, ETH_P_8021AD = 0x88a8;

/** TC_H_MAKE: a handle from its major (upper 16 bits) and minor (lower 16) parts. */
export function TC_H_MAKE(maj: number, min: number): number {
  return ((maj & 0xffff0000) | (min & 0xffff)) >>> 0;
}
