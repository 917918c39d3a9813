import { type Actor, createActor } from "xstate";
import { type ActorDeps, implementActors } from "../executors/actors.ts";
import { buildMachine, type PlanMachine, RESUMING } from "./build.ts";
import type { PlanContext, PlanInput } from "./context.ts";
import type { Journal } from "./journal.ts";
import { FINAL_STATES, type FinalState, type PlanSpec } from "./spec.ts";

export interface RunResult {
  status: FinalState;
  context: PlanContext;
}

export interface RunHandle {
  /** Settles when the plan reaches `done` or `aborted`; never if the run is killed. */
  result: Promise<RunResult>;
  finished(): boolean;
  /** The step the plan is in now. */
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
  return drive(o, createActor(machineFor(o.spec), { input, clock: o.deps.clock }));
}

/** Continues a run at `step` with the context its journal recorded. */
export function resumeRun(o: RunOptions, step: string, context: PlanContext): RunHandle {
  if (!(step in o.spec.steps)) throw new Error(`the ${o.spec.id} plan has no step "${step}"`);
  o.journal.append({ kind: "resume", t: o.deps.clock.now(), step });
  const machine = machineFor(o.spec);
  const snapshot = machine.resolveState({ value: RESUMING, context });
  const actor = createActor(machine, { snapshot, input: context, clock: o.deps.clock });
  const handle = drive(o, actor, RESUMING);
  actor.send({ type: `resume.${step}` });
  return handle;
}

function topStep(value: unknown): string {
  return typeof value === "string" ? value : (Object.keys(value as object)[0] ?? "");
}

function drive(o: RunOptions, actor: Actor<PlanMachine>, startAt?: string): RunHandle {
  depsBySystem.set(actor.system, o.deps);
  let current = startAt ?? "";
  let done = false;
  let settle: (r: RunResult) => void = () => {};
  const result = new Promise<RunResult>((resolve) => {
    settle = resolve;
  });
  actor.subscribe((snap) => {
    const step = topStep(snap.value);
    const t = o.deps.clock.now();
    if (
      step !== current &&
      step !== RESUMING &&
      !(FINAL_STATES as readonly string[]).includes(step)
    ) {
      o.journal.append({ kind: "transition", t, step, context: snap.context });
      o.onStep?.(step, snap.context);
    }
    current = step;
    if (snap.status === "done" && !done) {
      done = true;
      const status = step as FinalState;
      o.journal.append({ kind: "end", t, status, context: snap.context });
      settle({ status, context: snap.context });
    }
  });
  actor.start();
  return {
    result,
    finished: () => done,
    step: () => current,
    kill: () => actor.stop(),
  };
}
