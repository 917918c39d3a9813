import type Docker from "dockerode";
import type { Executor } from "../core/executor.ts";
import type { Timeouts } from "../core/timeouts.ts";
import { type CommandRunner, shellExecutor } from "../hosts/host-executor.ts";
import { ShellSessions } from "../hosts/shell-session.ts";
import { openContainerShell } from "../hosts/transports/docker-shell.ts";
import { labCluster, labNode, PG, type Topology } from "./topology.ts";

/**
 * The Executor against the Docker lab: the host commands run through `docker exec` in each node's
 * container, and clients reach Postgres on the lab network, through the VIP or a node's address.
 * `timeouts`: the run's (its commands' waits and deadlines are the plan's).
 */
export function dockerExecutor(
  docker: Docker,
  topology: Topology,
  timeouts: Timeouts,
): Executor & { close(): void; run: CommandRunner } {
  // A shell kept open per node and user: a fresh `docker exec` costs ~100 ms, on the outage path.
  const sessions = new ShellSessions();
  const run: CommandRunner = (node, cmd, deadlineMs, signal) => {
    const { container } = labNode(topology, node.name);
    return sessions.run(
      container,
      cmd.user,
      cmd.script,
      deadlineMs,
      () => openContainerShell(docker, container, cmd.user),
      signal,
    );
  };
  const cluster = labCluster(topology);
  const executor = shellExecutor({
    cluster,
    run,
    timeouts,
    endpoint: (target) => ({
      host: target === "vip" ? topology.vip : labNode(topology, target).address,
      port: PG.port,
      user: PG.superuser,
      database: cluster.database,
    }),
  });
  return Object.assign(executor, { close: () => sessions.closeAll(), run });
}
