import { readFileSync } from "node:fs";
import fc from "fast-check";
import { productionTimeouts } from "../core/timeouts.ts";
import { initialContext } from "../plan/context.ts";
import { verifiedPlan } from "../plan/verified.ts";
import type { HostKind } from "../sim/model.ts";
import type { CheckKind } from "./checkers/verdict.ts";
import { lieNemesis, type Mutant, mutantsOf } from "./plan-mutants.ts";
import { inPool, scenarioArbitrary } from "./property-run.ts";
import { runScenario } from "./scenario.ts";

/**
 * The mutants that no scenario can kill because they are equivalent for safety, each with the
 * reason (checked in beside this file). A listed mutant that gets killed is a stale excuse.
 */
const EQUIVALENT_FILE = new URL("./equivalent-mutants.json", import.meta.url);

export function equivalentMutants(): Record<string, string> {
  return JSON.parse(readFileSync(EQUIVALENT_FILE, "utf8")) as Record<string, string>;
}

export interface MutantResult {
  id: string;
  does: string;
  /** The first scenario that violated a property, or null: the mutant survived. */
  killedBy: { kind: CheckKind; scenario: number; detail: string } | null;
  /** Why it is equivalent for safety, when the checked-in file says so. */
  equivalent: string | null;
  scenarios: number;
}

export interface MutationReport {
  seed: number;
  runs: number;
  hosts: HostKind;
  mutants: MutantResult[];
  killed: number;
  equivalent: number;
  /** Survivors without a reason: each fails the suite. */
  unexplained: string[];
  /** Listed as equivalent, yet killed: the reason is wrong. */
  stale: string[];
}

export interface MutationOptions {
  /** Scenarios per mutant at most; a mutant stops at its first violation. */
  runs: number;
  seed: number;
  hosts?: HostKind;
  /** Only the mutants whose id contains this. */
  only?: string;
  onMutant?: (r: MutantResult, index: number, total: number) => void;
}

const CONCURRENCY = 16;

/** The verified plan's mutants, each run against the same seeded scenarios until one dies. */
export async function runMutants(o: MutationOptions): Promise<MutationReport> {
  const hosts = o.hosts ?? "debian";
  const probe = initialContext({
    primary: "node1",
    standby: "node2",
    targetVersion: "15.20",
    timeouts: productionTimeouts,
    maxLagBytes: 1 << 20,
  });
  const all = mutantsOf(verifiedPlan, probe).filter((m) => !o.only || m.id.includes(o.only));
  const excuses = equivalentMutants();
  const results: MutantResult[] = [];
  for (const [i, m] of all.entries()) {
    const r = await runMutant(m, o, hosts, excuses[m.id] ?? null);
    results.push(r);
    o.onMutant?.(r, i, all.length);
  }
  return {
    seed: o.seed,
    runs: o.runs,
    hosts,
    mutants: results,
    killed: results.filter((r) => r.killedBy).length,
    equivalent: results.filter((r) => !r.killedBy && r.equivalent).length,
    unexplained: results.filter((r) => !r.killedBy && !r.equivalent).map((r) => r.id),
    stale: results.filter((r) => r.killedBy && r.equivalent).map((r) => r.id),
  };
}

async function runMutant(
  m: Mutant,
  o: MutationOptions,
  hosts: HostKind,
  equivalent: string | null,
): Promise<MutantResult> {
  // Half the scenarios as simulate draws them, half with their faults aimed at the mutated step:
  // a broken failure edge or a missing deadline shows only when that very step goes wrong.
  const drawn = fc.sample(scenarioArbitrary("verified", m.spec, hosts), {
    seed: o.seed,
    numRuns: o.runs,
  });
  const scenarios = drawn.map((s, i) =>
    i % 2 === 0
      ? s
      : { ...s, faults: s.faults.map((f) => ({ ...f, at: { ...f.at, step: m.focus } })) },
  );
  // Scenarios run side by side: the earliest one that violated a property is the killer.
  const kills: NonNullable<MutantResult["killedBy"]>[] = [];
  let ran = 0;
  await inPool(
    scenarios.map((s, i) => [s, i] as const),
    CONCURRENCY,
    async ([s, i]) => {
      if (kills.length > 0) return;
      const r = await runScenario(s, m.spec, m.lie ? lieNemesis(m.lie) : undefined);
      ran++;
      const v = r.checks.find((c) => c.verdict === "violated");
      if (v) kills.push({ kind: v.kind, scenario: i, detail: v.detail });
    },
  );
  const killedBy = kills.sort((a, b) => a.scenario - b.scenario)[0] ?? null;
  return { id: m.id, does: m.does, killedBy, equivalent, scenarios: ran };
}
