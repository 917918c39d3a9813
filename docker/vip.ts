import type Docker from "dockerode";
import { execInContainer } from "./exec.ts";
import { inspectContainer } from "./nodes.ts";
import type { Progress } from "./progress.ts";
import { NODE_NAMES, type NodeName, type Topology } from "./topology.ts";

/** The virtual IP: a second address on a node's eth0, announced with gratuitous ARP. */
export class VipError extends Error {
  override readonly name = "VipError";
}

const DEVICE = "eth0";
const DEADLINE_MS = 15_000;

/** The exact host commands (root) that move the VIP, as a person would type them. */
export const vipCommands = (vip: string) => ({
  show: ["ip", "-o", "-4", "addr", "show", "dev", DEVICE],
  add: ["ip", "addr", "add", `${vip}/24`, "dev", DEVICE],
  announce: ["arping", "-U", "-c", "2", "-I", DEVICE, vip],
  remove: ["ip", "addr", "del", `${vip}/24`, "dev", DEVICE],
});

async function root(
  docker: Docker,
  container: string,
  cmd: string[],
  what: string,
): Promise<string> {
  const result = await execInContainer(docker, container, cmd, {
    user: "root",
    deadlineMs: DEADLINE_MS,
  });
  if (result.exitCode !== 0) {
    throw new VipError(
      `${what} on ${container} failed (${result.timedOut ? "timeout" : `exit ${result.exitCode}`}): ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

/** The nodes whose running container has the VIP on eth0 (more than one is a fault). */
export async function vipHolders(docker: Docker, topology: Topology): Promise<NodeName[]> {
  const holders: NodeName[] = [];
  for (const name of NODE_NAMES) {
    const container = topology.nodes[name].container;
    if (!(await inspectContainer(docker, container))?.State.Running) continue;
    const out = await root(docker, container, vipCommands(topology.vip).show, "ip addr show");
    if (out.includes(` ${topology.vip}/`)) holders.push(name);
  }
  return holders;
}

/** Puts the VIP on `primary` only: removes it elsewhere first, then adds and announces it. */
export async function ensureVipOn(
  docker: Docker,
  topology: Topology,
  primary: NodeName,
  progress: Progress,
): Promise<void> {
  const commands = vipCommands(topology.vip);
  const holders = await vipHolders(docker, topology);
  for (const other of holders.filter((h) => h !== primary)) {
    progress(`removing VIP ${topology.vip} from ${other} (not the primary)`);
    await root(docker, topology.nodes[other].container, commands.remove, "ip addr del");
  }
  const container = topology.nodes[primary].container;
  if (!holders.includes(primary)) {
    progress(`adding VIP ${topology.vip} on ${primary}`);
    await root(docker, container, commands.add, "ip addr add");
  }
  progress(`announcing VIP ${topology.vip} from ${primary} (gratuitous ARP)`);
  await root(docker, container, commands.announce, "arping -U");
}
