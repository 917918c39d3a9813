import { describe, expect, it, vi } from "vitest";
import { runSimulate } from "../cli/simulate.ts";
import { simTimeouts } from "../core/timeouts.ts";
import { initialContext, newRunId } from "../plan/context.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { verifiedPlan } from "../plan/verified.ts";
import { criticalWindow } from "../verify/critical-window.ts";
import { mutantsOf } from "../verify/plan-mutants.ts";
import { type SimulateReport, simulate } from "../verify/property-run.ts";
import { runScenario } from "../verify/scenario.ts";
import { CLUSTER_FAULTS, type FaultKind } from "../verify/sim-faults.ts";

/**
 * The safety properties, checked on thousands of simulated switchovers with faults injected at
 * every step: the verified plan never violates them; the classic runbook does; and removing one
 * of the verified plan's gates is caught. The hosts are stock Debian unless said otherwise.
 */
// 14,000: a crash drawn for a node the plan has already stopped changes nothing and is not
// counted, so the rarest pair (a crash in checkPromotion, after the promote failed with the old
// primary down) lands about 30 times in 10,000; a few more keep it above STRUCK_AT_LEAST (and
// the operator's pause, a kind of its own, thins every other kind out).
const VERIFIED_RUNS = 14_000;
const PG_CTL_RUNS = 1000;
const NO_VIOLATION = { lostWrite: 0, splitBrain: 0, stuck: 0, liveness: 0 };

/**
 * Each (step, kind of fault) of the critical window must have struck at least this many of the
 * scenarios: a fault that exposes a bug at that point in one strike out of ten is then seen
 * with probability 1 - 0.9^30 ≈ 96% (one out of five: 99.9%).
 */
const STRUCK_AT_LEAST = 30;

/** The scenarios, run once for the tests that read them. */
let verifiedRun: Promise<SimulateReport> | undefined;
const verifiedReport = () =>
  (verifiedRun ??= simulate({ plan: "verified", runs: VERIFIED_RUNS, seed: 1 }));

/** The verified plan with one step's input changed: a mutant the suite must kill. */
function withInput(step: string, change: Record<string, unknown>): PlanSpec {
  const s = verifiedPlan.steps[step];
  if (!s) throw new Error(`the verified plan has no ${step} step`);
  return {
    ...verifiedPlan,
    steps: {
      ...verifiedPlan.steps,
      [step]: { ...s, input: (c) => ({ ...s.input(c), ...change }) },
    },
  };
}

