import { SimClock } from "../core/clock.ts";
import { seededRng } from "../core/rng.ts";
import { simTimeouts } from "../core/timeouts.ts";
import { MemoryJournal, type StepRecord, stepsFromJournal } from "../plan/journal.ts";
import { PLANS, type PlanName } from "../plan/plans.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { drive } from "../run/driver.ts";
import { simulatedCluster } from "../run/simulated-cluster.ts";
import type { HostKind } from "../sim/model.ts";
import { narrate } from "../sim/narrate.ts";
import type { Topology } from "../sim/world.ts";
import { type CheckResult, overall, type Verdict } from "./checkers/verdict.ts";
import { judge } from "./judge.ts";
import { type Fault, WorldNemesis } from "./sim-nemesis.ts";

export interface Scenario {
  plan: PlanName;
  /** Seeds the workload's choices; the faults are data of their own. */
  seed: number;
  faults: Fault[];
  ratePerSec: number;
  directShare: number;
  /** Pages dirty on the primary when the run starts. */
  dirty: number;
  /** What runs the servers (sim/host.ts); stock Debian unless said otherwise. */
  hosts?: HostKind;
}

export interface ScenarioResult {
  status: "done" | "aborted" | "stuck";
  verdict: Verdict;
  checks: CheckResult[];
  acked: number;
  failed: number;
  indeterminate: number;
  outageMs: number;
  steps: StepRecord[];
  /** What happened, in order, for a person to read. */
  trace: string[];
}

/** A run that has not ended after this much simulated time is stuck. */
export const TIME_BOUND_MS = 60_000;
const SETTLE_MS = 2000;
const TARGET_VERSION = "15.20";

/** Runs one scenario on its plan, or on `spec` (a variant of it, e.g. with a gate removed). */
export async function runScenario(
  s: Scenario,
  spec: PlanSpec = PLANS[s.plan],
): Promise<ScenarioResult> {
  const topology: Topology = {
    primary: "node1",
    standby: "node2",
    version: "15.18",
    dirty: s.dirty,
    hosts: s.hosts ?? "debian",
  };
  const clock = new SimClock();
  const cluster = simulatedCluster(clock, {
    topology,
    rng: seededRng(s.seed),
    ratePerSec: s.ratePerSec,
    directShare: s.directShare,
  });
  const journal = new MemoryJournal();
  const lines: Array<{ t: number; line: string }> = [];
  const note = (line: string, t = clock.now()) => lines.push({ t, line });
  // What the hosts do by themselves (package scripts, reboots, boots) goes in the trace too.
  cluster.world.onEvent((e) => {
    const line = narrate(e, cluster.world.state);
    if (line) note(line, e.t);
  });
  const roles = { primary: topology.primary, standby: topology.standby };
  const record = await drive({
    spec,
    input: {
      primary: topology.primary,
      standby: topology.standby,
      targetVersion: TARGET_VERSION,
      timeouts: simTimeouts,
      maxLagBytes: 1 << 20,
    },
    journal,
    world: cluster,
    nemesis: new WorldNemesis(cluster.world, roles, spec, s.faults, note),
    onStep: (step) => note(`step ${step}`),
    boundMs: TIME_BOUND_MS,
    settleMs: SETTLE_MS,
  });
  const status = record.status === "interrupted" ? "stuck" : record.status;
  const failure = record.context?.failure;
  note(`ended ${status}${failure ? ` (${failure.step}: ${failure.reason})` : ""}`, record.planMs);
  const checks = judge(record, TARGET_VERSION);
  return {
    status,
    verdict: overall(checks),
    checks,
    acked: record.history.count("ok"),
    failed: record.history.count("fail"),
    indeterminate: record.history.count("info"),
    outageMs: record.history.largestGapMs(),
    steps: stepsFromJournal(journal.entries()),
    // In time order: what the hosts did while the cluster settled comes after the end.
    trace: lines
      .sort((a, b) => a.t - b.t)
      .map(({ t, line }) => `${String(Math.round(t)).padStart(6)} ms  ${line}`),
  };
}
