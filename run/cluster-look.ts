import type { ClusterView, NodeView, RoleObservation } from "../core/cluster-view.ts";
import {
  call,
  type Executor,
  type ExecutorCall,
  type NodeName,
  type ReplicationStatus,
} from "../core/executor.ts";

interface Seen {
  name: NodeName;
  running: boolean;
  version: string;
  vip: boolean;
  replication: ReplicationStatus | null;
}

/** What `look` asks of the executor: for `switchover plan` and the dry run. */
function lookCalls(name: NodeName): ExecutorCall[] {
  return [call("status", name), { ...call("replication", name), when: "if it runs" }];
}

/** The calls of one observeRoles sample (the nodes are looked at side by side). */
export function observeRolesCalls(nodes: readonly NodeName[]): ExecutorCall[] {
  return nodes.flatMap(lookCalls);
}

/** The calls of one observeCluster look. */
export function observeClusterCalls(nodes: readonly NodeName[]): ExecutorCall[] {
  return nodes.flatMap((n) => [...lookCalls(n), { ...call("writtenIds", n), when: "if it runs" }]);
}

/** One look at a node through the executor; a node that does not answer is down. */
async function look(x: Executor, name: NodeName): Promise<Seen> {
  const st = await x.status(name);
  if (!st.ok) return { name, running: false, version: "?", vip: false, replication: null };
  const r = st.running ? await x.replication(name) : null;
  return {
    name,
    running: st.running && r?.ok === true,
    version: st.version,
    vip: st.vipBound,
    replication: r?.ok ? r : null,
  };
}

/** Who accepts writes and who holds the VIP right now: one sample of the split-brain timeline. */
export async function observeRoles(
  x: Executor,
  nodes: readonly NodeName[],
  t: number,
): Promise<RoleObservation> {
  const seen = await Promise.all(nodes.map((n) => look(x, n)));
  return {
    t,
    primaries: seen.filter((s) => s.replication?.inRecovery === false).map((s) => s.name),
    vipHolders: seen.filter((s) => s.vip).map((s) => s.name),
    running: seen.filter((s) => s.running).map((s) => s.name),
    versions: Object.fromEntries(seen.map((s) => [s.name, s.version])),
  };
}

/**
 * The real cluster as a checker sees it: roles, versions, timelines, who streams from whom, and
 * the ids each running node holds. A standby is caught up when it has replayed all its primary
 * has written (the workload has stopped by then).
 */
export async function observeCluster(
  x: Executor,
  nodes: readonly NodeName[],
): Promise<ClusterView> {
  const seen = await Promise.all(nodes.map((n) => look(x, n)));
  const views = await Promise.all(
    seen.map(async (s): Promise<NodeView> => {
      const ids = s.running ? await x.writtenIds(s.name) : null;
      // A running node whose rows cannot be read leaves the checkers nothing to decide on.
      if (ids && !ids.ok) throw new Error(`cannot read the written ids: ${ids.reason}`);
      const r = s.replication;
      const upstream = r?.inRecovery
        ? seen.find((p) =>
            p.replication?.standbys.some((b) => b.client === s.name && b.state === "streaming"),
          )
        : undefined;
      const upLsn = upstream?.replication?.lsn;
      return {
        name: s.name,
        running: s.running,
        primary: r?.inRecovery === false,
        version: s.version,
        timeline: r?.timeline ?? 0,
        streamingFrom: r?.streaming && upstream ? upstream.name : null,
        caughtUp: upLsn !== undefined && r?.replayLsn !== null && (r?.replayLsn ?? 0) >= upLsn,
        vip: s.vip,
        writes: new Set(ids?.ok ? ids.ids : []),
      };
    }),
  );
  return { nodes: views };
}
