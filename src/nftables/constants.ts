// linux/netfilter/nfnetlink.h, nf_tables.h, nf_nat.h, netfilter.h under the kernel's names, so
// they grep against the headers. Only what tsnet uses.

// nfnetlink.h
export const NFNETLINK_V0 = 0;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10; // NLMSG_MIN_TYPE
export const NFNL_MSG_BATCH_END = 0x11;
export const NFNL_BATCH_GENID = 1;
/** struct nfgenmsg { u8 nfgen_family; u8 version; be16 res_id; } */
export const NFGENMSG_LEN = 4;
/** enum nfnetlink_groups: every committed nf_tables change is announced here (`nft monitor`). */
export const NFNLGRP_NFTABLES = 7;

// netfilter.h
export const NFPROTO_UNSPEC = 0;
export const NFPROTO_INET = 1;
export const NFPROTO_IPV4 = 2;
export const NFPROTO_IPV6 = 10;

export const NF_INET_PRE_ROUTING = 0;
export const NF_INET_LOCAL_IN = 1;
export const NF_INET_FORWARD = 2;
export const NF_INET_LOCAL_OUT = 3;
export const NF_INET_POST_ROUTING = 4;

export const NF_ACCEPT = 1;
export const NF_DROP = 0;

// Standard priorities (nft calls them raw, dstnat, srcnat).
export const NF_IP_PRI_RAW = -300;
/** After conntrack (-200), before DNAT (-100): where a packet's ct state is known and its address not yet rewritten. */
export const NF_IP_PRI_MANGLE = -150;
export const NF_IP_PRI_FILTER = 0;
export const NF_IP_PRI_NAT_DST = -100;
export const NF_IP_PRI_NAT_SRC = 100;

// nf_tables.h: registers
export const NFT_REG_VERDICT = 0;
export const NFT_REG_1 = 1;
export const NFT_REG32_00 = 8;
export const NFT_REG32_15 = 23;

// verdicts
export const NFT_JUMP = -3;
export const NFT_GOTO = -4;
export const NFT_RETURN = -5;

// enum nf_tables_msg_types
export const NFT_MSG_NEWTABLE = 0;
export const NFT_MSG_GETTABLE = 1;
export const NFT_MSG_DELTABLE = 2;
export const NFT_MSG_NEWCHAIN = 3;
export const NFT_MSG_DELCHAIN = 5;
export const NFT_MSG_NEWRULE = 6;
export const NFT_MSG_GETRULE = 7;
export const NFT_MSG_DELRULE = 8;
export const NFT_MSG_NEWSET = 9;
export const NFT_MSG_GETSET = 10;
export const NFT_MSG_DELSET = 11;
export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_GETSETELEM = 13;
export const NFT_MSG_DELSETELEM = 14;
export const NFT_MSG_NEWGEN = 15;
export const NFT_MSG_GETGEN = 16;

export const NFTA_LIST_ELEM = 1;

export const NFTA_HOOK_HOOKNUM = 1;
export const NFTA_HOOK_PRIORITY = 2;

export const NFTA_TABLE_NAME = 1;
export const NFTA_TABLE_FLAGS = 2;

export const NFTA_CHAIN_TABLE = 1;
export const NFTA_CHAIN_NAME = 3;
export const NFTA_CHAIN_HOOK = 4;
export const NFTA_CHAIN_POLICY = 5;
export const NFTA_CHAIN_TYPE = 7;

export const NFTA_RULE_TABLE = 1;
export const NFTA_RULE_CHAIN = 2;
export const NFTA_RULE_HANDLE = 3;
export const NFTA_RULE_EXPRESSIONS = 4;
export const NFTA_RULE_POSITION = 6;
export const NFTA_RULE_USERDATA = 7;

export const NFT_SET_MAP = 0x8;


export const NFTA_SET_TABLE = 1;
export const NFTA_SET_NAME = 2;
export const NFTA_SET_FLAGS = 3;
export const NFTA_SET_KEY_TYPE = 4;
export const NFTA_SET_KEY_LEN = 5;
export const NFTA_SET_DATA_TYPE = 6;
export const NFTA_SET_DATA_LEN = 7;
export const NFTA_SET_ID = 10;
export const NFTA_SET_USERDATA = 13;

export const NFTA_SET_ELEM_KEY = 1;
export const NFTA_SET_ELEM_DATA = 2;
export const NFTA_SET_ELEM_FLAGS = 3;
export const NFTA_SET_ELEM_USERDATA = 6;

export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;

export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;

export const NFTA_VERDICT_CODE = 1;
export const NFTA_VERDICT_CHAIN = 2;

export const NFTA_EXPR_NAME = 1;
export const NFTA_EXPR_DATA = 2;

export const NFTA_IMMEDIATE_DREG = 1;
export const NFTA_IMMEDIATE_DATA = 2;

