import type { PlanSpec } from "../plan/spec.ts";
import { criticalWindow } from "./critical-window.ts";
import type { ScenarioResult } from "./scenario.ts";
import type { FaultKind } from "./sim-faults.ts";

/** Where the faults of a property run landed: what the run can claim to have tried. */
export interface Coverage {
  /** The plan's critical window (critical-window.ts), in the plan's order. */
  window: string[];
  /** Scenarios in which at least one fault landed; in which one landed inside the window. */
  struck: number;
  struckInWindow: number;
  /** Faults that landed, in all and inside the window. */
  strikes: number;
  strikesInWindow: number;
  /** Scenarios struck per step and kind of fault: a scenario counts once per pair. */
  byStep: Record<string, Partial<Record<FaultKind, number>>>;
}

/** Counts, scenario by scenario, the faults that landed (not those aimed: the nemesis knows). */
export function coverageTally(spec: PlanSpec) {
  const window = criticalWindow(spec).steps;
  const c: Coverage = {
    window,
    struck: 0,
    struckInWindow: 0,
    strikes: 0,
    strikesInWindow: 0,
    byStep: {},
  };
  return {
    add(r: ScenarioResult): void {
      const inWindow = r.struck.filter((s) => window.includes(s.step)).length;
      c.strikes += r.struck.length;
      c.strikesInWindow += inWindow;
      if (r.struck.length > 0) c.struck++;
      if (inWindow > 0) c.struckInWindow++;
      for (const pair of new Set(r.struck.map((s) => `${s.step}\t${s.kind}`))) {
        const [step, kind] = pair.split("\t") as [string, FaultKind];
        const kinds = c.byStep[step] ?? {};
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        c.byStep[step] = kinds;
      }
    },
    /** The tally, its steps in the plan's order. */
    result(): Coverage {
      const order = Object.keys(spec.steps);
      const byStep = Object.fromEntries(
        Object.entries(c.byStep).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)),
      );
      return { ...c, byStep };
    },
  };
}
