import { type HostCommands, type HostSpec, hostCommands } from "../hosts/commands.ts";
import { labCluster, type NodeName, type Topology } from "./topology.ts";

/**
 * A lab node as the host commands address it: its container, its HostSpec, and the commands of
 * hosts/commands.ts for it, so that the lab runs the very lines a switchover runs.
 */
export interface LabHost {
  name: NodeName;
  container: string;
  spec: HostSpec;
  commands: HostCommands;
}

export function labHost(topology: Topology, name: NodeName): LabHost {
  const cluster = labCluster(topology);
  const spec = cluster.nodes.find((h) => h.name === name);
  if (!spec) throw new Error(`the lab's cluster has no node "${name}"`);
  return {
    name,
    container: topology.nodes[name].container,
    spec,
    commands: hostCommands(cluster, spec),
  };
}
