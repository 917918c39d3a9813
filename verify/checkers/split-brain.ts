import type { RoleObservation } from "../../core/cluster-view.ts";
import { type CheckResult, guarded } from "./verdict.ts";

/** No split-brain: at no moment do two nodes accept writes, nor hold the VIP together. */
export function checkSplitBrain(observations: readonly RoleObservation[]): CheckResult {
  return guarded("splitBrain", () => {
    for (let i = 0; i < observations.length; i++) {
      const o = observations[i] as RoleObservation;
      const until = observations[i + 1]?.t;
      const span = until === undefined ? "until the end" : `for ${Math.round(until - o.t)} ms`;
      if (o.primaries.length > 1) {
        return violated(
          `${o.primaries.join(" and ")} both accepted writes from ${Math.round(o.t)} ms ${span}`,
        );
      }
      if (o.vipHolders.length > 1) {
        return violated(
          `the VIP was bound on ${o.vipHolders.join(" and ")} from ${Math.round(o.t)} ms ${span}`,
        );
      }
    }
    if (observations.length === 0)
      return { kind: "splitBrain", verdict: "unknown", detail: "no observation" };
    return {
      kind: "splitBrain",
      verdict: "ok",
      detail: `never two primaries in ${observations.length} observations`,
    };
  });
}

function violated(detail: string): CheckResult {
  return { kind: "splitBrain", verdict: "violated", detail };
}
