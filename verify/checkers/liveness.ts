import type { CheckResult } from "./verdict.ts";

export interface LivenessEnd {
  status: "done" | "aborted" | "stuck";
  lastStep: string;
  /** Why the plan gave up, from its context. */
  failure: { step: string; reason: string } | null;
  /** No fault landed during the run (the nemesis knows). */
  faultFree: boolean;
}

/**
 * Liveness: with no fault, a run ends `done`. A plan that rolls back or stops with nothing
 * wrong is broken, however safely it does so. Only the simulator can tell "no fault": on real
 * hosts a transient nobody injected can make a rollback the right answer.
 */
export function checkLiveness(end: LivenessEnd): CheckResult {
  if (!end.faultFree)
    return { kind: "liveness", verdict: "ok", detail: "faults landed: the run may give up" };
  if (end.status === "done")
    return { kind: "liveness", verdict: "ok", detail: "no fault, and the run ended done" };
  const why = end.failure ? ` (${end.failure.step}: ${end.failure.reason})` : "";
  return {
    kind: "liveness",
    verdict: "violated",
    detail: `no fault landed, yet the run ended ${end.status} after ${end.lastStep}${why}`,
  };
}
