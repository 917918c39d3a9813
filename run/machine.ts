import { createActor, type InspectionEvent, type Snapshot } from "xstate";
import { buildMachine, type PlanMachine, RESUMING } from "../plan/build.ts";
import type { PlanContext, PlanInput } from "../plan/context.ts";
import type { Journal } from "../plan/journal.ts";
import { FINAL_STATES, type FinalState, type PlanSpec } from "../plan/spec.ts";
import { type ActorDeps, implementActors } from "./effect-impls.ts";

export interface RunResult {
  status: FinalState;
  context: PlanContext;
}

export interface RunHandle {
  /** Settles when the plan reaches `done` or `aborted`; never if the run is killed. */
  result: Promise<RunResult>;
  finished(): boolean;
  /** The step the plan is in now; once it ended, the last step it took. */
  step(): string;
  /** The operator's process dies: the plan stops where it is, its journal stays. */
  kill(): void;
}

export interface RunOptions {
  spec: PlanSpec;
  deps: ActorDeps;
  journal: Journal;
  /** Called on entering each step, for live progress. */
  onStep?: (step: string, context: PlanContext) => void;
}

const depsBySystem = new WeakMap<object, ActorDeps>();
const machines = new WeakMap<PlanSpec, PlanMachine>();

/** Each plan is built and provided with its effects once; a run's deps are found by its actor system. */
function machineFor(spec: PlanSpec): PlanMachine {
  let m = machines.get(spec);
  if (!m) {
    m = buildMachine(spec).provide({ actors: implementActors((system) => depsOf(system)) });
    machines.set(spec, m);
  }
  return m;
}

function depsOf(system: object): ActorDeps {
  const deps = depsBySystem.get(system);
  if (!deps) throw new Error("a plan effect ran outside a run");
  return deps;
}

/** Runs a plan from its start. */
export function startRun(o: RunOptions, input: PlanInput): RunHandle {
  o.journal.append({ kind: "start", t: o.deps.clock.now(), plan: o.spec.id, input });
  return drive(o, { input });
}

/** Continues a run at `step` with the context its journal recorded. */
export function resumeRun(o: RunOptions, step: string, context: PlanContext): RunHandle {
  if (!(step in o.spec.steps)) throw new Error(`the ${o.spec.id} plan has no step "${step}"`);
  o.journal.append({ kind: "resume", t: o.deps.clock.now(), step });
  const snapshot = machineFor(o.spec).resolveState({ value: RESUMING, context });
  return drive(o, { snapshot, input: context }, { type: `resume.${step}` });
}

function topStep(value: unknown): string {
  return typeof value === "string" ? value : (Object.keys(value as object)[0] ?? "");
}

/**
 * Runs the actor, journaling each step it enters. A step is seen on the microstep that enters
 * it, before its invoked effect starts (a subscriber hears of it only after): a nemesis aimed at
 * the step's own command can then arm in time.
 */
function drive(
  o: RunOptions,
  options: { input: PlanInput; snapshot?: Snapshot<unknown> },
  resume?: { type: `resume.${string}` },
): RunHandle {
  let current = resume ? RESUMING : "";
  let done = false;
  let settle: (r: RunResult) => void = () => {};
  const result = new Promise<RunResult>((resolve) => {
    settle = resolve;
  });
  const seen = (snap: { value: unknown; context: PlanContext }) => {
    const step = topStep(snap.value);
    // Once ended, step() still names the last step taken: what a report says the run ended after.
    if (step === current || (FINAL_STATES as readonly string[]).includes(step)) return;
    current = step;
    if (step === RESUMING) return;
    o.journal.append({ kind: "transition", t: o.deps.clock.now(), step, context: snap.context });
    o.onStep?.(step, snap.context);
  };
  const inspect = (ev: InspectionEvent) => {
    if (ev.type === "@xstate.microstep" && ev.actorRef === actor)
      seen(ev.snapshot as unknown as { value: unknown; context: PlanContext });
  };
  const actor = createActor(machineFor(o.spec), { ...options, clock: o.deps.clock, inspect });
  depsBySystem.set(actor.system, o.deps);
  actor.subscribe((snap) => {
    if (snap.status !== "done" || done) return;
    done = true;
    const status = topStep(snap.value) as FinalState;
    o.journal.append({ kind: "end", t: o.deps.clock.now(), status, context: snap.context });
    settle({ status, context: snap.context });
  });
  // The initial step is entered on start, without a microstep.
  if (!resume) seen(actor.getSnapshot());
  actor.start();
  if (resume) actor.send(resume);
  return {
    result,
    finished: () => done,
    step: () => current,
    kill: () => actor.stop(),
  };
}