describe("the verified plan", () => {
  it(`loses no acknowledged write, never has two primaries and always ends, over ${VERIFIED_RUNS} scenarios`, async () => {
    const r = await verifiedReport();
    expect(r.runs).toBe(VERIFIED_RUNS);
    expect(r.byKind).toEqual(NO_VIOLATION);
    expect(r.unknown).toBe(0);
    expect(r.counterexample).toBeNull();
    // The faults did bite: most strike the switchover itself, where the plan rolls back or
    // stops; yet a good share of the runs ride their faults out and end done.
    expect(r.outcomes.aborted).toBeGreaterThan(0);
    expect(r.outcomes.done).toBeGreaterThan(VERIFIED_RUNS / 4);
  }, 600_000);

  it(`is struck where safety is decided: every fault kind in every step of the critical window, in at least ${STRUCK_AT_LEAST} scenarios`, async () => {
    const c = (await verifiedReport()).coverage;
    expect(c.window).toEqual(criticalWindow(verifiedPlan).steps);
    const count = (step: string, kind: FaultKind) =>
      `${step} ${kind}: ${c.byStep[step]?.[kind] ?? 0}`;
    // The pooler's faults where it is paused and resumed (only a scenario with one draws them).
    const pairs = [
      ...c.window.flatMap((step) => CLUSTER_FAULTS.map((kind) => count(step, kind))),
      count("pausePoolers", "longTransaction"),
      ...["pausePoolers", "vipDownPrimary", "resumePoolers"].flatMap((step) =>
        (["poolerRestart", "poolerUnreachable"] as const).map((kind) => count(step, kind)),
      ),
    ];
    const under = pairs.filter((p) => Number(p.split(": ")[1]) < STRUCK_AT_LEAST);
    expect(under).toEqual([]);
    // Most scenarios are struck, and most faults land in the window.
    expect(c.struck / VERIFIED_RUNS).toBeGreaterThan(0.8);
    // The cluster's faults, that is: the pooler's aim at its own steps, around the window.
    const struckBy = (steps: string[]) =>
      steps.reduce(
        (n, step) => n + CLUSTER_FAULTS.reduce((m, k) => m + (c.byStep[step]?.[k] ?? 0), 0),
        0,
      );
    expect(struckBy(c.window) / struckBy(Object.keys(c.byStep))).toBeGreaterThan(0.7);
  }, 600_000);

  it(`holds too on pg_ctl hosts, where nothing starts a server by itself, over ${PG_CTL_RUNS} scenarios`, async () => {
    const r = await simulate({ plan: "verified", runs: PG_CTL_RUNS, seed: 1, hosts: "pg_ctl" });
    expect(r.byKind).toEqual(NO_VIOLATION);
    expect(r.unknown).toBe(0);
  }, 300_000);

  it("keeps the fenced old primary down when its host reboots after the promotion, and ends done", async () => {
    const r = await runScenario({
      plan: "verified",
      seed: 5,
      faults: [
        {
          kind: "reboot",
          node: "primary",
          at: { step: "promoteStandby", fraction: 0 },
          downMs: 500,
        },
      ],
      ratePerSec: 50,
      directShare: 0.2,
      dirty: 500,
    });
    expect(r.trace).toContainEqual(
      expect.stringContaining("node1's host has booted: its cluster stays down, fenced"),
    );
    expect(r.status).toBe("done");
    expect(r.verdict).toBe("ok");
  });

  it("ends done with every acknowledged write kept when the operator's process dies and the run resumes", async () => {
    for (const step of ["stopPrimary", "promoteStandby", "upgradeOldPrimary"]) {
      const r = await runScenario({
        plan: "verified",
        seed: 7,
        faults: [{ kind: "operatorDies", at: { step, fraction: 0.2 }, downMs: 1500 }],
        ratePerSec: 50,
        directShare: 0.2,
        dirty: 2000,
      });
      expect(r.trace.some((line) => line.includes(`resumed from the journal at ${step}`))).toBe(
        true,
      );
      expect(r.status).toBe("done");
      expect(r.verdict).toBe("ok");
    }
  });

  it("rolls back, keeping every write, when the nodes are cut apart while the primary stops", async () => {
    const r = await runScenario({
      plan: "verified",
      seed: 3,
      faults: [
        {
          kind: "partition",
          between: "nodes",
          at: { step: "stopPrimary", fraction: 0 },
          forMs: 4000,
        },
      ],
      ratePerSec: 50,
      directShare: 0.3,
      dirty: 1000,
    });
    expect(r.status).toBe("aborted");
    expect(r.steps.map((s) => s.name)).toContain("startOldPrimary");
    expect(r.verdict).toBe("ok");
  });
});

describe("the classic runbook (seed plan)", () => {
  it("on stock Debian runs two primaries without any fault: the old primary's upgrade starts it again", async () => {
    const r = await simulate({ plan: "seed", runs: 100, seed: 1 });
    // Every scenario in which no fault landed is one of them.
    const unstruck = r.runs - r.coverage.struck;
    expect(unstruck).toBeGreaterThan(0);
    expect(r.byKind.splitBrain).toBeGreaterThanOrEqual(unstruck);
    const c = await runScenario({
      plan: "seed",
      seed: 1,
      faults: [],
      ratePerSec: 30,
      directShare: 0,
      dirty: 1000,
    });
    expect(c.struck).toEqual([]);
    expect(c.checks).toContainEqual({
      kind: "splitBrain",
      verdict: "violated",
      detail: expect.stringMatching(/node1 and node2 both accepted writes/),
    });
    const trace = c.trace;
    const upgrade = trace.findIndex((line) => line.endsWith("step upgradeOldPrimary"));
    const started = trace.findIndex((line) =>
      line.includes("the package scripts started node1 again (not fenced), as a primary"),
    );
    expect(upgrade).toBeGreaterThan(0);
    expect(started).toBeGreaterThan(upgrade);
  }, 300_000);

  it("on pg_ctl hosts loses acknowledged writes or runs two primaries, and shows a readable shrunk counterexample", async () => {
    const r = await simulate({ plan: "seed", runs: 2000, seed: 1, hosts: "pg_ctl" });
    expect(r.violations).toBeGreaterThan(0);
    expect(r.byKind.lostWrite + r.byKind.splitBrain).toBeGreaterThan(0);
    const c = r.counterexample;
    expect(c).not.toBeNull();
    expect(c?.violations[0]?.kind).toMatch(/lostWrite|splitBrain/);
    expect(c?.violations[0]?.detail).toMatch(/acknowledged write|both accepted writes/);
    expect(c?.faults.length).toBeGreaterThan(0);
    expect(c?.trace.some((line) => line.includes("FAULT:"))).toBe(true);
    expect(c?.path).toMatch(/^\d+(:\d+)*$/);
    // The counterexample replays from its seed and path.
    const replayed = await simulate({
      plan: "seed",
      hosts: "pg_ctl",
      runs: 1,
      seed: c?.seed ?? 0,
      path: c?.path ?? "",
    });
    expect(replayed.violations).toBe(1);
  }, 300_000);
});

