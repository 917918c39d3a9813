import type { ClusterView, RoleObservation } from "../core/cluster-view.ts";
import {
  appliedWrites,
  apply,
  lastEnd,
  replayedEnd,
  type SimNode,
  type WorldEvent,
  type WorldState,
} from "./model.ts";
import type { World } from "./world.ts";

/**
 * Who accepted writes and who held the VIP, at every change, folded from the world's log: a
 * primary started by the host itself (the package scripts, a boot) counts as soon as it runs.
 * A frozen primary still counts: it takes writes again the moment it thaws.
 */
export function roleTimeline(initial: WorldState, log: readonly WorldEvent[]): RoleObservation[] {
  const roles = roleObserver(initial);
  roles.observe(0);
  for (const e of log) {
    apply(initial, e);
    roles.observe(e.t);
  }
  return roles.seen;
}

/**
 * The same timeline, observed as the live world logs its events: what a simulated run's role
 * watcher gives, without folding the whole log a second time at the end.
 */
export function watchRoles(world: World): { stop(): RoleObservation[] } {
  const roles = roleObserver(world.state);
  roles.observe(world.clock.now());
  const unsubscribe = world.onEvent((e) => roles.observe(e.t));
  return {
    stop: () => {
      unsubscribe();
      return roles.seen;
    },
  };
}

function roleObserver(s: WorldState) {
  const nodes = Object.values(s.nodes);
  const seen: RoleObservation[] = [];
  let last = "";
  const observe = (t: number) => {
    let key = "";
    for (const n of nodes) key += `${primary(n) ? "P" : "-"}${n.vip ? "V" : "-"}`;
    if (key === last) return;
    last = key;
    const primaries = nodes.filter(primary).map((n) => n.name);
    seen.push({ t, primaries, vipHolders: nodes.filter((n) => n.vip).map((n) => n.name) });
  };
  return { seen, observe };
}

function primary(n: SimNode): boolean {
  return n.process !== "stopped" && !n.inRecovery && n.hasData;
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
    ...(world.state.pooler ? { poolerPaused: world.state.pooler.paused } : {}),
  };
}
