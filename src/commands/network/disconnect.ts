import { defineCommand } from "citty";
import { scanOptions } from "../../cli/argv.ts";
import { requireRoot } from "../../cli/root.ts";
import { disconnectContainer } from "../../container/attach.ts";
import { recoverOrphans } from "../../container/lifecycle.ts";
import { UsageError } from "../../errors/errors.ts";
import { mustFindNetwork } from "../../network/networks.ts";

export default defineCommand({
  meta: { name: "disconnect", description: "Disconnect a running container from a network: its interface there is removed" },
  run({ rawArgs }) {
    const { rest } = scanOptions("network disconnect", rawArgs, [{ names: ["-f", "--force"], key: "force", takesValue: false }]);
    if (rest.length !== 2) throw new UsageError("tsnet network disconnect needs a network and a container, e.g. tsnet network disconnect backend web");
    requireRoot("tsnet network disconnect");
    recoverOrphans();
    disconnectContainer(rest[1]!, mustFindNetwork(rest[0]!));
    return 0;
  },
});
