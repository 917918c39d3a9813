import { systemClock } from "../core/clock.ts";
import type { RoleObservation } from "../core/cluster-view.ts";
import type { Executor, NodeName } from "../core/executor.ts";
import type { History } from "../core/history.ts";
import { waitFor } from "../core/wait.ts";
import { startWorkload } from "../hosts/pg-workload.ts";
import type { Endpoint } from "../hosts/writes.ts";
import { observeCluster, observeRoles } from "./cluster-look.ts";
import type { FinalLook, RunWorld } from "./driver.ts";

export interface RealClusterOptions {
  executor: Executor;
  nodes: NodeName[];
  /** The built-in client writing while the plan runs; none for `run`. */
  workload?: RealWorkload;
}

export interface RealWorkload {
  /** Through the VIP, as applications should, or through a pooler in front of it. */
  endpoint: Endpoint;
  /** What `endpoint` is, as the history records the writes' target (default "vip"). */
  via?: "vip" | "pooler";
  ratePerSec: number;
  /**
   * A share of the writes sent to one node's own address instead, as an application with a
   * stale connection string does: a second primary's acknowledged writes then show up as lost.
   */
  direct?: { node: NodeName; endpoint: Endpoint; share: number };
}

/** How often the roles are sampled while the plan runs. */
export const SAMPLE_EVERY_MS = 200;
/** How often the final look is taken again while the rejoined standby catches up. */
const SETTLE_POLL_MS = 250;

/**
 * A run's world on real hosts (the lab or production): the wall clock, the roles sampled every
 * SAMPLE_EVERY_MS (a moment between two samples escapes them), and the `pg` client.
 * `origin` (ms since the epoch) is the run's time zero for the history and the samples.
 */
export function realCluster(o: RealClusterOptions, origin = Date.now()): RunWorld {
  const runId = origin.toString(36);
  return {
    executor: o.executor,
    clock: systemClock,
    probeId: (n) => `r${runId}-probe${n}`,
    ...(o.workload ? { startWorkload: clients(o.workload, origin, runId) } : {}),
    watchRoles: () => sample(o.executor, o.nodes, origin),
    runUntil: (ended, _isEnded, boundMs, signal) => waitUntil(ended, boundMs, signal),
    finalLook: (settleMs) => settled(o.executor, o.nodes, settleMs),
  };
}

/** The VIP's client, and the node-address client beside it when there is one. */
function clients(w: RealWorkload, origin: number, runId: string) {
  return (history: History) => {
    const share = w.direct && w.direct.share > 0 ? w.direct.share : 0;
    const started = [
      startWorkload({
        endpoint: w.endpoint,
        ratePerSec: w.ratePerSec * (1 - share),
        target: w.via ?? "vip",
        history,
        origin,
        idPrefix: `r${runId}-`,
      }),
      ...(w.direct && share > 0
        ? [
            startWorkload({
              endpoint: w.direct.endpoint,
              ratePerSec: w.ratePerSec * share,
              target: w.direct.node,
              history,
              origin,
              idPrefix: `r${runId}-${w.direct.node}-`,
              connections: 2,
            }),
          ]
        : []),
    ];
    return { stop: async () => void (await Promise.all(started.map((c) => c.stop()))) };
  };
}

/** Settles when `ended` does, when `signal` aborts, or when `boundMs` has passed. */
function waitUntil(
  ended: Promise<unknown>,
  boundMs: number | null,
  signal?: AbortSignal,
): Promise<void> {
  const bounds = [signal, boundMs === null ? undefined : AbortSignal.timeout(boundMs)].filter(
    (s): s is AbortSignal => s !== undefined,
  );
  if (bounds.length === 0) return ended.then(() => {});
  const stop = AbortSignal.any(bounds);
  return new Promise<void>((resolve) => {
    if (stop.aborted) return resolve();
    stop.addEventListener("abort", () => resolve(), { once: true });
    void ended.then(() => resolve());
  });
}

/** Samples roles until stopped; a failed look is skipped, not guessed. */
function sample(x: Executor, nodes: NodeName[], origin: number): RunWorldRoles {
  const into: RoleObservation[] = [];
  const stopped = new AbortController();
  const loop = waitFor(
    async () => {
      try {
        into.push(await observeRoles(x, nodes, Date.now() - origin));
      } catch {
        // A node that cannot be reached says nothing about roles; the next sample will.
      }
      return stopped.signal.aborted ? true : undefined;
    },
    { clock: systemClock, everyMs: SAMPLE_EVERY_MS, signal: stopped.signal },
  ).catch(() => true);
  return {
    async stop() {
      stopped.abort();
      await loop;
      return into;
    },
  };
}

type RunWorldRoles = ReturnType<RunWorld["watchRoles"]>;

/**
 * The cluster once the standby has replayed everything (or `waitMs` passed): the view the
 * checkers judge. A view that cannot be taken makes the checkers answer `unknown`.
 */
async function settled(x: Executor, nodes: NodeName[], waitMs: number): Promise<FinalLook> {
  let last: FinalLook = { ok: false, error: new Error("the cluster was not looked at") };
  const caughtUp = async (): Promise<FinalLook | undefined> => {
    try {
      const view = await observeCluster(x, nodes);
      last = { ok: true, view };
      return view.nodes.filter((n) => n.running && !n.primary).every((n) => n.caughtUp)
        ? last
        : undefined;
    } catch (error) {
      last = { ok: false, error };
      return undefined;
    }
  };
  return waitFor(caughtUp, {
    clock: systemClock,
    everyMs: SETTLE_POLL_MS,
    deadlineMs: waitMs,
  }).catch(() => last);
}
