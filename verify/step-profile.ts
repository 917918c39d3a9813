import type { JournalEntry } from "../plan/journal.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { detours, faultFreePath } from "./critical-window.ts";
import { diversion } from "./fault-grid.ts";
import type { SimFault, StepProfile } from "./sim-faults.ts";

/** Runs the plan once on the simulator with these faults, from this seed; gives its journal. */
export type PilotRun = (faults: SimFault[], seed: number) => Promise<readonly JournalEntry[]>;

const FAULT_FREE_SEEDS = [1, 2, 3];

/**
 * What each step of `spec` takes in the simulator, measured rather than guessed: the median
 * duration and number of commands of each step over a few runs without faults, and, for the
 * steps only a failure leads to (the rollback, the promotion's check), over runs whose first
 * command of a step leading there hangs (only the steps after it count: the hung one is not
 * typical). A step no run went through takes the figures of a step with the same effect.
 */
export async function measureProfile(spec: PlanSpec, run: PilotRun): Promise<StepProfile> {
  const path = faultFreePath(spec);
  const seen = new Map<string, { ms: number[]; calls: number[] }>();
  const note = (journal: readonly JournalEntry[], offPathOnly: boolean) => {
    for (const s of stepsWithCalls(journal)) {
      if (offPathOnly && path.includes(s.step)) continue;
      const m = seen.get(s.step) ?? { ms: [], calls: [] };
      m.ms.push(s.ms);
      m.calls.push(s.calls);
      seen.set(s.step, m);
    }
  };
  for (const seed of FAULT_FREE_SEEDS) note(await run([], seed), false);
  const diverters = new Set([...detours(spec).values()].map((via) => via[0] as string));
  for (const step of diverters)
    note(await run([diversion(step)], FAULT_FREE_SEEDS[0] as number), true);
  const profile: StepProfile = {};
  for (const [step, m] of seen)
    profile[step] = { ms: median(m.ms), calls: Math.max(1, Math.round(median(m.calls))) };
  for (const [id, step] of Object.entries(spec.steps)) {
    if (profile[id]) continue;
    const alike = Object.keys(profile).find((o) => spec.steps[o]?.actor === step.actor);
    if (alike) profile[id] = profile[alike] as StepProfile[string];
  }
  return profile;
}

/**
 * Each step a journal went through: how long it lasted, how many commands it sent. A call is
 * journaled once answered, with the time it was sent: it counts for the step it was sent in.
 */
function stepsWithCalls(
  journal: readonly JournalEntry[],
): Array<{ step: string; ms: number; calls: number }> {
  const steps: Array<{ step: string; t: number; ms: number; calls: number }> = [];
  for (const e of journal) {
    if (e.kind !== "transition" && e.kind !== "end") continue;
    const last = steps.at(-1);
    if (last) last.ms = e.t - last.t;
    if (e.kind === "transition") steps.push({ step: e.step, t: e.t, ms: 0, calls: 0 });
  }
  for (const e of journal) {
    if (e.kind !== "call") continue;
    let i = steps.length - 1;
    while (i > 0 && (steps[i] as { t: number }).t > e.t) i--;
    const sentIn = steps[i];
    if (sentIn) sentIn.calls++;
  }
  return steps;
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
