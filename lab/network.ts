import type Docker from "dockerode";
import { EnvironmentError } from "../core/errors.ts";
import type { Progress } from "../core/progress.ts";
import { hostRoutes, overlaps, parseCidr } from "./subnets.ts";
import { LAB_LABEL, LAB_LABELS, NETWORK_NAME, type Topology } from "./topology.ts";

export class LabNetworkError extends EnvironmentError {
  override readonly name = "LabNetworkError";
}

/** The host-side bridge of the lab network (so `ip addr` on the host shows what it is). */
const BRIDGE_NAME = "pgswitchover0";

/** Creates the lab network, or checks that the existing one is ours and has the lab's subnet. */
export async function ensureLabNetwork(
  docker: Docker,
  topology: Topology,
  progress: Progress,
): Promise<void> {
  const existing = await findNetwork(docker);
  if (existing) {
    checkExisting(existing, topology);
    progress(`network ${NETWORK_NAME} (${topology.subnet}) present`);
    return;
  }
  await refuseCollisions(docker, topology.subnet);
  progress(`creating network ${NETWORK_NAME} (${topology.subnet}, bridge ${BRIDGE_NAME})`);
  await docker.createNetwork({
    Name: NETWORK_NAME,
    Driver: "bridge",
    CheckDuplicate: true,
    Labels: LAB_LABELS,
    Options: { "com.docker.network.bridge.name": BRIDGE_NAME },
    IPAM: {
      Driver: "default",
      Config: [
        { Subnet: topology.subnet, Gateway: topology.gateway, IPRange: topology.dynamicRange },
      ],
    },
  });
}

async function findNetwork(docker: Docker): Promise<Docker.NetworkInspectInfo | undefined> {
  const networks = await docker.listNetworks({ filters: { name: [NETWORK_NAME] } });
  // The name filter matches substrings; only the exact name is ours.
  return networks.find((n) => n.Name === NETWORK_NAME);
}

function checkExisting(network: Docker.NetworkInspectInfo, topology: Topology): void {
  if (network.Labels?.[LAB_LABEL] !== "1") {
    throw new LabNetworkError(
      `a Docker network named ${NETWORK_NAME} exists without the ${LAB_LABEL} label: ` +
        "it is not the lab's, remove or rename it yourself",
    );
  }
  const subnets = (network.IPAM?.Config ?? []).map((c) => c.Subnet);
  if (!subnets.includes(topology.subnet)) {
    throw new LabNetworkError(
      `network ${NETWORK_NAME} has subnet ${subnets.join(", ")}, not ${topology.subnet}: ` +
        "run `switchover lab down` first",
    );
  }
}

/** The lab's /24 must not overlap a route of this machine or another Docker network. */
async function refuseCollisions(docker: Docker, subnet: string): Promise<void> {
  const ours = parseCidr(subnet);
  if (!ours) throw new LabNetworkError(`bad lab subnet ${subnet}`);
  const routes = hostRoutes().map((r) => ({ what: `host route via ${r.iface}`, cidr: r.cidr }));
  const networks = (await docker.listNetworks()).flatMap((n) =>
    (n.IPAM?.Config ?? []).map((c) => ({ what: `Docker network ${n.Name}`, cidr: c.Subnet ?? "" })),
  );
  const clash = [...routes, ...networks].find((r) => {
    const range = parseCidr(r.cidr);
    return range !== null && overlaps(range, ours);
  });
  if (clash) {
    throw new LabNetworkError(
      `lab subnet ${subnet} overlaps ${clash.what} (${clash.cidr}): ` +
        "set PG_SWITCHOVER_LAB_SUBNET=a.b.c.0/24 to a free range",
    );
  }
}

/** Removes the lab network if present; returns its name when something was removed. */
export async function removeLabNetworks(docker: Docker): Promise<string[]> {
  const networks = await docker.listNetworks({ filters: { label: [`${LAB_LABEL}=1`] } });
  for (const network of networks) await docker.getNetwork(network.Id).remove();
  return networks.map((n) => n.Name);
}
