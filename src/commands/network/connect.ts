import { defineCommand } from "citty";
import { scanOptions } from "../../cli/argv.ts";
import { requireRoot } from "../../cli/root.ts";
import { connectContainer } from "../../container/attach.ts";
import { recoverOrphans } from "../../container/lifecycle.ts";
import { UsageError } from "../../errors/errors.ts";
import { mustFindNetwork } from "../../network/networks.ts";

export default defineCommand({
  meta: { name: "connect", description: "Connect a running container to a network: a new interface (eth1, ...) with an address on it" },
  run({ rawArgs }) {
    const { values, rest } = scanOptions("network connect", rawArgs, [
      { names: ["--ip"], key: "ip", takesValue: true, example: "10.78.0.10" },
      { names: ["--alias"], key: "alias", takesValue: true, repeatable: true, example: "db" },
    ]);
    if (rest.length !== 2) throw new UsageError("tsnet network connect needs a network and a container, e.g. tsnet network connect backend web");
    requireRoot("tsnet network connect");
    recoverOrphans();
    connectContainer(rest[1]!, mustFindNetwork(rest[0]!), { ip: values.ip as string | undefined, aliases: values.alias as string[] | undefined });
    return 0;
  },
});
