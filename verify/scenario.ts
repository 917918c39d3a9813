import { SimClock } from "../core/clock.ts";
import { seededRng } from "../core/rng.ts";
import { simTimeouts } from "../core/timeouts.ts";
import {
  type JournalEntry,
  MemoryJournal,
  type StepRecord,
  stepsFromJournal,
} from "../plan/journal.ts";
import { PLANS, type PlanName } from "../plan/plans.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { combined, drive, type RunNemesis } from "../run/driver.ts";
import { simulatedCluster } from "../run/simulated-cluster.ts";
import type { HostKind } from "../sim/model.ts";
import { narrate } from "../sim/narrate.ts";
import type { Topology } from "../sim/world.ts";
import { type CheckResult, overall, type Verdict } from "./checkers/verdict.ts";
import { judge } from "./judge.ts";
import { writeFigures } from "./outage.ts";
import { type FaultKind, faultMs, type SimFault, type StepProfile } from "./sim-faults.ts";
import { type Strike, WorldNemesis } from "./sim-nemesis.ts";
import { measureProfile } from "./step-profile.ts";

export interface Scenario {
  plan: PlanName;
  /** Seeds the workload's choices; the faults are data of their own. */
  seed: number;
  faults: SimFault[];
  ratePerSec: number;
  directShare: number;
  /** Pages dirty on the primary when the run starts. */
  dirty: number;
  /** What runs the servers (sim/host.ts); stock Debian unless said otherwise. */
  hosts?: HostKind;
  /** A PgBouncer in front of the VIP, named to the plan: the clients write through it. */
  pooler?: boolean;
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
  /** The faults that landed, where (not the ones dropped, or that changed nothing). */
  struck: Array<{ step: string; kind: FaultKind }>;
  /** What happened, in order, for a person to read. */
  trace: string[];
}

/**
 * A run that has not ended after this much simulated time, not counting the time its operator
 * was dead or paused (nothing runs the plan then: `operatorDownMs`), is stuck.
 */
export const TIME_BOUND_MS = 60_000;

/** How long the operator's process is dead or paused in all, over a scenario's faults. */
function operatorDownMs(faults: readonly SimFault[]): number {
  const down = (f: SimFault) =>
    f.kind === "operatorDies" ? f.downMs : f.kind === "operatorPauses" ? f.forMs : 0;
  return faults.reduce((sum, f) => sum + down(f), 0);
}
const SETTLE_MS = 2000;
const TARGET_VERSION = "15.20";
/** The simulated runs' id: one run per world, so any fixed id (the watchdog's files name it). */
export const SIM_RUN_ID = "5135135135135135";
/** How the plan names the simulated pooler (the simulator has one pooler, whatever its name). */
const SIM_POOLER = { host: "pooler", port: 6432, adminUser: "postgres", database: "app" };

/**
 * Runs one scenario on its plan, or on `spec` (a variant of it, e.g. with a gate removed);
 * `extra` strikes beside the scenario's faults (a mutant's lying executor).
 */
export async function runScenario(
  s: Scenario,
  spec: PlanSpec = PLANS[s.plan],
  extra?: RunNemesis,
): Promise<ScenarioResult> {
  const profile = s.faults.length > 0 ? await stepProfile(spec, s.hosts ?? "debian") : {};
  return (await runOnce(s, spec, profile, extra)).result;
}

const profiles = new WeakMap<PlanSpec, Map<HostKind, Promise<StepProfile>>>();

/**
 * What each step of `spec` takes on these hosts in the simulator (step-profile.ts), measured
 * once per plan and host kind: fixed pilot runs, so every scenario places its faults alike.
 */
