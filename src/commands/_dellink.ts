// Hidden: `tsnet _dellink NAME...` deletes links and sits out the kernel's rcu_barrier() so that
// the tsnet that started it need not (see src/network/dellink.ts).
import { defineCommand } from "citty";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { deleteLink } from "../network/dellink.ts";

export default defineCommand({
  meta: { name: "_dellink", hidden: true },
  run({ rawArgs }) {
    const nl = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (host)");
    for (const name of rawArgs) deleteLink(nl, name);
    return 0;
  },
});