describe("a verified plan with a gate removed", () => {
  it("is caught: promoting without waiting for the shutdown checkpoint's replay loses writes", async () => {
    const confirm = verifiedPlan.steps.confirmPrimaryStopped;
    if (!confirm) throw new Error("the verified plan has no confirmPrimaryStopped step");
    const broken: PlanSpec = {
      ...verifiedPlan,
      steps: {
        ...verifiedPlan.steps,
        confirmPrimaryStopped: { ...confirm, done: "promoteStandby" },
      },
    };
    const r = await simulate({ plan: "verified", runs: 3000, seed: 1, spec: broken });
    expect(r.byKind.lostWrite).toBeGreaterThan(0);
    expect(r.counterexample?.trace.join("\n")).toMatch(
      /confirmPrimaryStopped\n.*step promoteStandby/,
    );
  }, 300_000);

  it("is caught: without the fence, a reboot brings the stopped old primary back as a second primary", async () => {
    // The mutant `switchover mutants` makes of the fence step: the step left out.
    const probe = initialContext({
      primary: "node1",
      standby: "node2",
      targetVersion: "15.20",
      timeouts: simTimeouts,
      runId: newRunId(),
      maxLagBytes: 1 << 20,
    });
    const unfenced = mutantsOf(verifiedPlan, probe).find((m) => m.id === "no-fence:fencePrimary");
    if (!unfenced) throw new Error("no no-fence:fencePrimary mutant");
    expect(unfenced.focus[0]).toBe("stopPrimary");
    const r = await simulate({ plan: "verified", runs: 1500, seed: 1, spec: unfenced.spec });
    expect(r.byKind.splitBrain).toBeGreaterThan(0);
    const c = r.counterexample;
    expect(c?.violations.map((v) => v.kind)).toContain("splitBrain");
    expect(c?.faults.join("\n")).toMatch(/the primary's host reboots/);
    expect(c?.trace).toContainEqual(
      expect.stringContaining("the boot started node1 (start.conf auto), as a primary"),
    );
  }, 300_000);
});

describe("a verified plan that always gives up", () => {
  it("is caught by liveness, through the CLI: stopping the primary with `immediate` rolls back every run", async () => {
    const immediate = withInput("stopPrimary", { mode: "immediate" });
    const json = await simulateCommand(["--runs", "300", "--seed", "1", "--json"], immediate);
    expect(json.exit).toBe(1);
    const r = JSON.parse(json.stdout) as SimulateReport;
    expect(r.outcomes.done).toBe(0);
    // Safe every time: it only ever rolls back. But with no fault at all it gave up too.
    expect(r.byKind).toMatchObject({ lostWrite: 0, splitBrain: 0, stuck: 0 });
    expect(r.byKind.liveness).toBe(r.runs - r.coverage.struck);
    expect(r.byKind.liveness).toBeGreaterThan(0);
    expect(r.counterexample?.faults).toEqual([]);
    expect(r.counterexample?.violations).toContainEqual({
      kind: "liveness",
      detail: expect.stringMatching(
        /no fault landed, yet the run ended aborted .*confirmPrimaryStopped: node1 did not shut down cleanly/,
      ),
    });
    const text = await simulateCommand(["--runs", "100", "--seed", "1"], immediate);
    expect(text.exit).toBe(1);
    expect(text.stdout).toMatch(/violations: \d+ \(.*liveness [1-9]\d*\)/);
    expect(text.stdout).toContain("  liveness: no fault landed, yet the run ended aborted");
    expect(text.stdout).toContain("verdict: violated");
  });
});

/** `switchover simulate` on a variant of the plan, in this process: its exit code and stdout. */
async function simulateCommand(argv: string[], variant: PlanSpec) {
  const out: string[] = [];
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  try {
    const exit = await runSimulate(argv, variant);
    return { exit, stdout: out.join("") };
  } finally {
    write.mockRestore();
  }
}
