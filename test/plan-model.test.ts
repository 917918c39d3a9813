import { describe, expect, it } from "vitest";
import { createActor, fromPromise } from "xstate";
import { getShortestPaths } from "xstate/graph";
import { SimClock } from "../core/clock.ts";
import { simTimeouts } from "../core/timeouts.ts";
import { abstractModel, buildMachine, RESUMING } from "../plan/build.ts";
import { initialContext, newRunId, type PlanContext } from "../plan/context.ts";
import type { ActorName } from "../plan/effects.ts";
import { seedPlan } from "../plan/runbook.ts";
import { branchesOf, type PlanSpec, type StepSpec } from "../plan/spec.ts";
import { verifiedPlan } from "../plan/verified.ts";

/**
 * Model-based coverage: xstate/graph walks the abstract model of each plan (the same spec,
 * effects turned into events), and every path is replayed on the real machine with effects
 * that answer as the path says. The real machine must visit the same steps, and together the
 * paths must reach every state of the plan.
 */
const plausible: Partial<Record<ActorName, unknown>> = {
  confirmStopped: { lsn: 1000, endLsn: 1114 },
  promote: { timeline: 2 },
  waitForStreaming: { timeline: 2 },
  rewind: { method: "rewind", bytesCopied: 8192 },
  baseBackup: { method: "baseBackup", bytesCopied: 1 << 25 },
};

type PathEvent = { type: string };

function stepOf(value: unknown): string {
  return typeof value === "string" ? value : (Object.keys(value as object)[0] ?? "");
}

/**
 * Replays a model path on the real machine; returns the steps the real machine went through.
 * Each step gets an effect of its own that answers with the path's next event: OK (with the
 * branch's example output), FAIL (rejects), DEADLINE or GIVE_UP (never answers, so the
 * machine's own timers decide), RETRY (the backoff passed; answer the event after it).
 */
async function replay(spec: PlanSpec, events: PathEvent[]): Promise<string[]> {
  const clock = new SimClock();
  const queue = [...events];
  let givingUp: string | null = null;
  const answer = (step: string): Promise<unknown> => {
    if (givingUp === step) return new Promise(() => {});
    givingUp = null;
    const e = queue.shift();
    if (!e || e.type === "DEADLINE") return new Promise(() => {});
    if (e.type === "GIVE_UP") {
      givingUp = step;
      return new Promise(() => {});
    }
    if (e.type === "FAIL") return Promise.reject(new Error("scripted failure"));
    if (e.type === "RETRY") return answer(step);
    const s = spec.steps[step] as StepSpec;
    const target = e.type.startsWith("OK:") ? e.type.slice(3) : null;
    const branch = branchesOf(s).find((b) => b.target === target);
    return Promise.resolve(branch?.example ?? plausible[s.actor]);
  };
  // One effect per step, named after it, so that each knows which step it answers for.
  const steps: Record<string, StepSpec> = {};
  const actors: Record<string, unknown> = {};
  for (const [id, s] of Object.entries(spec.steps)) {
    steps[id] = { ...s, actor: id as ActorName };
    actors[id] = fromPromise(() => answer(id));
  }
  const machine = buildMachine({ ...spec, steps }).provide({ actors: actors as never });
  const actor = createActor(machine, {
    input: {
      primary: "node1",
      standby: "node2",
      targetVersion: "15.20",
      timeouts: simTimeouts,
      runId: newRunId(),
      maxLagBytes: 1,
    },
    clock,
  });
  const visited: string[] = [];
  actor.subscribe((snap) => {
    const step = stepOf(snap.value);
    if (visited.at(-1) !== step) visited.push(step);
  });
  actor.start();
  await clock.runUntilIdle(3_600_000, () => actor.getSnapshot().status === "done");
  return visited;
}

function modelSteps(path: { steps: Array<{ state: { value: unknown } }> }): string[] {
  const out: string[] = [];
  for (const s of path.steps) {
    const step = stepOf(s.state.value);
    if (out.at(-1) !== step) out.push(step);
  }
  return out;
}

/** Every state of the real machine but the resume entry, which the resume test covers. */
function allStates(spec: PlanSpec): string[] {
  return Object.keys(buildMachine(spec).root.states).filter((s) => s !== RESUMING);
}

