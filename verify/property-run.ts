import fc from "fast-check";
import { UsageError } from "../core/errors.ts";
import { PLANS, type PlanName } from "../plan/plans.ts";
import type { PlanSpec } from "../plan/spec.ts";
import type { HostKind } from "../sim/model.ts";
import type { CheckKind } from "./checkers/verdict.ts";
import { type Coverage, coverageTally } from "./coverage.ts";
import { runScenario, type Scenario, type ScenarioResult, stepProfile } from "./scenario.ts";
import { describeSimFault, faultsArbitrary } from "./sim-faults.ts";

export function scenarioArbitrary(
  plan: PlanName,
  spec: PlanSpec = PLANS[plan],
  hosts: HostKind = "debian",
): fc.Arbitrary<Scenario> {
  // Half the scenarios have a pooler in front of the VIP, and its faults besides the others.
  return fc.boolean().chain((pooler) =>
    fc.record({
      plan: fc.constant(plan),
      hosts: fc.constant(hosts),
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
      faults: faultsArbitrary(spec, pooler),
      ratePerSec: fc.integer({ min: 10, max: 60 }),
      directShare: fc.constantFrom(0, 0.1, 0.3),
      dirty: fc.integer({ min: 0, max: 5000 }),
      pooler: fc.constant(pooler),
    }),
  );
}

export interface Counterexample {
  /** Replays it: `--seed` and `--path` for fast-check, or the scenario itself. */
  seed: number;
  path: string;
  shrinks: number;
  scenario: Scenario;
  faults: string[];
  violations: Array<{ kind: CheckKind; detail: string }>;
  trace: string[];
}

export interface SimulateReport {
  plan: PlanName;
  hosts: HostKind;
  runs: number;
  seed: number;
  violations: number;
  unknown: number;
  byKind: Record<CheckKind, number>;
  outcomes: { done: number; aborted: number; stuck: number };
  /** Where the faults landed. */
  coverage: Coverage;
  scenariosPerSecond: number;
  counterexample: Counterexample | null;
}

export interface SimulateOptions {
  plan: PlanName;
  runs: number;
  seed: number;
  /** Replays one counterexample: fast-check's path printed with it. */
  path?: string;
  /** Runs a variant of the plan (the tests break a gate to show the checkers catch it). */
  spec?: PlanSpec;
  /** What runs the servers on both nodes; stock Debian (postgresql-common) by default. */
  hosts?: HostKind;
  onProgress?: (done: number, violations: number) => void;
}

/**
 * Scenarios run interleaved on this thread: each has its own simulated clock, and while one
 * waits for its promises to settle the others run, which spreads the event loop's cost per
 * turn over many scenarios. Results do not depend on it: no scenario shares state with another.
 */
const CONCURRENCY = 16;

export async function inPool<T>(
  items: readonly T[],
  width: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}

/**
 * Runs `runs` scenarios drawn from `seed` (the same ones fast-check's own run draws), counting every violation; then, if any, asks
 * fast-check for the first failing scenario again and shrinks it to a small counterexample.
 */
export async function simulate(o: SimulateOptions): Promise<SimulateReport> {
  const hosts = o.hosts ?? "debian";
  const arb = scenarioArbitrary(o.plan, o.spec, hosts);
  const byKind: Record<CheckKind, number> = { lostWrite: 0, splitBrain: 0, stuck: 0, liveness: 0 };
  const coverage = coverageTally(o.spec ?? PLANS[o.plan]);
  const outcomes = { done: 0, aborted: 0, stuck: 0 };
  let violations = 0;
  let unknown = 0;
  let count = 0;
  const started = performance.now();
  const tally = (r: ScenarioResult) => {
    count++;
    outcomes[r.status]++;
    if (r.verdict === "violated") violations++;
    if (r.verdict === "unknown") unknown++;
    for (const c of r.checks) if (c.verdict === "violated") byKind[c.kind]++;
    coverage.add(r);
    o.onProgress?.(count, violations);
  };
  if (o.path) {
    // Replaying one counterexample: fast-check finds it by its path. A property that holds
    // lets fast-check go on to the values after it: only the first is the counterexample.
    let replayed = false;
    const replay = await fc.check(
      fc.asyncProperty(arb, async (s) => {
        if (replayed) return true;
        replayed = true;
        tally(await runScenario(s, o.spec));
        return true;
      }),
      { seed: o.seed, numRuns: 1, path: o.path, endOnFailure: true },
    );
    if (replay.failed) throw new ReplayPathError(o.seed, o.path, replay.errorInstance);
  } else {
    await inPool(fc.sample(arb, { seed: o.seed, numRuns: o.runs }), CONCURRENCY, async (s) =>
      tally(await runScenario(s, o.spec)),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  const worst = SEVERITY.find((k) => byKind[k] > 0);
  const counterexample = worst
    ? await shrink(o, arb, worst)
    : unknown > 0
      ? await shrink(o, arb, null)
      : null;
  return {
    plan: o.plan,
    hosts,
    runs: count,
    seed: o.seed,
    violations,
    unknown,
    byKind,
    outcomes,
    coverage: coverage.result(),
    scenariosPerSecond: Math.round(count / seconds),
    counterexample,
  };
}

/** `--path` does not lead anywhere from `--seed`: it was printed for another seed or plan. */
export class ReplayPathError extends UsageError {
  override readonly name = "ReplayPathError";
  constructor(seed: number, path: string, cause: unknown) {
    super(`--path ${path} names no scenario of seed ${seed} (copy both from the same report)`, {
      cause,
    });
  }
}

/**
 * The counterexample shown is of the worst kind found: a lost write tells more than a hang,
 * a hang more than a plan that gives up with nothing wrong.
 */
const SEVERITY: CheckKind[] = ["lostWrite", "splitBrain", "stuck", "liveness"];

async function shrink(
  o: SimulateOptions,
  arb: fc.Arbitrary<Scenario>,
  kind: CheckKind | null,
): Promise<Counterexample | null> {
  const pathOption = o.path ? { path: o.path } : {};
  const holds = (r: ScenarioResult) =>
    kind === null
      ? r.verdict === "ok"
      : !r.checks.some((c) => c.kind === kind && c.verdict === "violated");
  const details = await fc.check(
    fc.asyncProperty(arb, async (s) => holds(await runScenario(s, o.spec))),
    { seed: o.seed, numRuns: o.path ? 1 : o.runs, ...pathOption },
  );
  if (!details.failed || !details.counterexample) return null;
  const [scenario] = details.counterexample;
  const spec = o.spec ?? PLANS[o.plan];
  const [result, profile] = await Promise.all([
    runScenario(scenario, spec),
    stepProfile(spec, scenario.hosts ?? "debian"),
  ]);
  return {
    seed: details.seed,
    path: details.counterexamplePath ?? "",
    shrinks: details.numShrinks,
    scenario,
    faults: scenario.faults.map((f) => describeSimFault(f, profile)),
    violations: result.checks
      .filter((c) => c.verdict !== "ok")
      .map((c) => ({ kind: c.kind, detail: c.detail })),
    trace: result.trace,
  };
}
