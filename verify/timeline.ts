import type { RoleObservation } from "../core/cluster-view.ts";
import type { NodeName } from "../core/executor.ts";
import type { ClientOp } from "../core/history.ts";
import type { JournalEntry } from "../plan/journal.ts";

/** What a run looked like over time, for a person: the nodes, the client's writes, the gaps. */
export interface RunTimeline {
  /** When the run started (ms since the epoch); every `t` below is ms since then. */
  origin: number;
  steps: Array<{ name: string; t: number }>;
  /** Each node as the role sampler saw it; a node that did not answer is down. */
  samples: Array<{ t: number; nodes: Record<NodeName, NodeSample> }>;
  /** The workload's writes per BUCKET_MS: acknowledged, and failed or indeterminate. */
  writes: Array<{ t: number; ok: number; failed: number }>;
  /** Stretches longer than GAP_MS without an acknowledged write, the last one up to the end of
   * the client's writing when writes did not come back. */
  gaps: Array<{ from: number; to: number }>;
}

export interface NodeSample {
  role: "primary" | "standby" | "down";
  vip: boolean;
  version: string;
}

export const BUCKET_MS = 250;
export const GAP_MS = 500;

export function runTimeline(
  origin: number,
  entries: readonly JournalEntry[],
  observations: readonly RoleObservation[],
  ops: readonly ClientOp[],
): RunTimeline {
  const steps = entries.flatMap((e) =>
    e.kind === "transition" ? [{ name: e.step, t: e.t - origin }] : [],
  );
  const samples = observations.map((o) => ({
    t: o.t,
    nodes: Object.fromEntries(
      Object.entries(o.versions ?? {}).map(([name, version]) => [
        name,
        {
          role: o.primaries.includes(name)
            ? ("primary" as const)
            : o.running?.includes(name)
              ? ("standby" as const)
              : ("down" as const),
          vip: o.vipHolders.includes(name),
          version,
        },
      ]),
    ),
  }));
  const buckets = new Map<number, { t: number; ok: number; failed: number }>();
  const gaps: RunTimeline["gaps"] = [];
  let last: number | undefined;
  let first: number | undefined;
  let end: number | undefined;
  for (const op of ops) {
    if (op.probe || op.type === "invoke") continue;
    first ??= op.t;
    end = Math.max(end ?? op.t, op.t);
    const t = Math.floor(op.t / BUCKET_MS) * BUCKET_MS;
    const b = buckets.get(t) ?? { t, ok: 0, failed: 0 };
    buckets.set(t, b);
    if (op.type !== "ok") {
      b.failed++;
      continue;
    }
    b.ok++;
    if (last !== undefined && op.t - last > GAP_MS) gaps.push({ from: last, to: op.t });
    last = op.t;
  }
  const since = last ?? first;
  if (since !== undefined && end !== undefined && end - since > GAP_MS) {
    gaps.push({ from: since, to: end });
  }
  return { origin, steps, samples, writes: [...buckets.values()], gaps };
}