export function stepProfile(spec: PlanSpec, hosts: HostKind): Promise<StepProfile> {
  const byHosts = profiles.get(spec) ?? new Map<HostKind, Promise<StepProfile>>();
  profiles.set(spec, byHosts);
  let p = byHosts.get(hosts);
  if (!p) {
    // With a pooler: its steps' profile is then measured too; without one they do nothing.
    const pilot = {
      plan: spec.id,
      hosts,
      ratePerSec: 30,
      directShare: 0.1,
      dirty: 1000,
      pooler: true,
    };
    p = measureProfile(spec, async (faults, seed) => {
      // A pilot's faults are each the first command of a step: no profile needed to place them.
      const { journal } = await runOnce({ ...pilot, faults, seed }, spec, {});
      return journal;
    });
    byHosts.set(hosts, p);
  }
  return p;
}

/** The latencies' own stream of the seed: a change to the workload's draws leaves them alone. */
const LATENCY_STREAM = 0x9e3779b9;

async function runOnce(
  s: Scenario,
  spec: PlanSpec,
  profile: StepProfile,
  extra?: RunNemesis,
): Promise<{ result: ScenarioResult; journal: readonly JournalEntry[] }> {
  const topology: Topology = {
    primary: "node1",
    standby: "node2",
    version: "15.18",
    dirty: s.dirty,
    hosts: s.hosts ?? "debian",
    pooler: s.pooler ?? false,
  };
  const clock = new SimClock();
  const cluster = simulatedCluster(clock, {
    topology,
    rng: seededRng(s.seed),
    latencies: seededRng(s.seed ^ LATENCY_STREAM),
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
  const faults = new WorldNemesis(cluster.world, roles, spec, s.faults, profile, note);
  const record = await drive({
    spec,
    input: {
      primary: topology.primary,
      standby: topology.standby,
      targetVersion: TARGET_VERSION,
      timeouts: simTimeouts,
      runId: SIM_RUN_ID,
      maxLagBytes: 1 << 20,
      poolers: s.pooler ? [SIM_POOLER] : [],
    },
    journal,
    world: cluster,
    nemesis: extra ? combined(faults, extra) : faults,
    onStep: (step) => note(`step ${step}`),
    boundMs: TIME_BOUND_MS + operatorDownMs(s.faults),
    settleMs: SETTLE_MS,
  });
  const status = record.status === "interrupted" ? "stuck" : record.status;
  const failure = record.context?.failure;
  note(`ended ${status}${failure ? ` (${failure.step}: ${failure.reason})` : ""}`, record.planMs);
  const checks = judge(record, TARGET_VERSION, {
    faultFree: faults.struck.length === 0,
    outlasted: outlasting(faults.struck),
  });
  const result: ScenarioResult = {
    status,
    verdict: overall(checks),
    checks,
    acked: record.history.count("ok"),
    failed: record.history.count("fail"),
    indeterminate: record.history.count("info"),
    outageMs: writeFigures(record.history.ops).outage.ms,
    steps: stepsFromJournal(journal.entries()),
    struck: faults.struck.map(({ step, kind }) => ({ step, kind })),
    // In time order: what the hosts did while the cluster settled comes after the end.
    trace: lines
      .sort((a, b) => a.t - b.t)
      .map(({ t, line }) => `${String(Math.round(t)).padStart(6)} ms  ${line}`),
  };
  return { result, journal: journal.entries() };
}

/**
 * Faults that keep a node, a link or the pooler away as long as the plan retries, or longer (the
 * generator's outlasting durations start at the budget): it must give up.
 */
const OUTLASTING: readonly FaultKind[] = [
  "freeze",
  "partition",
  "reboot",
  "poolerRestart",
  "poolerUnreachable",
  // Its process holds the commands the plan's retries would send: they all time out meanwhile.
  "operatorPauses",
];

/** Says which landed fault outlasted the plan's retry budget, if one did. */
function outlasting(struck: readonly Strike[]): string | null {
  const budget = simTimeouts.persist;
  const long = struck.find((s) => OUTLASTING.includes(s.kind) && faultMs(s.fault) >= budget);
  return long
    ? `a ${long.kind} of ${faultMs(long.fault)} ms outlasted the plan's retry budget (${budget} ms)`
    : null;
}
