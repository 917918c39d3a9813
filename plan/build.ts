import { assign, createMachine, setup } from "xstate";
import type { Lsn } from "../core/executor.ts";
import { initialContext, type PlanContext, type PlanInput, type RejoinMethod } from "./context.ts";
import { planActors } from "./effects.ts";
import { branchesOf, FINAL_STATES, type PlanSpec, type StepSpec } from "./spec.ts";

// biome-ignore lint/suspicious/noExplicitAny: step outputs differ per effect; each save reads its own.
type Output = any;

const planSetup = setup({
  types: {
    context: {} as PlanContext,
    input: {} as PlanInput,
    output: {} as PlanContext,
    events: {} as { type: `resume.${string}` },
  },
  actors: planActors,
  delays: {
    command: ({ context }) => context.timeouts.command,
    stop: ({ context }) => context.timeouts.stop,
    start: ({ context }) => context.timeouts.start,
    upgrade: ({ context }) => context.timeouts.upgrade,
    stream: ({ context }) => context.timeouts.stream,
    catchUp: ({ context }) => context.timeouts.catchUp,
    replay: ({ context }) => context.timeouts.replay,
    promote: ({ context }) => context.timeouts.promote,
    rejoin: ({ context }) => context.timeouts.rejoin,
    pause: ({ context }) => context.timeouts.pause,
    persist: ({ context }) => context.timeouts.persist,
    retryBackoff: ({ context }) => context.timeouts.retryBackoff,
  },
  guards: {
    // The gate: promote only once the old primary is confirmed down and the standby has
    // replayed up to the end of its shutdown checkpoint, i.e. holds every write it acknowledged.
    canPromote: ({ context, event }) =>
      context.shutdownCheckpoint !== null &&
      (event as Output).output.replayLsn >= context.shutdownCheckpoint.endLsn,
    isPromoted: ({ event }) => (event as Output).output.inRecovery === false,
    rejoinDirect: ({ event }) => (event as Output).output.method === "direct",
    rejoinRewind: ({ event }) => (event as Output).output.method === "rewind",
    rejoinBaseBackup: ({ event }) => (event as Output).output.method === "baseBackup",
  },
  actions: {
    recordFailure: assign({
      failure: ({ context, event }, params: { step: string }) => {
        const reason = reasonOf(event);
        const last = context.failure?.step === params.step ? context.failure.reason : null;
        // A retried step that runs out of time says why its last attempt failed.
        const withLast =
          last && reason === DEADLINE && !last.startsWith(DEADLINE)
            ? `${reason} (last error: ${last})`
            : reason;
        return { step: params.step, reason: withLast };
      },
    }),
    shutdownCheckpoint: assign({
      shutdownCheckpoint: ({ event }) => (event as Output).output as { lsn: Lsn; endLsn: Lsn },
    }),
    promotion: assign({
      promoted: true,
      newTimeline: ({ event }) => (event as Output).output.timeline as number,
    }),
    rejoin: assign({
      rejoin: ({ event }) => {
        const out = (event as Output).output as { method: RejoinMethod; bytesCopied?: number };
        return { method: out.method, bytesCopied: out.bytesCopied ?? 0 };
      },
    }),
  },
});

const DEADLINE = "deadline passed";

function reasonOf(event: { type: string; error?: unknown }): string {
  if (event.type.startsWith("xstate.after")) return DEADLINE;
  const e = event.error;
  return e instanceof Error ? e.message : String(e);
}

const failTo = (step: string, target: string) => ({
  target: `#${target}`,
  actions: { type: "recordFailure" as const, params: { step } },
});