describe.each([verifiedPlan, seedPlan])("the $id plan", (spec) => {
  const paths = getShortestPaths(abstractModel(spec));

  it("reaches every one of its states through the model's shortest paths", () => {
    const reached = new Set(paths.flatMap((p) => modelSteps(p)));
    expect(allStates(spec).filter((s) => !reached.has(s))).toEqual([]);
  });

  it("follows, on the real machine, the path the model takes to each state", async () => {
    for (const path of paths) {
      const events = path.steps.slice(1).map((s) => s.event as PathEvent);
      const expected = modelSteps(path);
      const visited = await replay(spec, events);
      expect(visited.slice(0, expected.length), `path ${expected.join(" → ")}`).toEqual(expected);
    }
  });

  it("can be resumed at every step", () => {
    const model = abstractModel(spec);
    const resumable = Object.keys(model.root.states[RESUMING]?.on ?? {}).map((e) =>
      e.replace("resume.", ""),
    );
    expect(resumable.sort()).toEqual(Object.keys(spec.steps).sort());
  });
});

describe("the verified plan's gates", () => {
  const machine = buildMachine(verifiedPlan);
  const context = (over: Partial<PlanContext>) =>
    ({ shutdownCheckpoint: { lsn: 1000, endLsn: 1114 }, ...over }) as PlanContext;
  const canPromote = machine.implementations.guards.canPromote as (a: unknown) => boolean;

  it("promotes only once the standby replayed to the end of the shutdown checkpoint", () => {
    const at = (replayLsn: number, c: Partial<PlanContext> = {}) =>
      canPromote({ context: context(c), event: { output: { replayLsn } } });
    expect(at(1114)).toBe(true);
    expect(at(1113)).toBe(false);
    expect(at(5000, { shutdownCheckpoint: null })).toBe(false);
  });

  it("never lets a failure before promotion lead anywhere but the rollback or aborted", () => {
    const beforePromotion = [
      "checkpointPrimary",
      "waitStandbyCaughtUp",
      "fencePrimary",
      "vipDownPrimary",
      "stopPrimary",
      "confirmPrimaryStopped",
      "waitStandbyReplayed",
    ];
    for (const id of beforePromotion) expect(verifiedPlan.steps[id]?.fail).toBe("startOldPrimary");
  });

  it("upgrades the old primary only while it is fenced, and only once it can start only as a standby", () => {
    // On stock Debian the upgrade's package scripts start every cluster that is not fenced.
    const c = initialContext({
      primary: "node1",
      standby: "node2",
      targetVersion: "15.20",
      timeouts: simTimeouts,
      runId: newRunId(),
      maxLagBytes: 1,
    });
    const steps = verifiedPlan.steps;
    const onOldPrimary = (id: string) => steps[id]?.input(c).node === c.primary;
    const ids = Object.keys(steps).filter(onOldPrimary);
    // A fence step, or a stop that fences first.
    const fences = ids.filter(
      (id) =>
        steps[id]?.actor === "fence" ||
        (steps[id]?.actor === "stopPostgres" && steps[id]?.input(c).fence === true),
    );
    const starts = ids.filter((id) =>
      ["startPostgres", "ensureServing"].includes(steps[id]?.actor ?? ""),
    );
    /** The steps reachable from `from`'s ways out without entering a `blocked` one. */
    const reachable = (from: string, blocked: string[]) => {
      const seen = new Set<string>();
      const next = (id: string) => {
        const s = steps[id];
        return s ? [...branchesOf(s).map((b) => b.target), s.fail] : [];
      };
      const queue = next(from);
      while (queue.length > 0) {
        const id = queue.shift() as string;
        if (seen.has(id) || blocked.includes(id)) continue;
        seen.add(id);
        queue.push(...next(id));
      }
      return seen;
    };
    expect(fences).toContain("fencePrimary");
    expect(reachable("preflight", fences).has("upgradeOldPrimary")).toBe(false);
    for (const fence of fences) {
      expect(reachable(fence, starts).has("upgradeOldPrimary")).toBe(true);
      const unconfigured = reachable(fence, [...starts, "configureOldPrimary"]);
      expect(unconfigured.has("upgradeOldPrimary"), `from ${fence}`).toBe(false);
    }
    // The old primary is stopped only once fenced: no way from preflight to its stop avoids a fence.
    const primaryStops = ids.filter((id) => steps[id]?.actor === "stopPostgres");
    for (const stop of primaryStops)
      expect(reachable("preflight", fences).has(stop), `${stop} unfenced`).toBe(false);
  });
});
