import type { ClientOp } from "../core/history.ts";

/**
 * What one client felt, read from its history: its writes by outcome, the write outage, and how
 * long its acknowledged writes took. Pure: the same history always gives the same figures.
 */
export interface WriteFigures {
  acked: number;
  failed: number;
  indeterminate: number;
  outage: Outage;
  /** Latency of the acknowledged writes (invoke to acknowledgement, connecting included);
   * null when none was acknowledged. */
  latencyMs: { p50: number; p99: number; max: number } | null;
}

/**
 * The longest stretch while the client was writing without an acknowledged write: between two
 * of them, from its first write to the first acknowledged one, or from the last acknowledged
 * one to the end of its writing. The last counts, so a run whose writes never came back reports
 * that, not the gap before.
 */
export interface Outage {
  ms: number;
  /** Where it was (ms on the history's clock); null when the client wrote nothing. */
  from: number | null;
  to: number | null;
  /** false: writes did not resume, the client's last completed write was not acknowledged. */
  resumed: boolean;
}

/** The client's writes (sent to `target`, or anywhere); the plan's own probes are not counted. */
export function writeFigures(ops: readonly ClientOp[], target?: ClientOp["target"]): WriteFigures {
  const mine = ops.filter((o) => !o.probe && (target === undefined || o.target === target));
  const count = (type: ClientOp["type"]) => mine.filter((o) => o.type === type).length;
  return {
    acked: count("ok"),
    failed: count("fail"),
    indeterminate: count("info"),
    outage: outage(mine),
    latencyMs: latency(mine),
  };
}

/**
 * The longest stretch without an acknowledged write (sent to `target`) that overlaps `window`:
 * the switchover's own outage, apart from a stall elsewhere in the run (a lab node's package
 * upgrade slowing the other's disk, say). `resumed` is the whole run's.
 */
export function outageDuring(
  ops: readonly ClientOp[],
  target: ClientOp["target"],
  window: Window,
): Outage {
  return outage(
    ops.filter((o) => !o.probe && o.target === target),
    window,
  );
}

function outage(ops: readonly ClientOp[], window?: Window): Outage {
  if (ops.length === 0) return { ms: 0, from: null, to: null, resumed: true };
  // Not Math.min(...ts): a long run's history has more ops than a call has room for arguments.
  const start = ops.reduce((t, o) => Math.min(t, o.t), Number.POSITIVE_INFINITY);
  const end = ops.reduce((t, o) => Math.max(t, o.t), Number.NEGATIVE_INFINITY);
  const acks = ops
    .filter((o) => o.type === "ok")
    .map((o) => o.t)
    .sort((a, b) => a - b);
  const edges = [start, ...acks, end];
  let worst = { ms: -1, from: start, to: end };
  for (let i = 1; i < edges.length; i++) {
    const from = edges[i - 1] ?? start;
    const to = edges[i] ?? end;
    const overlaps = window === undefined || (from <= window.to && to >= window.from);
    if (overlaps && to - from > worst.ms) worst = { ms: to - from, from, to };
  }
  const lastAck = acks.at(-1);
  const resumed =
    lastAck !== undefined &&
    !ops.some((o) => (o.type === "fail" || o.type === "info") && o.t > lastAck);
  return { ...worst, resumed };
}

/** A stretch of the run (ms on the history's clock). */
export interface Window {
  from: number;
  to: number;
}

/**
 * The latency of the acknowledged writes (sent to `target`) that were in flight at some moment
 * of `window`: invoked before its end, acknowledged after its start.
 */
export function latencyDuring(
  ops: readonly ClientOp[],
  target: ClientOp["target"],
  window: Window,
): WriteFigures["latencyMs"] {
  return latency(
    ops.filter((o) => !o.probe && o.target === target),
    window,
  );
}

function latency(ops: readonly ClientOp[], window?: Window): WriteFigures["latencyMs"] {
  const invoked = new Map<string, number>();
  for (const o of ops) if (o.type === "invoke") invoked.set(o.id, o.t);
  const inWindow = (from: number, to: number) =>
    window === undefined || (from <= window.to && to >= window.from);
  const took = ops
    .flatMap((o) => {
      const at = o.type === "ok" ? invoked.get(o.id) : undefined;
      return at === undefined || !inWindow(at, o.t) ? [] : [o.t - at];
    })
    .sort((a, b) => a - b);
  if (took.length === 0) return null;
  return { p50: quantile(took, 0.5), p99: quantile(took, 0.99), max: took.at(-1) ?? 0 };
}

/**
 * When the switchover ran: from the first step of the plan's critical window the run entered
 * (the VIP going down) to the next step outside it (the write through the VIP verified), or to
 * `end` when the run never left it. Null when the run never got there.
 */
export function switchoverWindow(
  windowSteps: readonly string[],
  steps: ReadonlyArray<{ name: string; t: number }>,
  end: number,
): Window | null {
  const first = steps.findIndex((s) => windowSteps.includes(s.name));
  const start = steps[first];
  if (!start) return null;
  const after = steps.slice(first + 1).find((s) => !windowSteps.includes(s.name));
  return { from: start.t, to: after?.t ?? Math.max(end, start.t) };
}

/** The nearest-rank quantile of sorted values: a figure some write actually took. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

/** The outage for a person: "219 ms", or "6.1 s, writes did not resume". */
export function describeOutage(
  o: Pick<Outage, "ms" | "resumed">,
  format: (ms: number) => string,
): string {
  return o.resumed ? format(o.ms) : `${format(o.ms)}, writes did not resume`;
}

/** Milliseconds as seconds with one decimal: the fault tables' and the HTML report's unit. */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
