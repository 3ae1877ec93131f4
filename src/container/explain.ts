// What `run` and `rm` would do to the kernel, as operations (src/plan/ops.ts), for `tsnet explain`:
// the same checks as the commands, the state read as it is now (the next free addresses, the
// bridge and tsnet's table, the host ports), the same planners, and nothing written: no record,
// name, lease, namespace, cgroup or socket left behind.
import { TsnetError } from "../errors/errors.ts";
import { aimPorts } from "../ip/port.ts";
import { planBringUp } from "../network/networks.ts";
import { releasePorts, reservePorts } from "../network/reserve.ts";
import { containerOwner, planEndpoint } from "../network/sandbox.ts";
import { parseMac } from "../network/bridge.ts";
import { staticAddresses } from "../network/sandbox.ts";
import { planPublish, planTeardown, planUnpublish } from "../plan/attach.ts";
import type { Op } from "../plan/ops.ts";
import { newId, proposeName, type ContainerRecord } from "../state/containers.ts";
import { netnsName } from "./attach.ts";
import { OBJECT_ERROR, findContainerRef, isRunning, mustFind } from "./control.ts";
import { checkCreate, namespaceOutlives, portOwner, publishedFor, resolveJoin, type CreateOptions } from "./lifecycle.ts";

/** Operations, and lines saying what the script leaves out or what was chosen for it. */
export interface Explained {
  ops: Op[];
  notes: string[];
}

/** `tsnet run` as operations: its namespace, its network's bring-up, its endpoint, its ports. */
export function planRun(o: CreateOptions): Explained {
  const notes: string[] = [];
  const { net, ports } = checkCreate(o, true);
  const id = newId();
  const name = proposeName(o.name);
  if (o.name === undefined) notes.push(`the container's name, ${name}, was made up as run would make one up (free now; run picks its own)`);
  if (o.detached) notes.push("-d: the command runs under tsnet's supervisor, which keeps the container's namespace and resolver");
  if (o.rm) notes.push("--rm: the container is forgotten once its command exits (tsnet explain rm shows its teardown)");
  if (o.mode === "host") {
    notes.push("--network host: the command runs in the host's own network namespace; there are no kernel steps");
    return { ops: [], notes };
  }
  if (o.mode === "container") {
    const join = resolveJoin(o.join!);
    notes.push(`--network container:${o.join}: the command joins the namespace ${join.netns}; there are no kernel steps`);
    return { ops: [], notes };
  }
  const netns = `tsnet-${name}`;
  const ops: Op[] = [{ op: "netns-add", name: netns, why: `the container's own network namespace, ${netns}` }];
  if (!net) {
    ops.push({ op: "link-set", netns, dev: "lo", up: true, why: "lo up: the only link of a container on --network none" });
    return { ops, notes };
  }
  // The host ports are bound for a moment and let go, as run would bind them: a port someone
  // holds is refused here as there, and a port left to the kernel (-p 80) gets a number.
  const held = reservePorts(ports, id);
  const chosen = held.map((r) => r.port);
  releasePorts(held);
  if (ports.some((p) => p.hostPort === 0)) notes.push("a host port left to the kernel is one it picked now; run asks it again");
  ops.push(...planBringUp(net));
  const rec = { id, name, endpoints: [] } as unknown as ContainerRecord;
  const { plan, ips } = planEndpoint(containerOwner(rec), net, { netns, fresh: true, loUp: true }, {
    ...staticAddresses(net, o.ip, o.ip6),
    mac: o.mac === undefined ? undefined : parseMac(o.mac),
    aliases: o.aliases,
    hairpin: chosen.length > 0,
  });
  ops.push(...plan.ops);
  ops.push(...planPublish(portOwner(rec), aimPorts(chosen, ips)).ops);
  notes.push("not in the script: the container's resolver (127.0.0.11, and its table inet tsnet_dns inside the namespace), its cgroup, /etc files and the command itself");
  return { ops, notes };
}

/** `tsnet rm` of one container: its teardown as its manager does it (ports, then the namespace). */
export function planRemove(ref: string, force: boolean): Explained {
  const rec = force ? findContainerRef(ref) : mustFind(ref);
  if (!rec) return { ops: [], notes: [`${ref}: no such container (rm -f says nothing of it)`] };
  if (!isRunning(rec)) {
    return { ops: [], notes: [`${rec.name} has exited: its network is gone already; rm forgets its record and log`] };
  }
  if (!force) throw new TsnetError(`cannot remove running container ${rec.name}: stop it first, or use tsnet rm -f`, OBJECT_ERROR);
  const notes = [`${rec.name} runs: -f kills its processes (SIGKILL), then its manager takes its network down`];
  const ops: Op[] = [];
  if (rec.ports?.length) ops.push(...planUnpublish(portOwner(rec), publishedFor(rec)).ops);
  const veths = (rec.endpoints ?? []).filter((e) => e.vethMade !== false).map((e) => e.hostVeth);
  ops.push(...planTeardown(rec.netns && netnsName(rec.netns), veths, namespaceOutlives(rec)).ops);
  return { ops, notes };
}
