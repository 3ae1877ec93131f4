import { defineCommand } from "citty";
import { scanOptions } from "../../cli/argv.ts";
import { requireRoot } from "../../cli/root.ts";
import { UsageError } from "../../errors/errors.ts";
import { createNetwork } from "../../network/networks.ts";

export default defineCommand({
  meta: { name: "create", description: "Create a bridge network of its own (bridge tsnet-<id>), with a free /24 unless --subnet is given" },
  run({ rawArgs }) {
    const { values, rest } = scanOptions("network create", rawArgs, [
      { names: ["--subnet"], key: "subnet", takesValue: true, example: "10.80.0.0/24" },
      { names: ["--gateway"], key: "gateway", takesValue: true, example: "10.80.0.1" },
      { names: ["--internal"], key: "internal", takesValue: false },
      { names: ["-d", "--driver"], key: "driver", takesValue: true, example: "bridge" },
      { names: ["--label"], key: "label", takesValue: true, repeatable: true, example: "team=web" },
    ]);
    if (rest.length !== 1) throw new UsageError("tsnet network create needs one network name, e.g. tsnet network create backend");
    if (values.driver !== undefined && values.driver !== "bridge") throw new UsageError(`tsnet network create: only the bridge driver is supported (got "${values.driver}")`);
    const labels: Record<string, string> = {};
    for (const l of (values.label as string[] | undefined) ?? []) {
      const eq = l.indexOf("=");
      labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? "" : l.slice(eq + 1);
    }
    requireRoot("tsnet network create");
    const net = createNetwork({
      name: rest[0]!,
      subnet: values.subnet as string | undefined,
      gateway: values.gateway as string | undefined,
      internal: values.internal === true,
      labels,
    });
    process.stdout.write(`${net.id}\n`);
    return 0;
  },
});
