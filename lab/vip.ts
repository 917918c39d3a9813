import type Docker from "dockerode";
import { EnvironmentError } from "../core/errors.ts";
import type { Progress } from "../core/progress.ts";
import { type HostCommand, vipBound } from "../hosts/commands.ts";
import { describeFailure, runHostCommand } from "../hosts/transports/docker-exec.ts";
import { type LabHost, labHost } from "./hosts.ts";
import { inspectContainer } from "./nodes.ts";
import { labCluster, NODE_NAMES, type NodeName, type Topology } from "./topology.ts";

/** The virtual IP: a second address on a node's eth0, announced with gratuitous ARP. */
export class VipError extends EnvironmentError {
  override readonly name = "VipError";
}

const DEADLINE_MS = 15_000;

/** Like postgres.ts's mustRun, but a failure is a VipError. */
async function mustRunVip(
  docker: Docker,
  host: LabHost,
  what: string,
  cmd: HostCommand,
): Promise<string> {
  const result = await runHostCommand(docker, host.container, cmd, DEADLINE_MS);
  if (result.exitCode === 0) return result.stdout;
  throw new VipError(`${what} on ${host.container} ${describeFailure(result, DEADLINE_MS)}`);
}

/** The nodes whose running container has the VIP on eth0 (more than one is a fault). */
export async function vipHolders(docker: Docker, topology: Topology): Promise<NodeName[]> {
  const cluster = labCluster(topology);
  const holders: NodeName[] = [];
  for (const name of NODE_NAMES) {
    const host = labHost(topology, name);
    if (!(await inspectContainer(docker, host.container))?.State.Running) continue;
    const out = await mustRunVip(docker, host, "ip addr show", host.commands.vipShow);
    if (vipBound(cluster, out)) holders.push(name);
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
  const holders = await vipHolders(docker, topology);
  for (const other of holders.filter((h) => h !== primary)) {
    progress(`removing VIP ${topology.vip} from ${other} (not the primary)`);
    const host = labHost(topology, other);
    await mustRunVip(docker, host, "ip addr del", host.commands.vipDown);
  }
  if (!holders.includes(primary)) progress(`adding VIP ${topology.vip} on ${primary}`);
  progress(`announcing VIP ${topology.vip} from ${primary} (gratuitous ARP)`);
  const host = labHost(topology, primary);
  await mustRunVip(docker, host, "ip addr add, arping -U", host.commands.vipUp(true));
}
