// The redirect that lets a container's resolver live on a port of its own, as Docker's embedded
// DNS does: inside the container's namespace, a tiny table turns 127.0.0.11:53 into
// 127.0.0.11:PORT (udp and tcp), so port 53 stays free for the container's own programs (a DNS
// server binding 0.0.0.0:53 in the container must work). Conntrack turns the answers back into
// 127.0.0.11:53.
//
//   table inet tsnet_dns {
//     chain output { type nat hook output priority dstnat
//       ip daddr 127.0.0.11 udp dport 53 dnat ip to 127.0.0.11:PORT
//       ip daddr 127.0.0.11 tcp dport 53 dnat ip to 127.0.0.11:PORT } }
import { IPPROTO_TCP, IPPROTO_UDP, NF_IP_PRI_NAT_DST, NFPROTO_IPV4, NFT_CMP_EQ, NFT_NAT_DNAT, NFT_PAYLOAD_TRANSPORT_HEADER, NFT_REG_1 } from "../nftables/constants.ts";
import { cmp } from "../nftables/expr/cmp.ts";
import { reg32 } from "../nftables/expr/expr.ts";
import { immediate } from "../nftables/expr/immediate.ts";
import { ipPrefix, l4proto } from "../nftables/expr/match.ts";
import { nat } from "../nftables/expr/nat.ts";
import { payloadLoad } from "../nftables/expr/payload.ts";
import type { TableSpec } from "../nftables/ensure.ts";
import { Batch, deleteTable, openNftSocket, tableExists } from "../nftables/index.ts";
import { value } from "../nftables/types.ts";

export const DNS_TABLE = "tsnet_dns";

export function dnsRedirectTable(resolver: number, port: number): TableSpec {
  const rule = (proto: number) => ({
    exprs: [
      ...ipPrefix("daddr", resolver, 32),
      ...l4proto(proto),
      payloadLoad(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1),
      cmp(NFT_CMP_EQ, NFT_REG_1, value.port(53)),
      immediate(reg32(0), value.ipv4(resolver)),
      immediate(reg32(1), value.port(port)),
      nat({ type: NFT_NAT_DNAT, family: NFPROTO_IPV4, addr: reg32(0), proto: reg32(1) }),
    ],
    comment: "tsnet: the container's resolver",
  });
  return {
    family: "inet",
    name: DNS_TABLE,
    chains: [{ name: "output", base: { type: "nat", hook: "output", priority: NF_IP_PRI_NAT_DST }, rules: [rule(IPPROTO_UDP), rule(IPPROTO_TCP)] }],
  };
}

/**
 * Removes the redirect from the namespace the calling thread is in: the one a dead manager left
 * points at a port nobody serves any more, and the supervisor adopting the container puts its
 * own resolver's in its place.
 */
export function removeDnsRedirect(): void {
  const nft = openNftSocket();
  try {
    if (!tableExists(nft, "inet", DNS_TABLE)) return;
    const b = new Batch();
    deleteTable(b, "inet", DNS_TABLE);
    b.commitUnconditional(nft);
  } finally {
    nft.close();
  }
}
