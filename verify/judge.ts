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
  const refusedAtPreflight = r.context?.failure?.step === "preflight";
  return [
    guarded("lostWrite", () => {
      const lost = checkLostWrites(r.history.ops, view());
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
        },
        view(),
      ),
    ),
  ];
}