export const NFTA_BITWISE_SREG = 1;
export const NFTA_BITWISE_DREG = 2;
export const NFTA_BITWISE_LEN = 3;
export const NFTA_BITWISE_MASK = 4;
export const NFTA_BITWISE_XOR = 5;

export const NFT_CMP_EQ = 0;
export const NFT_CMP_NEQ = 1;
export const NFTA_CMP_SREG = 1;
export const NFTA_CMP_OP = 2;
export const NFTA_CMP_DATA = 3;

export const NFT_LOOKUP_F_INV = 1;
export const NFTA_LOOKUP_SET = 1;
export const NFTA_LOOKUP_SREG = 2;
export const NFTA_LOOKUP_DREG = 3;
export const NFTA_LOOKUP_SET_ID = 4;
export const NFTA_LOOKUP_FLAGS = 5;

export const NFT_PAYLOAD_NETWORK_HEADER = 1;
export const NFT_PAYLOAD_TRANSPORT_HEADER = 2;
export const NFTA_PAYLOAD_DREG = 1;
export const NFTA_PAYLOAD_BASE = 2;
export const NFTA_PAYLOAD_OFFSET = 3;
export const NFTA_PAYLOAD_LEN = 4;

export const NFT_META_IIFNAME = 6;
export const NFT_META_OIFNAME = 7;
export const NFT_META_NFPROTO = 15;
export const NFT_META_L4PROTO = 16;
export const NFTA_META_DREG = 1;
export const NFTA_META_KEY = 2;

export const NFT_CT_STATE = 0;
export const NFT_CT_STATUS = 2;
// NF_CT_STATE_BIT(IP_CT_ESTABLISHED), NF_CT_STATE_BIT(IP_CT_RELATED): what `ct state` compares.
export const NF_CT_STATE_ESTABLISHED_BIT = 1 << 1;
export const NF_CT_STATE_RELATED_BIT = 1 << 2;
export const NFTA_CT_DREG = 1;
export const NFTA_CT_KEY = 2;

export const NFTA_COUNTER_BYTES = 1;
export const NFTA_COUNTER_PACKETS = 2;

export const NFT_NAT_SNAT = 0;
export const NFT_NAT_DNAT = 1;
export const NFTA_NAT_TYPE = 1;
export const NFTA_NAT_FAMILY = 2;
export const NFTA_NAT_REG_ADDR_MIN = 3;
export const NFTA_NAT_REG_ADDR_MAX = 4;
export const NFTA_NAT_REG_PROTO_MIN = 5;
export const NFTA_NAT_REG_PROTO_MAX = 6;
export const NFTA_NAT_FLAGS = 7;

export const NFTA_MASQ_FLAGS = 1;
export const NFTA_MASQ_REG_PROTO_MIN = 2;
export const NFTA_MASQ_REG_PROTO_MAX = 3;

export const NFTA_GEN_ID = 1;

export const NFTA_FIB_DREG = 1;
export const NFTA_FIB_RESULT = 2;
export const NFTA_FIB_FLAGS = 3;
export const NFT_FIB_RESULT_ADDRTYPE = 3;
export const NFTA_FIB_F_DADDR = 1 << 1;

// nf_nat.h
export const NF_NAT_RANGE_PROTO_SPECIFIED = 1 << 1;

// nf_conntrack_common.h: IPS_DST_NAT_BIT = 5, what `ct status dnat` tests
export const IPS_DST_NAT = 1 << 5;

// linux/rtnetlink.h: route types as `fib ... type` returns them (host byte order in the register)
export const RTN_LOCAL = 2;

// netinet/in.h
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

// libnftnl's userdata TLV types (include/libnftnl/udata.h): what `nft` parses for comments.
export const NFTNL_UDATA_RULE_COMMENT = 0;
export const NFTNL_UDATA_SET_ELEM_COMMENT = 0;
/** Set userdata TLV telling nft the key's byte order (nft's BYTEORDER_HOST_ENDIAN is 1). */
export const NFTNL_UDATA_SET_KEYBYTEORDER = 0;
export const NFT_BYTEORDER_HOST_ENDIAN = 1;
/** nft limits comments to 128 bytes including the NUL (NFTNL_UDATA_COMMENT_MAXLEN). */
export const NFTNL_UDATA_COMMENT_MAXLEN = 128;

// nft's datatype numbers (nftables src/datatype.h), stored as NFTA_SET_KEY_TYPE / DATA_TYPE.
// The kernel ignores them; nft uses them to print keys. A concatenation is (t1 << 6) | t2 ...
export const TYPE_IPADDR = 7;
export const TYPE_IP6ADDR = 8;
export const TYPE_INET_PROTOCOL = 12;
export const TYPE_INET_SERVICE = 13;
export const TYPE_MARK = 19;
export const TYPE_IFNAME = 41;
export const TYPE_BITS = 6;

export const IFNAMSIZ = 16;
