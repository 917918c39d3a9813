import { branchesOf, FINAL_STATES, type PlanSpec, type StepSpec } from "../plan/spec.ts";

/**
 * Where a plan's safety is decided, read from the plan itself: the steps from taking the VIP
 * down until it is up again and a write through it is verified (the switchover and its
 * rollback), and the rejoin decision. Faults are aimed there most (sim-nemesis.ts).
 */
export interface CriticalWindow {
  /** Every step of the window, in the plan's order. */
  steps: string[];
  /** The window's steps a run without faults goes through. */
  onPath: string[];
}

const isFinal = (step: string) => (FINAL_STATES as readonly string[]).includes(step);

/**
 * A step that only resumes the poolers or ends the watchdog once the run has decided how it
 * ends (every way out of it ends the run, or winds up too): for the cluster the run is over
 * there, nothing of its safety is decided.
 */
export function windingUp(spec: PlanSpec, step: string): boolean {
  const s = spec.steps[step];
  const over = (to: string) => isFinal(to) || windingUp(spec, to);
  return (
    (s?.actor === "resumePoolers" || s?.actor === "endWatchdog") &&
    over(s.fail) &&
    branchesOf(s).every((b) => over(b.target))
  );
}

/**
 * The steps a run without faults goes through, in order: each step's first branch, from the
 * plan's start or from `from`.
 */
export function faultFreePath(spec: PlanSpec, from: string = spec.initial): string[] {
  const path: string[] = [];
  for (let step: string | undefined = from; step && !isFinal(step); ) {
    if (path.includes(step)) break;
    path.push(step);
    const s: StepSpec | undefined = spec.steps[step];
    step = s ? branchesOf(s)[0]?.target : undefined;
  }
  return path;
}

/**
 * The outage: every step reachable from a step whose effect takes the VIP down, up to a step
 * that puts it up again (on any node: the switchover's or the rollback's) and the step after
 * it that verifies a write through it. Then the step where the old primary's data is decided:
 * the rejoin decision, or the runbook's `rm -Rf`.
 */
export function criticalWindow(spec: PlanSpec): CriticalWindow {
  const inWindow = new Set<string>();
  const queue = Object.keys(spec.steps).filter((id) => spec.steps[id]?.actor === "vipDown");
  while (queue.length > 0) {
    const id = queue.shift() as string;
    const step = spec.steps[id];
    if (!step || inWindow.has(id)) continue;
    inWindow.add(id);
    const next = [...branchesOf(step).map((b) => b.target), step.fail].filter(
      (t) => !isFinal(t) && !windingUp(spec, t),
    );
    if (step.actor !== "vipUp") queue.push(...next);
    else for (const t of next) if (spec.steps[t]?.actor === "ensureServing") inWindow.add(t);
  }
  for (const [id, step] of Object.entries(spec.steps))
    if (REJOIN_DECISIONS.includes(step.actor)) inWindow.add(id);
  const path = faultFreePath(spec);
  const order = [...path, ...Object.keys(spec.steps).filter((id) => !path.includes(id))];
  const steps = order.filter((id) => inWindow.has(id));
  return { steps, onPath: steps.filter((id) => path.includes(id)) };
}

/** The effects that decide what becomes of the old primary's data. */
const REJOIN_DECISIONS: string[] = ["decideRejoin", "removeDataDir"];

/**
 * The steps off the fault-free path, each with the steps of that path whose failure leads
 * there without a second failure (through success branches only): a fault aimed at such a
 * step lands only after one of those has failed, so faults aimed there come in pairs.
 * Only steps that give up at their first failure divert the run: a retried one tries again.
 */
export function detours(spec: PlanSpec): Map<string, string[]> {
  const path = faultFreePath(spec);
  const via = new Map<string, string[]>();
  for (const from of path) {
    const step = spec.steps[from];
    if (!step || step.retry || isFinal(step.fail)) continue;
    for (const to of reachedOnSuccess(spec, step.fail)) {
      if (path.includes(to)) continue;
      via.set(to, [...(via.get(to) ?? []), from]);
    }
  }
  return via;
}

/** `start` and the steps reachable from it through success branches only. */
function reachedOnSuccess(spec: PlanSpec, start: string): string[] {
  const seen: string[] = [];
  const queue = [start];
  while (queue.length > 0) {
    const id = queue.shift() as string;
    const step = spec.steps[id];
    if (!step || seen.includes(id)) continue;
    seen.push(id);
    queue.push(...branchesOf(step).map((b) => b.target));
  }
  return seen;
}
