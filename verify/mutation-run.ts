import { readFileSync } from "node:fs";
import fc from "fast-check";
import { productionTimeouts } from "../core/timeouts.ts";
import { initialContext } from "../plan/context.ts";
import { verifiedPlan } from "../plan/verified.ts";
import type { HostKind } from "../sim/model.ts";
import type { CheckKind } from "./checkers/verdict.ts";
import { faultGrid } from "./fault-grid.ts";
import { lieNemesis, type Mutant, mutantsOf } from "./plan-mutants.ts";
import { inPool, scenarioArbitrary } from "./property-run.ts";
import { runScenario, type Scenario, SIM_RUN_ID } from "./scenario.ts";
import { closingStep } from "./sim-nemesis.ts";

/**
 * The survivors the suite knows of, each with a reason (checked in beside this file): those
 * equivalent for safety, and those that are not but that no scenario kills yet, with what the
 * simulator lacks to kill them (a known gap, not a pass). A listed mutant that gets killed, or
 * is no longer generated, is a stale reason.
 */
const REASON_FILES = {
  equivalent: new URL("./equivalent-mutants.json", import.meta.url),
  gap: new URL("./unkilled-mutants.json", import.meta.url),
};

export function listedSurvivors(kind: keyof typeof REASON_FILES): Record<string, string> {
  return JSON.parse(readFileSync(REASON_FILES[kind], "utf8")) as Record<string, string>;
}

export interface MutantResult {
  id: string;
  does: string;
  /** The first scenario that violated a property, or null: the mutant survived. */
  killedBy: { kind: CheckKind; scenario: number; detail: string } | null;
  /** Why it is equivalent for safety, when the checked-in file says so. */
  equivalent: string | null;
  /** Not equivalent: what the simulator lacks to kill it, when the checked-in file says so. */
  gap: string | null;
  scenarios: number;
}

export interface MutationReport {
  seed: number;
  runs: number;
  hosts: HostKind;
  mutants: MutantResult[];
  killed: number;
  equivalent: number;
  /** Survivors the simulator cannot kill yet, each listed with what it lacks. */
  gaps: number;
  /** Survivors without a reason: each fails the suite. */
  unexplained: string[];
  /** Listed as a survivor, yet killed (the reason is wrong) or no longer generated. */
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
    runId: SIM_RUN_ID,
    maxLagBytes: 1 << 20,
  });
  const all = mutantsOf(verifiedPlan, probe).filter((m) => !o.only || m.id.includes(o.only));
  const equivalent = listedSurvivors("equivalent");
  const gaps = listedSurvivors("gap");
  const results: MutantResult[] = [];
  for (const [i, m] of all.entries()) {
    const r = await runMutant(m, o, hosts, {
      equivalent: equivalent[m.id] ?? null,
      gap: gaps[m.id] ?? null,
    });
    results.push(r);
    o.onMutant?.(r, i, all.length);
  }
  const listed = [...Object.keys(equivalent), ...Object.keys(gaps)];
  return {
    seed: o.seed,
    runs: o.runs,
    hosts,
    mutants: results,
    killed: results.filter((r) => r.killedBy).length,
    equivalent: results.filter((r) => !r.killedBy && r.equivalent).length,
    gaps: results.filter((r) => !r.killedBy && r.gap).length,
    unexplained: results.filter((r) => !r.killedBy && !r.equivalent && !r.gap).map((r) => r.id),
    stale: [
      ...results.filter((r) => r.killedBy && (r.equivalent || r.gap)).map((r) => r.id),
      ...(o.only ? [] : listed.filter((id) => !all.some((m) => m.id === id))),
    ],
  };
}

async function runMutant(
  m: Mutant,
  o: MutationOptions,
  hosts: HostKind,
  reasons: Pick<MutantResult, "equivalent" | "gap">,
): Promise<MutantResult> {
  // Every kind of fault at each step the mutation is about (a broken failure edge or a missing
  // deadline shows only when that very step goes wrong), on the drawn scenarios' workloads, with
  // a pooler in front of the VIP; then the scenarios as simulate draws them.
  const drawn = fc.sample(scenarioArbitrary("verified", m.spec, hosts), {
    seed: o.seed,
    numRuns: o.runs,
  });
  // The first step at its start and halfway, those leading into it at their start only.
  const aimed = m.focus
    .filter((step) => !closingStep(m.spec, step))
    .flatMap((step, i) => faultGrid(m.spec, step, true, i === 0 ? [0, 0.5] : [0]));
  const scenarios = [
    ...aimed.map((faults, i) => ({
      ...(drawn[i % drawn.length] as Scenario),
      faults,
      pooler: true,
    })),
    ...drawn,
  ];
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
  return { id: m.id, does: m.does, killedBy, ...reasons, scenarios: ran };
}
