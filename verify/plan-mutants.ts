import type { CallOptions, Executor, NodeName } from "../core/executor.ts";
import { branchesOf, FINAL_STATES, type PlanSpec, type StepSpec } from "../plan/spec.ts";
import type { RunNemesis } from "../run/driver.ts";
import { faultFreePath } from "./critical-window.ts";

/**
 * Broken plans, generated from the plan's data rather than picked: the suite must kill each one
 * (some scenario violates a safety property) or a checked-in line must say why it is equivalent
 * for safety. A mutant changes the spec, or makes one step's effect believe what it should not
 * (an executor that lies while the plan is in that step).
 */
export interface Mutant {
  id: string;
  /** What is broken, for a person. */
  does: string;
  spec: PlanSpec;
  /**
   * The steps the mutation is about, where focused scenarios aim their faults, the first one
   * hardest: the mutated step and the steps that lead into it (a broken failure edge shows only
   * when that very step goes wrong; a skipped check, when something went wrong just before it);
   * for a fence left off, the stop and the steps after it (where the host starts it again).
   */
  focus: string[];
  /** An effect mutant: lies to the plan while it is in one step. */
  lie?: StepLie;
}

export interface StepLie {
  step: string;
  wrap(x: Executor): Executor;
}

type Steps = Record<string, StepSpec>;

const isFinal = (target: string) => (FINAL_STATES as readonly string[]).includes(target);

function withSteps(spec: PlanSpec, steps: Steps, initial = spec.initial): PlanSpec {
  return { ...spec, initial, steps };
}

function mapSteps(spec: PlanSpec, f: (id: string, s: StepSpec) => StepSpec): Steps {
  return Object.fromEntries(Object.entries(spec.steps).map(([id, s]) => [id, f(id, s)]));
}

/** Every edge into `from` goes to `to` instead. */
function retarget(spec: PlanSpec, from: string, to: string): PlanSpec {
  const t = (x: string) => (x === from ? to : x);
  const steps = mapSteps(spec, (_, s) => ({
    ...s,
    fail: t(s.fail),
    done:
      typeof s.done === "string" ? t(s.done) : s.done.map((b) => ({ ...b, target: t(b.target) })),
  }));
  return withSteps(spec, steps, t(spec.initial));
}

/** The steps with an edge into `id`, then those with an edge into them: nearest first, a few. */
function upstream(spec: PlanSpec, id: string): string[] {
  const into = (t: string) =>
    Object.entries(spec.steps)
      .filter(([s, x]) => s !== t && [...branchesOf(x).map((b) => b.target), x.fail].includes(t))
      .map(([s]) => s);
  const near = into(id);
  return [...new Set([...near, ...near.flatMap(into)])].filter((s) => s !== id).slice(0, 4);
}

/** `id` and the steps that lead into it. */
const around = (spec: PlanSpec, id: string) => [id, ...upstream(spec, id)];

function replaceStep(spec: PlanSpec, id: string, step: StepSpec): PlanSpec {
  return withSteps(spec, { ...spec.steps, [id]: step });
}

/** Each step skipped: what entered it goes where its success would have led. */
function skipped(spec: PlanSpec): Mutant[] {
  return Object.entries(spec.steps).flatMap(([id, s]) => {
    const next = branchesOf(s)[0]?.target;
    // A fence step skipped is the fence left off: fences() makes that mutant.
    if (next === undefined || next === id || s.actor === "fence") return [];
    const mutant = { id: `skip:${id}`, does: `${id} is skipped`, spec: retarget(spec, id, next) };
    return [{ ...mutant, focus: [...upstream(spec, id), next] }];
  });
}

/** Each guard dropped (its branch always taken) or inverted (its target and the fallback's swapped). */
function guards(spec: PlanSpec): Mutant[] {
  return Object.entries(spec.steps).flatMap(([id, s]) => {
    if (typeof s.done === "string") return [];
    const branches = s.done;
    const fallback = branches.length - 1;
    return branches.flatMap((b, i) => {
      if (!b.guard) return [];
      const dropped = branches.map((x, j) =>
        j === i ? { target: x.target, example: x.example } : x,
      );
      const inverted = branches.map((x, j) =>
        j === i
          ? { ...x, target: branches[fallback]?.target ?? x.target }
          : j === fallback
            ? { ...x, target: b.target }
            : x,
      );
      return [
        {
          id: `drop-guard:${id}:${b.guard}`,
          does: `${id} takes the ${b.target} branch without checking ${b.guard}`,
          focus: around(spec, id),
          spec: replaceStep(spec, id, { ...s, done: dropped }),
        },
        {
          id: `invert-guard:${id}:${b.guard}`,
          does: `${id} goes to ${branches[fallback]?.target} when ${b.guard} holds, to ${b.target} when not`,
          focus: around(spec, id),
          spec: replaceStep(spec, id, { ...s, done: inverted }),
        },
      ];
    });
  });
}

/** Each deadline removed: the step waits as long as its effect does. */
function deadlines(spec: PlanSpec): Mutant[] {
  return Object.entries(spec.steps).flatMap(([id, s]) =>
    s.deadline === null
      ? []
      : [
          {
            id: `no-deadline:${id}`,
            does: `${id} has no deadline`,
            focus: around(spec, id),
            spec: replaceStep(spec, id, { ...s, deadline: null }),
          },
        ],
  );
}

