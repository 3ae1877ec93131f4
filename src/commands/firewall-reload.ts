import { defineCommand } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { requireRoot } from "../cli/root.ts";
import { reloadFirewall } from "../container/firewall.ts";
import { describeRestore } from "../network/firewall.ts";
import { recover } from "../supervisor/client.ts";

export default defineCommand({
  name: "firewall-reload",
  details: [
    "A firewall reload (nft flush ruleset, nftables.service or firewalld restarting) removes tsnet's nf_tables table with every other. Each running container's manager notices and puts back what it needs within milliseconds; this command does the same for every running container at once: tsnet's table (guards, isolation, port maps) rebuilt from the set of networks in one transaction, each running container's published ports from its record, and route_localnet on tsnet's bridges once the guard is back. It changes nothing when nothing is missing, prints nothing on stdout, and says on stderr what it restored.",
    "Run it from the firewall's reload hook: see the README for a systemd unit.",
  ],
  args: [],
  options: {},
  examples: ["tsnet firewall-reload", "nft flush ruleset; tsnet firewall-reload"],
  async run() {
    requireRoot("tsnet firewall-reload", "it writes nf_tables rules and /proc/sys settings");
    await recover();
    const r = reloadFirewall();
    if (r.repaired) log.info(describeRestore(r));
    return 0;
  },
});
