import type { Executor, NodeName, Pooler } from "../core/executor.ts";
import type { History } from "../core/history.ts";
import type { StandbyLink } from "../core/standby-link.ts";
import type { Timeouts } from "../core/timeouts.ts";
import { leftToDo, newRunId, type PlanContext } from "../plan/context.ts";
import { type Journal, type StepRecord, stepsFromJournal } from "../plan/journal.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { drive, type RunNemesis } from "../run/driver.ts";
import { type RealWorkload, realCluster } from "../run/real-cluster.ts";
import { type CheckResult, overall, type Verdict } from "./checkers/verdict.ts";
import { criticalWindow } from "./critical-window.ts";
import { judge } from "./judge.ts";
import {
  latencyDuring,
  type Outage,
  outageDuring,
  switchoverWindow,
  type Window,
  type WriteFigures,
  writeFigures,
} from "./outage.ts";
import { type RunTimeline, runTimeline } from "./timeline.ts";

export interface RealRunOptions {
  executor: Executor;
  spec: PlanSpec;
  primary: NodeName;
  standby: NodeName;
  targetVersion: string;
  timeouts: Timeouts;
  maxLagBytes: number;
  /** The PgBouncers in front of the VIP the plan pauses (none: its pooler steps do nothing). */
  poolers?: Pooler[];
  /** How the rebuilt old primary connects (pre-flight), journaled with the input for --resume. */
  standbyLink?: StandbyLink;
  journal: Journal;
  /** The built-in client writing through the VIP while the plan runs; none for `run`. */
  workload?: RealWorkload;
  /** Called as each step starts and when the run ends. */
  onStep?: (step: string, context: PlanContext) => void;
  /** Ctrl-C: the plan stops where it is (its journal stays), the checkers still look. */
  signal?: AbortSignal;
  /** Continue a run whose process died, at the step reconciled from its journal. */
  resume?: { step: string; context: PlanContext };
  /** Faults struck while the plan runs; healed once it has ended, before the checkers look. */
  nemesis?: RunNemesis;
}

export interface RealRunReport {
  plan: string;
  status: "done" | "aborted" | "interrupted";
  verdict: Verdict;
  checks: CheckResult[];
  /** Acknowledged writes missing at the end; null when that could not be checked. */
  lostWrites: number | null;
  /** Where the application's writes went: the VIP, or a pooler in front of it. */
  through: "vip" | "pooler";
  /** The writes through it: what applications felt. */
  acked: number;
  failed: number;
  indeterminate: number;
  /** The writes through a node's own address, when a share went there. */
  direct: { node: NodeName; acked: number; failed: number; indeterminate: number } | null;
  /** outage.ms: the write outage clients felt, up to the end of their writing when writes did
   * not resume (verify/outage.ts). */
  outageMs: number;
  outage: Outage;
  /** How long the acknowledged writes through `through` took while the plan ran (ms). */
  latencyMs: WriteFigures["latencyMs"];
  /** From the VIP going down to the write through it verified (ms since the run started), the
   * longest stretch without an acknowledged write that overlaps it, and the latency of the
   * acknowledged writes in flight then; null when the run never got there. */
  switchover: { window: Window; outage: Outage; latencyMs: WriteFigures["latencyMs"] } | null;
  rejoin: { method: string; bytesCopied: number } | null;
  versions: Record<NodeName, string>;
  /** The final primary's timeline. */
  timeline: number | null;
  steps: StepRecord[];
  failure: { step: string; reason: string } | null;
  leftToDo: string[];
  /** Wall time of the plan itself (ms). */
  planMs: number;
  /** The nodes, the client's writes and the gaps over time (compare's HTML report). */
  overTime: RunTimeline;
}

/** After the run: how long the rejoined standby gets to replay everything before the check. */
const CATCH_UP_MS = 30_000;

/**
 * Runs a plan against a real cluster (lab or production) through its executor, with the
 * workload writing meanwhile, then judges it with the same checkers as the simulator.
 */
export async function runAgainstCluster(o: RealRunOptions): Promise<RealRunReport> {
  const origin = Date.now();
  const record = await drive({
    spec: o.spec,
    input: {
      primary: o.primary,
      standby: o.standby,
      targetVersion: o.targetVersion,
      timeouts: o.timeouts,
      runId: newRunId(),
      maxLagBytes: o.maxLagBytes,
      poolers: o.poolers ?? [],
      ...(o.standbyLink ? { standbyLink: o.standbyLink } : {}),
    },
    journal: o.journal,
    world: realCluster(
      {
        executor: o.executor,
        nodes: [o.primary, o.standby],
        ...(o.workload ? { workload: o.workload } : {}),
      },
      origin,
    ),
    ...(o.resume ? { resume: o.resume } : {}),
    ...(o.nemesis ? { nemesis: o.nemesis } : {}),
    ...(o.onStep ? { onStep: o.onStep } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    boundMs: null,
    settleMs: CATCH_UP_MS,
  });
  const status = record.status === "stuck" ? "interrupted" : record.status;
  const checks = judge(record, o.targetVersion);
  const view = record.final.ok ? record.final.view : null;
  const primary = view?.nodes.find((n) => n.running && n.primary);
  const context = record.context;
  const through = o.workload?.via ?? "vip";
  const front = writeFigures(record.history.ops, through);
  const overTime = runTimeline(origin, o.journal.entries(), record.roles, record.history.ops);
  const window = switchoverWindow(
    criticalWindow(o.spec).steps,
    overTime.steps,
    record.history.ops.reduce((end, op) => Math.max(end, op.t), 0),
  );
  return {
    plan: o.spec.id,
    status,
    verdict: overall(checks),
    checks,
    lostWrites: checks[0]?.count ?? null,
    through,
    acked: front.acked,
    failed: front.failed,
    indeterminate: front.indeterminate,
    direct: directWrites(record.history, o.workload?.direct?.node),
    outageMs: front.outage.ms,
    outage: front.outage,
    latencyMs: front.latencyMs,
    switchover: window && {
      window,
      outage: outageDuring(record.history.ops, through, window),
      latencyMs: latencyDuring(record.history.ops, through, window),
    },
    rejoin: context?.rejoin ?? null,
    versions: Object.fromEntries((view?.nodes ?? []).map((n) => [n.name, n.version])),
    timeline: primary?.timeline ?? null,
    steps: stepsFromJournal(o.journal.entries()),
    failure: context?.failure ?? null,
    leftToDo:
      status === "done"
        ? []
        : context
          ? leftToDo(context)
          : [`the run was interrupted in ${record.lastStep}: resume it from its journal`],
    planMs: record.planMs,
    overTime,
  };
}

function directWrites(h: History, node: NodeName | undefined): RealRunReport["direct"] {
  if (node === undefined) return null;
  const { acked, failed, indeterminate } = writeFigures(h.ops, node);
  return { node, acked, failed, indeterminate };
}
