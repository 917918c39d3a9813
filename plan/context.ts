import { randomBytes } from "node:crypto";
import type { Lsn, NodeName, Pooler } from "../core/executor.ts";
import type { StandbyLink } from "../core/standby-link.ts";
import type { Timeouts } from "../core/timeouts.ts";

export interface PlanInput {
  /**
   * Unique per run, kept by a resumed one (its journal's): what the run's watchdog and the
   * run's commands on the old primary's host know it by (newRunId).
   */
  runId: string;
  primary: NodeName;
  standby: NodeName;
  targetVersion: string;
  timeouts: Timeouts;
  /** Pre-flight refuses to start when the standby is further behind than this. */
  maxLagBytes: number;
  /** PgBouncers in front of the VIP, paused across the switchover; none: those steps do nothing. */
  poolers?: Pooler[];
  /** How the rebuilt old primary connects, as pre-flight resolved it; none: the defaults. */
  standbyLink?: StandbyLink;
}

/** A new run's id: random, and a word no shell reads specially (it names files on the hosts). */
export function newRunId(): string {
  return randomBytes(9).toString("hex");
}

export type RejoinMethod = "direct" | "rewind" | "baseBackup";

export interface PlanContext extends PlanInput {
  poolers: Pooler[];
  /** The old primary's shutdown checkpoint, read after its postmaster exited. */
  shutdownCheckpoint: { lsn: Lsn; endLsn: Lsn } | null;
  promoted: boolean;
  newTimeline: number | null;
  rejoin: { method: RejoinMethod; bytesCopied: number } | null;
  failure: { step: string; reason: string } | null;
}

export function initialContext(input: PlanInput): PlanContext {
  return {
    ...input,
    poolers: input.poolers ?? [],
    shutdownCheckpoint: null,
    promoted: false,
    newTimeline: null,
    rejoin: null,
    failure: null,
  };
}

/** What the operator must still do after a run ended in `aborted`. */
export function leftToDo(c: PlanContext): string[] {
  const why = c.failure ? `${c.failure.step} failed: ${c.failure.reason}` : "the run stopped";
  const paused = c.failure?.step.startsWith("resumePoolers")
    ? [
        `A pooler may still be paused, its clients waiting: on each one's console (${c.poolers.map((p) => `${p.host}:${p.port}`).join(", ")}), SHOW DATABASES, and RESUME a database that shows paused.`,
      ]
    : [];
  if (c.promoted) {
    return [
      ...paused,
      `${c.standby} is the primary (timeline ${c.newTimeline ?? "?"}) and holds the VIP; ${why}.`,
      `${c.primary} is fenced (stopped): make it a standby of ${c.standby} (rewind or base-backup it if it cannot follow), only then upgrade it to ${c.targetVersion}, and start it (resume the run, or do it by hand; keep it fenced until then: a package upgrade or a reboot starts an unfenced cluster as it is configured).`,
    ];
  }
  return [
    ...paused,
    `${c.primary} is still the primary and holds the VIP; ${why}.`,
    `Check ${c.standby} (version, streaming) and fix the cause before running the switchover again.`,
  ];
}
