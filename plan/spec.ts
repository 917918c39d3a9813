import type { Timeouts } from "../core/timeouts.ts";
import type { PlanContext } from "./context.ts";
import type { ActorName } from "./effects.ts";

/**
 * A plan as data: its steps, each an invoked effect with a deadline and where it leads.
 * build.ts turns a spec into the XState machine, and into the abstract model the
 * model-based tests walk: one source for both, so they cannot drift apart.
 */
export type DeadlineName = Exclude<
  keyof Timeouts,
  "poll" | "outagePoll" | "retryBackoff" | "persist" | "watchdog"
>;

export type GuardName =
  | "canPromote"
  | "isPromoted"
  | "rejoinDirect"
  | "rejoinRewind"
  | "rejoinBaseBackup";
export type SaveName = "shutdownCheckpoint" | "promotion" | "rejoin";

export interface Branch {
  target: string;
  guard?: GuardName;
  /** An output of the step that takes this branch (drives the model-based tests). */
  example: unknown;
}

export interface StepSpec {
  /** What the step does, for `switchover plan`. */
  does: string;
  actor: ActorName;
  input: (c: PlanContext) => Record<string, unknown>;
  /** null only in the seed plan: the classic runbook waits "periodically", without bound. */
  deadline: DeadlineName | null;
  /** On success: a target, or guarded branches tried in order (the last one unguarded). */
  done: string | Branch[];
  /** On failure or a passed deadline. */
  fail: string;
  /** Forward-only steps retry until their deadline instead of failing at the first error. */
  retry?: boolean;
  save?: SaveName;
}

export interface PlanSpec {
  id: "verified" | "seed";
  title: string;
  initial: string;
  steps: Record<string, StepSpec>;
}

export const FINAL_STATES = ["done", "aborted"] as const;
export type FinalState = (typeof FINAL_STATES)[number];

export function branchesOf(step: StepSpec): Branch[] {
  return typeof step.done === "string" ? [{ target: step.done, example: undefined }] : step.done;
}
