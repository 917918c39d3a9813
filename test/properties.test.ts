import { describe, expect, it } from "vitest";
import type { PlanSpec } from "../plan/spec.ts";
import { verifiedPlan } from "../plan/verified.ts";
import { simulate } from "../verify/property-run.ts";
import { runScenario } from "../verify/scenario.ts";

/**
 * The safety properties, checked on thousands of simulated switchovers with faults injected at
 * every step: the verified plan never violates them; the classic runbook does; and removing one
 * of the verified plan's gates is caught. The hosts are stock Debian unless said otherwise.
 */
const VERIFIED_RUNS = 10_000;
const PG_CTL_RUNS = 1000;

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
    const r = await simulate({ plan: "verified", runs: VERIFIED_RUNS, seed: 1 });
    expect(r.runs).toBe(VERIFIED_RUNS);
    expect(r.byKind).toEqual({ lostWrite: 0, splitBrain: 0, stuck: 0 });
    expect(r.unknown).toBe(0);
    expect(r.counterexample).toBeNull();
    // The faults did bite: some runs had to roll back or stop.
    expect(r.outcomes.aborted).toBeGreaterThan(0);
    expect(r.outcomes.done).toBeGreaterThan(r.outcomes.aborted);
  }, 600_000);

  it(`holds too on pg_ctl hosts, where nothing starts a server by itself, over ${PG_CTL_RUNS} scenarios`, async () => {
    const r = await simulate({ plan: "verified", runs: PG_CTL_RUNS, seed: 1, hosts: "pg_ctl" });
    expect(r.byKind).toEqual({ lostWrite: 0, splitBrain: 0, stuck: 0 });
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
          at: { step: "promoteStandby", delayMs: 0 },
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
        faults: [{ kind: "operatorDies", at: { step, delayMs: 10 }, downMs: 1500 }],
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
          at: { step: "stopPrimary", delayMs: 0 },
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
    expect(r.byKind.splitBrain).toBeGreaterThan(0);
    const c = r.counterexample;
    expect(c?.faults).toEqual([]);
    expect(c?.violations).toContainEqual({
      kind: "splitBrain",
      detail: expect.stringMatching(/node1 and node2 both accepted writes/),
    });
    const trace = c?.trace ?? [];
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
    const unfenced = withInput("stopPrimary", { fence: false });
    const r = await simulate({ plan: "verified", runs: 1500, seed: 1, spec: unfenced });
    expect(r.byKind.splitBrain).toBeGreaterThan(0);
    const c = r.counterexample;
    expect(c?.violations.map((v) => v.kind)).toContain("splitBrain");
    expect(c?.faults.join("\n")).toMatch(/the primary's host reboots/);
    expect(c?.trace).toContainEqual(
      expect.stringContaining("the boot started node1 (start.conf auto), as a primary"),
    );
  }, 300_000);
});
