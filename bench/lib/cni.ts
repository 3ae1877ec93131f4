// A minimal CNI runtime, doing what libcni does for a network configuration list (the CNI spec,
// "Network configuration lists"): ADD calls each plugin in order, giving each the previous
// plugin's result as prevResult; DEL calls them in reverse order, each given the cached result
// of the ADD. Each call is one exec of the plugin binary named by `type`, with CNI_COMMAND,
// CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH in the environment and the plugin's
// configuration on stdin. Capability arguments (here only portMappings) are injected as
// runtimeConfig into the plugins that declare the capability, as libcni does.
//
// The runtime itself lives in the benchmark's process, as a real one lives in its daemon, so a
// cycle's time is the plugins' and the namespace's, not a runtime's start-up.
import { run } from "./proc.ts";

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: "tcp" | "udp";
}

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: ({ type: string; capabilities?: Record<string, boolean> } & Record<string, unknown>)[];
}

/**
 * The reference plugins as Debian's podman ships them for its CNI backend
 * (87-podman-bridge.conflist), minus the firewall and tuning plugins: bridge with masquerade and
 * hairpin, host-local (its data under ipamDir), portmap. Both benchmarks compare tsnet with this.
 */
export function referenceConfList(name: string, ipamDir: string): ConfList {
  return {
    cniVersion: "1.0.0",
    name,
    plugins: [
      {
        type: "bridge",
        bridge: "cni-bench0",
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet: "10.99.0.0/16", gateway: "10.99.0.1" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: ipamDir },
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** One container attached by ADD: what DEL needs. */
export interface Attachment {
  id: string;
  netns: string;
  ifname: string;
  ports: PortMapping[];
  result: Record<string, unknown>;
}

export class CniRuntime {
  constructor(
    readonly list: ConfList,
    readonly pluginDir: string,
  ) {}

  add(id: string, netns: string, ports: PortMapping[] = [], ifname = "eth0"): Attachment {
    let prev: Record<string, unknown> | undefined;
    for (const plugin of this.list.plugins) prev = this.exec("ADD", plugin, { id, netns, ifname, ports }, prev);
    if (!prev) throw new Error(`CNI list ${this.list.name} has no plugins`);
    return { id, netns, ifname, ports, result: prev };
  }

  del(a: Attachment): void {
    for (const plugin of [...this.list.plugins].reverse()) this.exec("DEL", plugin, a, a.result);
  }

  /** The container's first IPv4 address from an ADD result (CNI 1.0 result format). */
  static address(a: Attachment): string {
    const ips = (a.result.ips ?? []) as { address: string }[];
    const v4 = ips.find((i) => i.address.includes("."));
    if (!v4) throw new Error(`CNI ADD for ${a.id} returned no IPv4 address`);
    return v4.address.split("/")[0]!;
  }

  private exec(
    command: "ADD" | "DEL",
    plugin: ConfList["plugins"][number],
    c: { id: string; netns: string; ifname: string; ports: PortMapping[] },
    prevResult: Record<string, unknown> | undefined,
  ): Record<string, unknown> {
    const conf: Record<string, unknown> = { cniVersion: this.list.cniVersion, name: this.list.name, ...plugin };
    if (prevResult) conf.prevResult = prevResult;
    if (plugin.capabilities?.portMappings && c.ports.length) conf.runtimeConfig = { portMappings: c.ports };
    const out = run([`${this.pluginDir}/${plugin.type}`], {
      stdin: JSON.stringify(conf),
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: command,
        CNI_CONTAINERID: c.id,
        CNI_NETNS: c.netns,
        CNI_IFNAME: c.ifname,
        CNI_PATH: this.pluginDir,
      },
      timeoutMs: 60_000,
    });
    if (command === "DEL") return {};
    return JSON.parse(out) as Record<string, unknown>;
  }
}
