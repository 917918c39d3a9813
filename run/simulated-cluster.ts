import type { SimClock } from "../core/clock.ts";
import type { History } from "../core/history.ts";
import type { Rng } from "../core/rng.ts";
import { startSimWorkload } from "../sim/sim-clients.ts";
import { simulatedExecutor } from "../sim/sim-executor.ts";
import { initialWorld, type Topology, World } from "../sim/world.ts";
import { viewOfWorld, watchRoles } from "../sim/world-view.ts";
import type { RunWorld } from "./driver.ts";

export interface SimulatedClusterOptions {
  topology: Topology;
  /** Seeds the clients' choices. */
  rng: Rng;
  /** Seeds how long each operation takes (World.duration); nominal durations without it. */
  latencies?: Rng;
  ratePerSec: number;
  /** Share of writes sent to the primary's own address instead of the VIP. */
  directShare: number;
}

/**
 * A run's world in the simulator: the event-sourced cluster on a simulated clock. Its roles
 * are not sampled but folded from the world's log, so no moment between two samples escapes.
 */
export function simulatedCluster(
  clock: SimClock,
  o: SimulatedClusterOptions,
): RunWorld & { world: World } {
  const world = new World(initialWorld(o.topology), clock, o.latencies);
  return {
    world,
    executor: simulatedExecutor(world),
    clock,
    probeId: (n) => `probe${n}`,
    startWorkload: (history: History) => {
      const stop = startSimWorkload(world, clock, history, o.rng, {
        ratePerSec: o.ratePerSec,
        directShare: o.directShare,
        directTo: o.topology.primary,
        throughPooler: o.topology.pooler === true,
      });
      return { stop };
    },
    watchRoles: () => {
      const roles = watchRoles(world);
      return { stop: async () => roles.stop() };
    },
    runUntil: (_ended, isEnded, boundMs) =>
      clock.runUntilIdle(boundMs ?? Number.POSITIVE_INFINITY, isEnded),
    finalLook: async (settleMs) => {
      // The clock advances only from timer to timer: without one at the end of the settle, an
      // idle world would be looked at at once, its standby not given the time to replay.
      const until = clock.now() + settleMs;
      clock.setTimeout(() => {}, settleMs);
      await clock.runUntilIdle(until);
      return { ok: true, view: viewOfWorld(world) };
    },
  };
}
