import type { NodeName } from "./executor.ts";

/** What a checker needs to know of one node at the end of a run, however it was observed. */
export interface NodeView {
  name: NodeName;
  /** The server runs and answers. */
  running: boolean;
  /** Running and not in recovery: it accepts writes. */
  primary: boolean;
  version: string;
  timeline: number;
  /** Standby only: the node it streams from right now, or null. */
  streamingFrom: NodeName | null;
  /** Standby only: it has replayed everything its upstream has. */
  caughtUp: boolean;
  vip: boolean;
  /** Ids of the rows this node holds. */
  writes: Set<string>;
}

export interface ClusterView {
  nodes: NodeView[];
  /** Whether a pooler in front of the VIP is left paused; absent where it was not observed. */
  poolerPaused?: boolean;
}

/** One moment of the run: which nodes accepted writes and which held the VIP. */
export interface RoleObservation {
  t: number;
  primaries: NodeName[];
  vipHolders: NodeName[];
  /** The nodes whose server answered, and each node's package version ("?" when unknown). */
  running?: NodeName[];
  versions?: Record<NodeName, string>;
}

export function runningPrimaries(c: ClusterView): NodeView[] {
  return c.nodes.filter((n) => n.running && n.primary);
}
