import type { RunRecord } from "../run/driver.ts";
import { checkLostWrites } from "./checkers/lost-writes.ts";
import { checkSplitBrain } from "./checkers/split-brain.ts";
import { checkTermination } from "./checkers/termination.ts";
import { type CheckResult, guarded } from "./checkers/verdict.ts";

/**
 * The checkers over one run's record, simulated or real: every acknowledged write on the final
 * primary (and the caught-up standby), never two primaries or two VIP holders, and an end that
 * is what it claims. A final look that could not be taken makes the first and last `unknown`.
 */
export function judge(r: RunRecord, targetVersion: string): CheckResult[] {
  const view = () => {
    if (!r.final.ok) throw r.final.error;
    return r.final.view;
  };
  return [
    guarded("lostWrite", () => checkLostWrites(r.history.ops, view())),
    checkSplitBrain(r.roles),
    guarded("stuck", () =>
      checkTermination(
        {
          status: r.status === "interrupted" ? "stuck" : r.status,
          lastStep: r.lastStep,
          targetVersion,
          refusedAtPreflight: r.context?.failure?.step === "preflight",
        },
        view(),
      ),
    ),
  ];
}
