import type { NodeName } from "../core/executor.ts";
import type { PlanContext } from "./context.ts";

/** Who serves right now: the nodes accepting writes, and those holding the VIP. */
export interface ObservedRoles {
  primaries: NodeName[];
  vipHolders: NodeName[];
}

export type Reconciled = { resumeAt: string; note: string | null } | { stop: string };

/**
 * Before a resumed run takes any step: does the cluster still match where its journal stopped?
 * Steps are idempotent, so the run re-enters its last step, except when that step is known to
 * have taken effect (a promotion journaled as started). Anything the journal cannot explain
 * stops the run: a person looks first.
 */
export function reconcile(step: string, c: PlanContext, seen: ObservedRoles): Reconciled {
  if (seen.primaries.length > 1)
    return { stop: `both ${seen.primaries.join(" and ")} accept writes: fence one by hand first` };
  if (seen.vipHolders.length > 1)
    return {
      stop: `the VIP is bound on ${seen.vipHolders.join(" and ")}: remove it from one first`,
    };
  const standbyServes = seen.primaries.includes(c.standby);
  if (!c.promoted && standbyServes) {
    if (step === "promoteStandby" || step === "checkPromotion")
      return {
        resumeAt: "checkPromotion",
        note: `${c.standby} was promoted before the run died: carrying on from checkPromotion`,
      };
    return {
      stop: `${c.standby} accepts writes, but the journal stopped at ${step} without promoting it: someone else changed the cluster`,
    };
  }
  if (c.promoted && seen.primaries.includes(c.primary))
    return {
      stop: `${c.primary} accepts writes again after ${c.standby} was promoted: it must stay fenced; stop it by hand`,
    };
  return { resumeAt: step, note: null };
}
