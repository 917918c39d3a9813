import { SimClock } from "../core/clock.ts";
import { History } from "../core/history.ts";
import { seededRng } from "../core/rng.ts";
import { simTimeouts } from "../core/timeouts.ts";
import { lastPosition, MemoryJournal, type StepRecord, stepsFromJournal } from "../plan/journal.ts";
import { seedPlan } from "../plan/runbook.ts";
import { branchesOf, FINAL_STATES, type PlanSpec } from "../plan/spec.ts";
import { verifiedPlan } from "../plan/verified.ts";
import { simulatedExecutor } from "../sim/executor.ts";
import { roleTimeline, viewOfWorld } from "../sim/observe.ts";
import { startSimWorkload } from "../sim/workload.ts";
import { initialWorld, type Topology, World } from "../sim/world.ts";
import { checkLostWrites } from "../verify/checkers/lost-writes.ts";
import { checkSplitBrain } from "../verify/checkers/split-brain.ts";
import { checkTermination } from "../verify/checkers/termination.ts";
import { type CheckResult, overall, type Verdict } from "../verify/checkers/verdict.ts";
import { CommandFaults, describeFault, type Fault, WorldNemesis } from "../verify/sim-nemesis.ts";
import { journaled } from "./journaled.ts";
import { type RunHandle, resumeRun, startRun } from "./machine.ts";

export type PlanName = "verified" | "seed";
export const PLANS: Record<PlanName, PlanSpec> = { verified: verifiedPlan, seed: seedPlan };

export interface Scenario {
  plan: PlanName;
  /** Seeds the workload's choices; the faults are data of their own. */
  seed: number;
  faults: Fault[];
  ratePerSec: number;
  directShare: number;
  /** Pages dirty on the primary when the run starts. */
  dirty: number;
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

/**
 * The step whose success ends the run, when it does not retry: a fault striking there lands
 * after the plan has checked its work, and no plan can answer for it. Faults are dropped there.
 */
function closing(spec: PlanSpec, step: string): boolean {
  const s = spec.steps[step];
  return (
    s !== undefined &&
    !s.retry &&
    branchesOf(s).every((b) => (FINAL_STATES as readonly string[]).includes(b.target))
  );
}

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
  };
  const clock = new SimClock();
  const world = new World(initialWorld(topology), clock);
  const journal = new MemoryJournal();
  const commandFaults = new CommandFaults();
  const history = new History();
  const nemesis = new WorldNemesis(world, { primary: topology.primary, standby: topology.standby });
  const trace: string[] = [];
  const note = (line: string) =>
    trace.push(`${String(Math.round(clock.now())).padStart(6)} ms  ${line}`);
  let probes = 0;
  const deps = {
    executor: journaled(commandFaults.wrap(simulatedExecutor(world)), journal, clock),
    clock,
    history,
    probeId: () => `probe${probes++}`,
  };
  const pending = [...s.faults];
  const options = {
    spec,
    deps,
    journal,
    onStep: (step: string) => {
      note(`step ${step}`);
      for (const f of pending.filter((f) => f.at.step === step)) {
        pending.splice(pending.indexOf(f), 1);
        clock.setTimeout(() => strike(f), f.at.delayMs);
      }
    },
  };
  let run: RunHandle = startRun(options, {
    primary: topology.primary,
    standby: topology.standby,
    targetVersion: "15.20",
    timeouts: simTimeouts,
    maxLagBytes: 1 << 20,
  });
  const strike = (f: Fault) => {
    if (run.finished() || closing(options.spec, run.step())) return;
    note(`FAULT: ${describeFault(f)}`);
    if (f.kind === "commandFails" || f.kind === "commandHangs")
      return commandFaults.arm(f.kind === "commandFails" ? "fails" : "hangs");
    if (f.kind !== "operatorDies") return nemesis.strike(f);
    run.kill();
    clock.setTimeout(() => {
      const at = lastPosition(journal.entries());
      if (!at || "ended" in at) return;
      note(`resumed from the journal at ${at.step}`);
      run = resumeRun(options, at.step, at.context);
    }, f.downMs);
  };
  const stopWorkload = startSimWorkload(world, clock, history, seededRng(s.seed), {
    ratePerSec: s.ratePerSec,
    directShare: s.directShare,
    directTo: topology.primary,
  });
  await clock.runUntilIdle(TIME_BOUND_MS, () => run.finished());
  const ended = run.finished() ? await run.result : null;
  if (!ended) run.kill();
  const status = ended?.status ?? "stuck";
  const failure = ended?.context.failure;
  note(`ended ${status}${failure ? ` (${failure.step}: ${failure.reason})` : ""}`);
  // The incident is over: faults heal, replication catches up, then the checkers look.
  stopWorkload();
  nemesis.healAll();
  await clock.runUntilIdle(clock.now() + SETTLE_MS);
  const final = viewOfWorld(world);
  const checks = [
    checkLostWrites(history.ops, final),
    checkSplitBrain(roleTimeline(initialWorld(topology), world.log)),
    checkTermination(
      {
        status,
        lastStep: run.step(),
        targetVersion: "15.20",
        refusedAtPreflight: failure?.step === "preflight",
      },
      final,
    ),
  ];
  return {
    status,
    verdict: overall(checks),
    checks,
    acked: history.count("ok"),
    failed: history.count("fail"),
    indeterminate: history.count("info"),
    outageMs: history.largestGapMs(),
    steps: stepsFromJournal(journal.entries()),
    trace,
  };
}
