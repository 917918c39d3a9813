import { type Progress, stepProgress } from "../core/progress.ts";
import { labFaultTimeouts } from "../core/timeouts.ts";
import { connectDocker } from "../lab/engine.ts";
import { labDown, labUp } from "../lab/lifecycle.ts";
import {
  type HostKind,
  labNode,
  labTopology,
  type NodeName,
  type Topology,
} from "../lab/topology.ts";
import { PLANS, type PlanName } from "../plan/plans.ts";
import type { CheckKind, Verdict } from "./checkers/verdict.ts";
import { drawLabFault } from "./lab-faults.ts";
import { describeLabFault, type LabFault, LabNemesis, type Struck } from "./lab-nemesis.ts";
import type { SimulateReport } from "./property-run.ts";
import { labPair, runOnLab } from "./rehearsal.ts";
import type { RealRunReport } from "./run-report.ts";

export interface FaultRehearsalOptions {
  plan: PlanName;
  /** How many rehearsals; case i runs the fault drawn from seed + i. */
  faults: number;
  seed: number;
  from: string;
  to: string;
  rate: number;
  /** The share of the writes sent to the old primary's own address. */
  directShare: number;
  /** What the lab's hosts are (default: stock Debian). */
  host?: HostKind;
  keep: boolean;
  signal: AbortSignal;
  progress: Progress;
}

/**
 * A run not ended after this long is stopped and judged as stuck: a hung command in the seed
 * plan's wait without a deadline never ends. The verified plan's longest path under one fault
 * (a hung upgrade, then retries until `persist`) takes ~3 minutes.
 */
const RUN_BOUND_MS = 5 * 60_000;

export interface FaultCase {
  /** `rehearse --faults 1 --seed <seed>` replays this case. */
  seed: number;
  fault: LabFault;
  description: string;
  /** What the nemesis did, and in which step. */
  struck: Struck[];
  /** `stuck`: the plan had not ended after RUN_BOUND_MS (the runbook's unbounded wait). */
  status: RealRunReport["status"] | "stuck";
  verdict: Verdict;
  lostWrites: number | null;
  splitBrain: boolean;
  outageMs: number;
  /** false: the client's writes did not come back before the end (outageMs runs to its end). */
  writesResumed: boolean;
  violations: Array<{ kind: CheckKind; detail: string }>;
  report: RealRunReport;
}

/** The simulator's summary (plan, runs, seed, violations, unknown, byKind), with the cases. */
export type FaultRehearsalReport = Pick<
  SimulateReport,
  "plan" | "runs" | "seed" | "violations" | "unknown" | "byKind"
> & { cases: FaultCase[] };

/**
 * N rehearsals, each on a fresh lab at --from with one fault drawn from its seed, each judged by
 * the same checkers as a plain rehearsal. Faults heal when the run ends (and on any failure)
 * before the checkers look; the lab goes down at the end unless --keep.
 */
export async function rehearseWithFaults(o: FaultRehearsalOptions): Promise<FaultRehearsalReport> {
  const spec = PLANS[o.plan];
  // Liveness is the simulator's alone (checkers/liveness.ts): never judged here.
  const byKind: Record<CheckKind, number> = { lostWrite: 0, splitBrain: 0, stuck: 0, liveness: 0 };
  const cases: FaultCase[] = [];
  for (let i = 0; i < o.faults && !o.signal.aborted; i++) {
    const seed = o.seed + i;
    const fault = drawLabFault(seed, spec);
    const description = describeLabFault(fault);
    o.progress(`case ${i + 1}/${o.faults}, seed ${seed}: ${description}`);
    // A fresh lab for every case: whatever the last fault left behind goes with it.
    await labDown(o.progress);
    const status = await labUp(
      { from: o.from, to: o.to, ...(o.host ? { host: o.host } : {}) },
      o.progress,
      o.signal,
    );
    const topology = labTopology(status.hostKind);
    const nemesis = new LabNemesis(
      await connectDocker(),
      topology,
      labRoles(topology, labPair(status)),
      spec,
      [fault],
    );
    const caseProgress: Progress = (line) => o.progress(`seed ${seed}: ${line}`);
    let report: RealRunReport;
    try {
      report = await runOnLab(status, {
        plan: o.plan,
        to: o.to,
        rate: o.rate,
        directShare: o.directShare,
        label: `seed-${seed}`,
        progress: caseProgress,
        onStep: stepProgress(caseProgress),
        // Stopped like a Ctrl-C when it runs past the bound: then judged, as stuck.
        signal: AbortSignal.any([o.signal, AbortSignal.timeout(RUN_BOUND_MS)]),
        timeouts: labFaultTimeouts,
        nemesis,
      });
    } finally {
      await nemesis.heal();
    }
    const violations = report.checks
      .filter((c) => c.verdict === "violated")
      .map((c) => ({ kind: c.kind, detail: c.detail }));
    for (const v of violations) byKind[v.kind]++;
    cases.push({
      seed,
      fault,
      description,
      struck: nemesis.log,
      status: report.status === "interrupted" && !o.signal.aborted ? "stuck" : report.status,
      verdict: report.verdict,
      lostWrites: report.lostWrites,
      splitBrain: violations.some((v) => v.kind === "splitBrain"),
      outageMs: report.outageMs,
      writesResumed: report.outage.resumed,
      violations,
      report,
    });
    o.progress(`case ${i + 1}/${o.faults}, seed ${seed}: ${report.status}, ${report.verdict}`);
  }
  if (!o.keep && !o.signal.aborted) await labDown(o.progress);
  return {
    plan: o.plan,
    runs: cases.length,
    seed: o.seed,
    violations: cases.filter((c) => c.verdict === "violated").length,
    unknown: cases.filter((c) => c.verdict === "unknown").length,
    byKind,
    cases,
  };
}

function labRoles(
  topology: Topology,
  pair: { primary: string; standby: string },
): Record<"primary" | "standby", NodeName> {
  const node = (name: string) => labNode(topology, name).hostname;
  return { primary: node(pair.primary), standby: node(pair.standby) };
}