function stepState(id: string, step: StepSpec) {
  const onDone = branchesOf(step).map((b) => ({
    target: `#${b.target}`,
    ...(b.guard ? { guard: b.guard } : {}),
    ...(step.save ? { actions: step.save } : {}),
  }));
  const invoke = {
    src: step.actor,
    input: ({ context }: { context: PlanContext }) => step.input(context),
    onDone,
  };
  const after = step.deadline ? { [step.deadline]: failTo(id, step.fail) } : {};
  if (!step.retry) return { id, invoke: { ...invoke, onError: failTo(id, step.fail) }, after };
  // Each attempt is bounded by the step's deadline (a hung command is abandoned and tried
  // again), the whole step by `persist`.
  const retryAfterFailure = { target: "backoff", actions: failTo(id, id).actions };
  return {
    id,
    initial: "attempt",
    after: { persist: failTo(id, step.fail) },
    states: {
      attempt: {
        invoke: { ...invoke, onError: retryAfterFailure },
        after: step.deadline ? { [step.deadline]: retryAfterFailure } : {},
      },
      backoff: { after: { retryBackoff: { target: "attempt" } } },
    },
  };
}

/** The executable plan: every step an invoked effect, every step bounded by a deadline. */
export function buildMachine(spec: PlanSpec) {
  const states: Record<string, unknown> = {};
  for (const [id, step] of Object.entries(spec.steps)) states[id] = stepState(id, step);
  for (const id of finalsOf(spec)) states[id] = { id, type: "final" };
  states[RESUMING] = { id: RESUMING, on: resumeEvents(spec) };
  return planSetup.createMachine({
    id: spec.id,
    initial: spec.initial,
    context: ({ input }) => initialContext(input),
    // biome-ignore lint/suspicious/noExplicitAny: generated from the spec, checked by the model tests.
    states: states as any,
    output: ({ context }) => context,
  });
}

export type PlanMachine = ReturnType<typeof buildMachine>;

/**
 * The entry of a resumed run: restored here with the journal's context, the runner sends
 * `resume.<step>` and the step is entered afresh, so its effect runs again (steps are
 * idempotent) and its deadline starts again. XState does not restore pending delayed events
 * from a snapshot, so restoring straight into the step would lose its deadline.
 */
export const RESUMING = "resuming";

/** The final states a plan can end in: the classic runbook never aborts. */
function finalsOf(spec: PlanSpec): string[] {
  const targets = new Set(
    Object.values(spec.steps).flatMap((s) => [s.fail, ...branchesOf(s).map((b) => b.target)]),
  );
  return FINAL_STATES.filter((f) => targets.has(f));
}

function resumeEvents(spec: PlanSpec): Record<string, string> {
  return Object.fromEntries(Object.keys(spec.steps).map((id) => [`resume.${id}`, `#${id}`]));
}

/**
 * The abstract model of a plan for xstate/graph: the same states and transitions, with each
 * effect's outcome turned into an event (`OK`, `OK:<target>` per guarded branch, `FAIL`,
 * `DEADLINE`, and for retried steps `RETRY` and `GIVE_UP`), and no invoke, which graph traversal cannot follow.
 */
export function abstractModel(spec: PlanSpec) {
  const states: Record<string, unknown> = {};
  for (const [id, step] of Object.entries(spec.steps)) {
    const on: Record<string, string> = {};
    const branches = branchesOf(step);
    for (const b of branches) on[branches.length > 1 ? `OK:${b.target}` : "OK"] = `#${b.target}`;
    on.FAIL = `#${step.fail}`;
    if (step.deadline) on.DEADLINE = `#${step.fail}`;
    if (!step.retry) {
      states[id] = { id, on };
      continue;
    }
    const { FAIL: _fail, DEADLINE: _deadline, ...forward } = on;
    states[id] = {
      id,
      initial: "attempt",
      on: { GIVE_UP: `#${step.fail}` },
      states: {
        attempt: { on: { ...forward, FAIL: "backoff", DEADLINE: "backoff" } },
        backoff: { on: { RETRY: "attempt" } },
      },
    };
  }
  for (const id of finalsOf(spec)) states[id] = { id, type: "final" };
  states[RESUMING] = { id: RESUMING, on: resumeEvents(spec) };
  // biome-ignore lint/suspicious/noExplicitAny: generated from the spec.
  return createMachine({ id: `${spec.id}-model`, initial: spec.initial, states: states as any });
}
