import type Docker from "dockerode";
import { openContainerShell } from "../docker/shell-session.ts";
import { labCluster, NODE_NAMES, PG, type Topology } from "../docker/topology.ts";
import type { Executor } from "./executor.ts";
import { type CommandRunner, shellExecutor } from "./shell.ts";
import { ShellSessions } from "./shell-session.ts";

/**
 * The Executor against the Docker lab: the host commands run through `docker exec` in each node's
 * container, and clients reach Postgres on the lab network, through the VIP or a node's address.
 */
export function dockerExecutor(docker: Docker, topology: Topology): Executor & { close(): void } {
  const labNode = (name: string) => {
    const n = NODE_NAMES.find((x) => x === name);
    if (!n) throw new Error(`the lab has no node "${name}" (${NODE_NAMES.join(", ")})`);
    return topology.nodes[n];
  };
  // A shell kept open per node and user: a fresh `docker exec` costs ~100 ms, on the outage path.
  const sessions = new ShellSessions((container, user) =>
    openContainerShell(docker, container, user),
  );
  const run: CommandRunner = (node, cmd, deadlineMs) =>
    sessions.run(labNode(node.name).container, cmd.user, cmd.script, deadlineMs);
  const cluster = labCluster(topology);
  const executor = shellExecutor({
    cluster,
    run,
    endpoint: (target) => ({
      host: target === "vip" ? topology.vip : labNode(target).address,
      port: PG.port,
      user: PG.superuser,
      database: cluster.database,
    }),
  });
  return Object.assign(executor, { close: () => sessions.closeAll() });
}
