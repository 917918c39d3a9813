import { describe, expect, it } from "vitest";
import { SimClock } from "../core/clock.ts";
import type { Executor, ExecutorCall } from "../core/executor.ts";
import { simTimeouts } from "../core/timeouts.ts";
import type { PlanContext } from "../plan/context.ts";
import { MemoryJournal } from "../plan/journal.ts";
import { seedPlan } from "../plan/runbook.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { verifiedPlan } from "../plan/verified.ts";
import { effectCalls, PROBE_ID } from "../run/effect-impls.ts";
import { journaled } from "../run/journaled.ts";
import { startRun } from "../run/machine.ts";
import { simulatedExecutor } from "../sim/sim-executor.ts";
import { initialWorld, World } from "../sim/world.ts";
import { SIM_RUN_ID } from "../verify/scenario.ts";

/**
 * `switchover plan` and the dry run list each step's executor calls from run/effect-impls.ts's
 * effectCalls, not from the effects themselves: every call an effect makes, on the simulator,
 * through the happy path and the branches a failed call opens, must be in that list.
 */
type Fault = { method: keyof Executor; node?: string };

async function callsPerStep(spec: PlanSpec, fault: Fault | null) {
  const clock = new SimClock();
  const world = new World(
    initialWorld({ primary: "node1", standby: "node2", version: "15.18", dirty: 10 }),
    clock,
  );
  const journal = new MemoryJournal();
  let probes = 0;
  const run = startRun(
    {
      spec,
      journal,
      deps: {
        executor: journaled(failOnce(simulatedExecutor(world), fault), journal, clock),
        clock,
        probeId: () => `probe${probes++}`,
        runId: SIM_RUN_ID,
      },
    },
    {
      primary: "node1",
      standby: "node2",
      targetVersion: "15.20",
      timeouts: simTimeouts,
      runId: SIM_RUN_ID,
      maxLagBytes: 1 << 20,
    },
  );
  await clock.runUntilIdle(120_000, () => run.finished());
  expect(run.finished()).toBe(true);
  const seen: Array<{ step: string; made: ExecutorCall; declared: ExecutorCall[] }> = [];
  let at: { step: string; context: PlanContext } | null = null;
  for (const e of journal.entries()) {
    if (e.kind === "transition") at = { step: e.step, context: e.context };
    if (e.kind !== "call" || !at) continue;
    const step = spec.steps[at.step];
    if (!step) throw new Error(`no step ${at.step}`);
    const declared = (effectCalls[step.actor] as (input: unknown) => ExecutorCall[])(
      step.input(at.context),
    );
    seen.push({ step: at.step, made: { method: e.op, args: e.args } as ExecutorCall, declared });
  }
  return seen;
}

/** The first call of `method` (on `node`) answers a failure, as a host whose command failed. */
function failOnce(x: Executor, fault: Fault | null): Executor {
  if (!fault) return x;
  let struck = false;
  return new Proxy(x, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver);
      if (prop !== fault.method || typeof real !== "function") return real;
      return async (...args: unknown[]) => {
        if (!struck && (fault.node === undefined || args[0] === fault.node)) {
          struck = true;
          return { ok: false, reason: "injected failure" };
        }
        return real.apply(target, args);
      };
    },
  });
}

/** A declared call matches a made one: same method, same arguments, a stand-in matching any. */
function matches(declared: ExecutorCall, made: ExecutorCall): boolean {
  if (declared.method !== made.method) return false;
  const d = declared.args as unknown[];
  const m = made.args as unknown[];
  return (
    d.length === m.length &&
    d.every((a, i) => (a === PROBE_ID && typeof m[i] === "string") || equal(a, m[i]))
  );
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

describe("each effect's declared executor calls (what plan and the dry run list)", () => {
  const cases: Array<[string, PlanSpec, Fault | null]> = [
    ["verified, no fault", verifiedPlan, null],
    ["seed, no fault", seedPlan, null],
    [
      "verified, the primary's stop fails (roll back)",
      verifiedPlan,
      { method: "stopPostgres", node: "node1" },
    ],
    ["verified, the promote fails (check the promotion)", verifiedPlan, { method: "promote" }],
    ["verified, the first probe write fails (repair)", verifiedPlan, { method: "probeWrite" }],
    ["verified, the standby's upgrade fails", verifiedPlan, { method: "upgradePackages" }],
  ];
  it.each(cases)("%s: every call made is declared", async (_name, spec, fault) => {
    const seen = await callsPerStep(spec, fault);
    expect(seen.length).toBeGreaterThan(10);
    const undeclared = seen
      .filter((s) => !s.declared.some((d) => matches(d, s.made)))
      .map((s) => `${s.step}: ${s.made.method}(${JSON.stringify(s.made.args)})`);
    expect(undeclared).toEqual([]);
  });

  it("the failed probe's repair calls are the ones listed after the probe", async () => {
    const seen = await callsPerStep(verifiedPlan, { method: "probeWrite" });
    const repair = seen
      .filter((s) => s.step === "verifyWriteOnNewPrimary")
      .map((s) => s.made.method);
    expect(repair.slice(0, 3)).toEqual(["probeWrite", "status", "vipUp"]);
  });
});
