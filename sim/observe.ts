import type { ClusterView, RoleObservation } from "../core/cluster-view.ts";
import {
  appliedWrites,
  apply,
  lastEnd,
  replayedEnd,
  type WorldEvent,
  type WorldState,
} from "./model.ts";
import type { World } from "./world.ts";

/**
 * Who accepted writes and who held the VIP, at every change, folded from the world's log.
 * A frozen primary still counts: it takes writes again the moment it thaws.
 */
export function roleTimeline(initial: WorldState, log: readonly WorldEvent[]): RoleObservation[] {
  const out: RoleObservation[] = [];
  let last = "";
  const observe = (t: number) => {
    const nodes = Object.values(initial.nodes);
    const primaries = nodes
      .filter((n) => n.process !== "stopped" && !n.inRecovery && n.hasData)
      .map((n) => n.name);
    const vipHolders = nodes.filter((n) => n.vip).map((n) => n.name);
    const key = `${primaries}|${vipHolders}`;
    if (key !== last) out.push({ t, primaries, vipHolders });
    last = key;
  };
  observe(0);
  for (const e of log) {
    apply(initial, e);
    observe(e.t);
  }
  return out;
}

/** The cluster as a checker sees it at the end of a simulated run. */
export function viewOfWorld(world: World): ClusterView {
  world.sync();
  const nodes = Object.values(world.state.nodes);
  return {
    nodes: nodes.map((n) => {
      const up = n.upstream === null ? undefined : world.state.nodes[n.upstream];
      const running = n.process === "running" && !n.frozen;
      const streaming = running && n.inRecovery && up !== undefined && world.canStream(n, up);
      return {
        name: n.name,
        running,
        primary: running && !n.inRecovery,
        version: n.installed,
        timeline: n.control.timeline,
        streamingFrom: streaming ? (up?.name ?? null) : null,
        caughtUp: streaming && up !== undefined && replayedEnd(n) === lastEnd(up),
        vip: n.vip,
        writes: appliedWrites(n),
      };
    }),
  };
}
