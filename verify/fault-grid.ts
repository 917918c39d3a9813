import { simTimeouts } from "../core/timeouts.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { detours, faultFreePath } from "./critical-window.ts";
import {
  COMMAND_FAULTS,
  type FaultKind,
  type Moment,
  POOLER_FAULTS,
  type SimFault,
} from "./sim-faults.ts";

/**
 * Every kind of fault at one step, at each of `fractions` of it (its start: before its first
 * command lands; halfway), each one that lasts for a blip, for just longer than the step's
 * deadline (one attempt is lost), for longer than the retries (the step must give up) and than
 * two steps' retries (so must the step its failure leads to): what a mutant of that step is
 * tried with, rather than hoping a random draw lands there. A step the fault-free run does not
 * go through is reached by a diversion first: the first command of a step whose failure leads
 * there hangs (with the faults at the step's start) or runs and loses its reply (with the
 * others), the two ways a step fails with or without its effect. The standby
 * lags throughout, as asynchronous replication under load does: a write is lost only if it was
 * acknowledged and not yet shipped (the scenarios simulate draws try it without).
 */
export function faultGrid(
  spec: PlanSpec,
  step: string,
  pooler: boolean,
  fractions: readonly number[] = [0, 0.5],
): SimFault[][] {
  const s = spec.steps[step];
  if (!s) return [];
  const via = faultFreePath(spec).includes(step) ? [] : (detours(spec).get(step) ?? null);
  if (via === null) return [];
  const deadline = simTimeouts[s.deadline ?? "command"];
  const persist = simTimeouts.persist;
  const lengths = [500, deadline + 500, Math.round(persist * 1.1), Math.round(persist * 2.2)];
  const kinds = (Object.keys(AT) as FaultKind[]).filter(
    (k) => pooler || !POOLER_FAULTS.includes(k),
  );
  const faults = fractions.flatMap((fraction) =>
    kinds.flatMap((k) => lengths.flatMap((ms) => AT[k]({ step, fraction }, ms))),
  );
  const unique = [...new Map(faults.map((f) => [JSON.stringify(f), f])).values()];
  const lag = lagging(spec);
  return unique.flatMap((f, i) => {
    const lags = f.kind !== "slowReplication" ? [lag] : [];
    if (via.length === 0) return [[...lags, f]];
    // A command's fault after each way there (what the diversion left undone matters), the
    // others after one way each in turn.
    const ways = COMMAND_FAULTS.includes(f.kind) ? via : [via[i % via.length] as string];
    const kind = f.at.fraction === 0 ? "commandHangs" : "replyLost";
    return ways.map((into) => [...lags, diversion(into, kind), f]);
  });
}

/**
 * The standby 100 ms behind for the first 10 s of the run: begun at its start, since a
 * lag applies to the WAL written after it, and the switchover is reached within seconds.
 */
function lagging(spec: PlanSpec): SimFault {
  return {
    kind: "slowReplication",
    at: { step: spec.initial, fraction: 0 },
    forMs: 10_000,
    lagMs: 100,
  };
}

/** The fault that takes the run off its fault-free path at `step`: its first command's. */
export function diversion(
  step: string,
  kind: "commandHangs" | "replyLost" = "commandHangs",
): SimFault {
  return { kind, at: { step, fraction: 0 } };
}

/** Each kind of fault at a moment, lasting `ms` where it lasts (a kind that does not, once). */
const AT: { [K in FaultKind]: (at: Moment, ms: number) => SimFault[] } = {
  crash: (at) => [
    { kind: "crash", node: "primary", at },
    { kind: "crash", node: "standby", at },
  ],
  freeze: (at, forMs) => [
    { kind: "freeze", node: "primary", at, forMs },
    { kind: "freeze", node: "standby", at, forMs },
  ],
  partition: (at, forMs) =>
    (["nodes", "client-primary", "client-standby"] as const).map((between) => ({
      kind: "partition",
      between,
      at,
      forMs,
    })),
  slowReplication: (at, forMs) => [{ kind: "slowReplication", at, forMs, lagMs: 1000 }],
  commandFails: (at) => [{ kind: "commandFails", at }],
  commandHangs: (at) => [{ kind: "commandHangs", at }],
  replyLost: (at) => [{ kind: "replyLost", at }],
  operatorDies: (at, downMs) => [{ kind: "operatorDies", at, downMs }],
  operatorPauses: (at, forMs) => [{ kind: "operatorPauses", at, forMs }],
  reboot: (at, downMs) => [
    { kind: "reboot", node: "primary", at, downMs },
    { kind: "reboot", node: "standby", at, downMs },
  ],
  longTransaction: (at, forMs) => [{ kind: "longTransaction", at, forMs }],
  poolerRestart: (at, downMs) => [{ kind: "poolerRestart", at, downMs }],
  poolerUnreachable: (at, forMs) => [{ kind: "poolerUnreachable", at, forMs }],
};
