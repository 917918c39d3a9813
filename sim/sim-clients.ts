import type { SimClock } from "../core/clock.ts";
import type { NodeName } from "../core/executor.ts";
import type { History } from "../core/history.ts";
import type { Rng } from "../core/rng.ts";
import type { World, WriteOutcome } from "./world.ts";

export interface SimWorkloadOptions {
  ratePerSec: number;
  /** Share of writes sent to this node's own address instead of the VIP (a misconfigured job). */
  directShare: number;
  directTo: NodeName;
  /** The other writes go through the pooler in front of the VIP, not the VIP itself. */
  throughPooler?: boolean;
}

/** Simulated clients writing unique ids at a steady rate, each write recorded in the history. */
export function startSimWorkload(
  world: World,
  clock: SimClock,
  history: History,
  rng: Rng,
  o: SimWorkloadOptions,
): () => void {
  const period = 1000 / o.ratePerSec;
  let n = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    const id = `w${n++}`;
    const direct = rng.chance(o.directShare);
    const target = direct ? o.directTo : o.throughPooler ? "pooler" : "vip";
    history.add({ type: "invoke", id, target, t: clock.now() });
    const done = (r: WriteOutcome) => {
      const t = clock.now();
      if (r.type === "ok") history.add({ type: "ok", id, target, t, node: r.node });
      else history.add({ type: r.type, id, target, t, reason: r.reason });
    };
    if (target === "pooler") world.writeThroughPooler(id, done);
    else done(world.write(target, id));
    clock.setSyncTimeout(tick, period);
  };
  tick();
  return () => {
    running = false;
    world.abandonHeld("still held by the paused pooler when the clients stopped");
  };
}
