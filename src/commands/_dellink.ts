// Hidden: `tsnet _dellink NAME...` deletes links and sits out the kernel's rcu_barrier() so that
// the tsnet that started it need not (see src/network/dellink.ts).
import { defineCommand } from "../cli/command.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { deleteLink } from "../network/dellink.ts";

export default defineCommand({
  name: "_dellink",
  args: [{ name: "LINK", what: "links to delete", description: "Link names", required: false, repeat: true }],
  options: {},
  optionsEndAtFirstArg: true,
  examples: ["tsnet _dellink veth1234567"],
  run({ args }) {
    const nl = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (host)");
    for (const name of args) deleteLink(nl, name);
    return 0;
  },
});
