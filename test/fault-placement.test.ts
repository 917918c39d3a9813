import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { seedPlan } from "../plan/runbook.ts";
import { verifiedPlan } from "../plan/verified.ts";
import { criticalWindow, detours } from "../verify/critical-window.ts";
import { scenarioArbitrary } from "../verify/property-run.ts";
import { runScenario, type Scenario, stepProfile } from "../verify/scenario.ts";
import type { SimFault } from "../verify/sim-faults.ts";

/**
 * Where the simulator's faults strike: at a fraction of their step's own length or at one of
 * its commands, mostly in the critical window read from the plan, and counted only when they
 * landed. The property runs (test/properties.test.ts) rest on this.
 */
const calm = { plan: "verified", seed: 11, ratePerSec: 40, directShare: 0.1, dirty: 800 } as const;
const scenario = (...faults: SimFault[]): Scenario => ({ ...calm, faults });

/** When `line` was traced (ms), the first line that contains it. */
function at(trace: string[], line: string): number {
  const found = trace.find((l) => l.includes(line));
  if (!found) throw new Error(`no "${line}" in the trace:\n${trace.join("\n")}`);
  return Number(found.trim().split(" ")[0]);
}

describe("the critical window", () => {
  it("of the verified plan runs from the VIP going down to a write verified through it again, on both ways out, and the rejoin decision", () => {
    expect(criticalWindow(verifiedPlan)).toEqual({
      steps: [
        "vipDownPrimary",
        "stopPrimary",
        "confirmPrimaryStopped",
        "waitStandbyReplayed",
        "claimPromotion",
        "promoteStandby",
        "vipUpNewPrimary",
        "verifyWriteOnNewPrimary",
        "decideRejoin",
        "checkPromotion",
        "fenceStandby",
        "startOldPrimary",
        "vipUpOldPrimary",
        "verifyWriteOnOldPrimary",
      ],
      onPath: [
        "vipDownPrimary",
        "stopPrimary",
        "confirmPrimaryStopped",
        "waitStandbyReplayed",
        "claimPromotion",
        "promoteStandby",
        "vipUpNewPrimary",
        "verifyWriteOnNewPrimary",
        "decideRejoin",
      ],
    });
    // Only a failure leads to the promotion's check and the standby's fence: a failed promote.
    expect(detours(verifiedPlan).get("fenceStandby")).toEqual(["promoteStandby"]);
  });

  it("of the runbook: its VIP down to its VIP up, and its rm -Rf", () => {
    expect(criticalWindow(seedPlan).steps).toEqual([
      "vipDownPrimary",
      "checkpointPrimary",
      "waitSentEqualsReplay",
      "stopPrimary",
      "promoteStandby",
      "vipUpStandby",
      "removeOldData",
    ]);
  });
});

describe("a fault's moment", () => {
  it("of a command fault is one of the step's commands: half-way through pre-flight's four is the third", async () => {
    const r = await runScenario(
      scenario({ kind: "commandFails", at: { step: "preflight", fraction: 0.5 } }),
    );
    expect(r.trace).toContainEqual(
      expect.stringContaining("FAULT: the third command of preflight fails"),
    );
    expect(r.trace.at(-1)).toContain("ended aborted (preflight: injected: replication failed)");
    expect(r.struck).toEqual([{ step: "preflight", kind: "commandFails" }]);
  });

  it("of a fault of the world is that fraction of its step's expected duration", async () => {
    const profile = await stepProfile(verifiedPlan, "debian");
    const expected = profile.stopPrimary?.ms ?? 0;
    expect(expected).toBeGreaterThan(5);
    const r = await runScenario(
      scenario({
        kind: "freeze",
        node: "standby",
        at: { step: "stopPrimary", fraction: 0.5 },
        forMs: 100,
      }),
    );
    const struck =
      at(r.trace, "FAULT: the standby's host freezes") - at(r.trace, "step stopPrimary");
    expect(Math.abs(struck - expected / 2)).toBeLessThanOrEqual(1);
    expect(r.struck).toEqual([{ step: "stopPrimary", kind: "freeze" }]);
  });

  it("lands only if it changes something: not in a step the run never enters, nor on a server already down", async () => {
    const r = await runScenario(
      scenario(
        { kind: "commandFails", at: { step: "fenceStandby", fraction: 0 } },
        { kind: "crash", node: "primary", at: { step: "promoteStandby", fraction: 0.5 } },
      ),
    );
    expect(r.struck).toEqual([]);
    expect(r.trace).toContainEqual(
      expect.stringMatching(/FAULT: the primary crashes .* into promoteStandby: no effect/),
    );
    expect(r.status).toBe("done");
    expect(r.checks.find((c) => c.kind === "liveness")).toMatchObject({
      verdict: "ok",
      detail: "no fault, and the run ended done",
    });
  });

  it("a lost reply leaves the command's effect: the promotion happened, the plan checks and goes on", async () => {
    const r = await runScenario(
      scenario({ kind: "replyLost", at: { step: "promoteStandby", fraction: 0 } }),
    );
    const steps = r.steps.map((s) => s.name);
    expect(
      steps.slice(steps.indexOf("promoteStandby"), steps.indexOf("promoteStandby") + 3),
    ).toEqual(["promoteStandby", "checkPromotion", "vipUpNewPrimary"]);
    expect([r.status, r.verdict]).toEqual(["done", "ok"]);
  });

  it("a fault outlasting the plan's retries makes it give up, safely, and says why", async () => {
    const r = await runScenario(
      scenario({
        kind: "freeze",
        node: "primary",
        at: { step: "vipDownPrimary", fraction: 0.5 },
        forMs: 25_000,
      }),
    );
    expect(r.status).toBe("aborted");
    expect(r.verdict).toBe("ok");
    // The old primary thawed after the plan's last try to put the VIP back on it: its host's
    // watchdog, overdue, fired as it thawed and put the old primary back in service.
    expect(r.trace).toContainEqual(
      expect.stringMatching(/node1's watchdog takes the run back there/),
    );
    expect(r.checks.find((c) => c.kind === "stuck")?.detail).toBe(
      "ended aborted, cluster as it claims",
    );
  });
});

describe("latencies", () => {
  it("are drawn per command from the scenario's seed: another seed, other durations; the same, the same", async () => {
    const durations = async (seed: number) =>
      (await runScenario({ ...scenario(), seed })).steps.map((s) => Math.round(s.ms * 1000));
    const [a, again, b] = [await durations(1), await durations(1), await durations(2)];
    expect(again).toEqual(a);
    expect(b).not.toEqual(a);
  });
});

describe("the scenarios' faults", () => {
  it("mostly aim at the critical window, and leave some scenarios without any fault", () => {
    const window = criticalWindow(verifiedPlan).steps;
    const drawn = fc.sample(scenarioArbitrary("verified"), { seed: 1, numRuns: 2000 });
    const faults = drawn.flatMap((s) => s.faults);
    const inWindow = faults.filter((f) => window.includes(f.at.step)).length;
    expect(inWindow / faults.length).toBeGreaterThan(0.6);
    const none = drawn.filter((s) => s.faults.length === 0).length;
    expect(none / drawn.length).toBeGreaterThan(0.04);
    expect(none / drawn.length).toBeLessThan(0.15);
    for (const f of faults) {
      expect(Object.keys(verifiedPlan.steps)).toContain(f.at.step);
      expect(f.at.fraction).toBeGreaterThanOrEqual(0);
      expect(f.at.fraction).toBeLessThan(1);
    }
  });
});