/** Where the plan rolls back to: the failure target of the step that takes the VIP down. */
function rollbackOf(spec: PlanSpec): string | null {
  return Object.values(spec.steps).find((s) => s.actor === "vipDown")?.fail ?? null;
}

/** Each failure edge sent to the rollback, or to `done`. */
function failureEdges(spec: PlanSpec): Mutant[] {
  const rollback = rollbackOf(spec);
  const targets = [...(rollback ? [rollback] : []), "done"];
  return Object.entries(spec.steps).flatMap(([id, s]) =>
    targets
      .filter((t) => t !== s.fail && t !== id)
      .map((t) => ({
        id: `fail-to:${id}:${t}`,
        does: `a failure of ${id} goes to ${t} (not ${s.fail})`,
        focus: around(spec, id),
        spec: replaceStep(spec, id, { ...s, fail: t }),
      })),
  );
}

/** The first stop the success path from `from` reaches: where a fence left off shows. */
function stopAfter(spec: PlanSpec, from: string): string {
  return faultFreePath(spec, from).find((id) => spec.steps[id]?.actor === "stopPostgres") ?? from;
}

/** A stop and the steps its success goes through next: where the host starting it again shows. */
const fromStop = (spec: PlanSpec, stop: string) => faultFreePath(spec, stop).slice(0, 4);

/** Each fence left off: a fence step skipped, a fenced stop made without its fence. */
function fences(spec: PlanSpec, probe: Parameters<StepSpec["input"]>[0]): Mutant[] {
  return Object.entries(spec.steps).flatMap(([id, s]) => {
    const next = branchesOf(s)[0]?.target;
    if (s.actor === "fence" && next !== undefined && next !== id)
      return [
        {
          id: `no-fence:${id}`,
          does: `${id} is skipped: the stop that follows leaves the server unfenced`,
          spec: retarget(spec, id, next),
          focus: fromStop(spec, stopAfter(spec, next)),
        },
      ];
    if (s.actor !== "stopPostgres" || s.input(probe).fence !== true) return [];
    const input = (c: typeof probe) => ({ ...s.input(c), fence: false });
    return [
      {
        id: `no-fence:${id}`,
        does: `${id} stops without fencing`,
        spec: replaceStep(spec, id, { ...s, input }),
        focus: fromStop(spec, id),
      },
    ];
  });
}

/** The rejoin decision forced to each of its methods. */
function rejoins(spec: PlanSpec): Mutant[] {
  return Object.entries(spec.steps).flatMap(([id, s]) => {
    if (s.actor !== "decideRejoin" || typeof s.done === "string") return [];
    return [...new Set(s.done.map((b) => b.target))].map((target) => ({
      id: `force-rejoin:${id}:${target}`,
      does: `${id} always goes to ${target}`,
      focus: around(spec, id),
      spec: replaceStep(spec, id, { ...s, done: target }),
    }));
  });
}

/** A mutant of step `id` whose executor answers `patch`'s way while the plan is in that step. */
function lieIn(
  spec: PlanSpec,
  id: string,
  name: string,
  does: string,
  patch: (x: Executor) => Partial<Executor>,
): Mutant {
  const lie = { step: id, wrap: (x: Executor) => ({ ...x, ...patch(x) }) };
  return { id: `lie:${id}:${name}`, does: `${id} ${does}`, spec, focus: around(spec, id), lie };
}

/** The effects' own weak spots, as executors that lie to one step. */
function effectLies(spec: PlanSpec): Mutant[] {
  const confirm = Object.entries(spec.steps).filter(([, s]) => s.actor === "confirmStopped");
  return confirm.flatMap(([id]) => [
    lieIn(
      spec,
      id,
      "any-state",
      "accepts whatever state the old primary is in (running, crashed)",
      (x) => ({
        controlData: async (n: NodeName, o?: CallOptions) => {
          const cd = await x.controlData(n, o);
          return cd.ok ? { ...cd, running: false, state: "shut down" as const } : cd;
        },
      }),
    ),
    lieIn(
      spec,
      id,
      "checkpoint-start",
      "reads the start of the shutdown checkpoint record, not its end (the gate then waits for less)",
      (x) => ({
        controlData: async (n: NodeName, o?: CallOptions) => {
          const cd = await x.controlData(n, o);
          return cd.ok ? { ...cd, checkpointEndLsn: cd.checkpointLsn } : cd;
        },
      }),
    ),
  ]);
}

/** Every mutant of `spec`. `probe` is a context the steps' inputs can be read with. */
export function mutantsOf(spec: PlanSpec, probe: Parameters<StepSpec["input"]>[0]): Mutant[] {
  return [
    ...skipped(spec),
    ...guards(spec),
    ...deadlines(spec),
    ...failureEdges(spec),
    ...fences(spec, probe),
    ...rejoins(spec),
    ...effectLies(spec),
  ].filter((m) => !isFinal(m.spec.initial));
}

/** A lie as the run's nemesis: the plan's executor lies while the plan is in the lie's step. */
export function lieNemesis(lie: StepLie): RunNemesis {
  let step = "";
  return {
    wrap(x) {
      const lied = lie.wrap(x);
      const calls: Record<string, unknown> = {};
      for (const op of Object.keys(x)) {
        calls[op] = (...args: unknown[]) => {
          const to = (step === lie.step ? lied : x) as unknown as Record<
            string,
            (...a: unknown[]) => unknown
          >;
          return to[op]?.apply(to, args);
        };
      }
      return calls as unknown as Executor;
    },
    onStep(s) {
      step = s;
    },
    heal() {},
  };
}
