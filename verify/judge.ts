import type { RunRecord } from "../run/driver.ts";
import { checkLiveness } from "./checkers/liveness.ts";
import { checkLostWrites } from "./checkers/lost-writes.ts";
import { checkSplitBrain } from "./checkers/split-brain.ts";
import { checkTermination } from "./checkers/termination.ts";
import { type CheckResult, guarded } from "./checkers/verdict.ts";

/** What only the simulator knows about a run: whether any fault landed, and which outlasted it. */
export interface FaultsKnown {
  faultFree: boolean;
  /** Why the plan had to give up, if a fault outlasted its retries (checkers/termination.ts). */
  outlasted: string | null;
}

/**
 * The checkers over one run's record, simulated or real: every acknowledged write on the final
 * primary (and the caught-up standby), never two primaries or two VIP holders, and an end that
 * is what it claims. A final look that could not be taken makes the first and last `unknown`.
 * With what the simulator knows of its faults, liveness too: no fault, so the run ends done.
 */
export function judge(r: RunRecord, targetVersion: string, faults?: FaultsKnown): CheckResult[] {
  const view = () => {
    if (!r.final.ok) throw r.final.error;
    return r.final.view;
  };
  const refusedAtPreflight = r.context?.failure?.step === "preflight";
  const checks = [
    guarded("lostWrite", () => {
      const c = r.context;
      // Nothing serves (a fault outlasted the plan): the node its journal leaves as primary.
      const leftServing = faults && c ? (c.promoted ? c.standby : c.primary) : undefined;
      const lost = checkLostWrites(r.history.ops, view(), leftServing);
      // Refused at pre-flight, the plan changed nothing: when no primary is left to read (its
      // host rebooted under the pre-flight, say), nothing the plan did can have lost a write.
      if (!refusedAtPreflight || lost.verdict !== "unknown") return lost;
      return { ...lost, verdict: "ok", detail: `refused at pre-flight: ${lost.detail}` };
    }),
    checkSplitBrain(r.roles),
    guarded("stuck", () =>
      checkTermination(
        {
          status: r.status === "interrupted" ? "stuck" : r.status,
          lastStep: r.lastStep,
          targetVersion,
          refusedAtPreflight,
          outlasted: faults?.outlasted ?? null,
        },
        view(),
      ),
    ),
  ];
  if (!faults) return checks;
  const status = r.status === "interrupted" ? "stuck" : r.status;
  const failure = r.context?.failure ?? null;
  return [...checks, checkLiveness({ status, lastStep: r.lastStep, failure, ...faults })];
}
