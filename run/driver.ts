import type { Clock } from "../core/clock.ts";
import type { ClusterView, RoleObservation } from "../core/cluster-view.ts";
import type { Executor } from "../core/executor.ts";
import { History } from "../core/history.ts";
import type { PlanContext, PlanInput } from "../plan/context.ts";
import { type Journal, lastPosition } from "../plan/journal.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { journaled } from "./journaled.ts";
import { type RunHandle, type RunOptions, type RunResult, resumeRun, startRun } from "./machine.ts";

/**
 * Where a run happens: the simulator's world on its clock, or real hosts on the wall clock
 * (run/simulated-cluster.ts, run/real-cluster.ts). The driver is the same for both.
 */
export interface RunWorld {
  executor: Executor;
  clock: Clock;
  /** The id of the n-th probe write: unique on this cluster, also across runs. */
  probeId(n: number): string;
  /** Starts the client writing into `history`, if this world has one. */
  startWorkload?(history: History): { stop(): Promise<void> | void };
  /** Starts watching who serves; `stop` gives what was seen (the split-brain checker's input). */
  watchRoles(): { stop(): Promise<RoleObservation[]> };
  /**
   * Lets time pass until `ended` settles, `boundMs` passes (null: no bound) or `signal` aborts.
   * The simulator drives its own clock; real hosts just wait.
   */
  runUntil(
    ended: Promise<unknown>,
    isEnded: () => boolean,
    boundMs: number | null,
    signal?: AbortSignal,
  ): Promise<void>;
  /** The cluster once the incident is over, the standby given up to `settleMs` to catch up. */
  finalLook(settleMs: number): Promise<FinalLook>;
}

/** A view that could not be taken makes the checkers answer `unknown`. */
export type FinalLook = { ok: true; view: ClusterView } | { ok: false; error: unknown };

/** What a nemesis may do to the operator's process: kill it, then start it again (`--resume`). */
export interface Operator {
  /** Kills the operator's process; false when none runs (it died and was not resumed yet). */
  dies(): boolean;
  /** A new process reads the journal and carries on where it stopped; says at which step. */
  resumes(): string | null;
}

/** A fault injector driven by the run (verify/sim-nemesis.ts, verify/lab-nemesis.ts). */
export interface RunNemesis {
  /** The plan's executor, through which a step's command is made to fail or hang. */
  wrap(x: Executor): Executor;
  /** Each step as it starts, before its effect's first command: faults aimed at it are armed. */
  onStep(step: string, operator: Operator): void;
  /** The run has ended: nothing strikes any more, and every fault still in force ends. */
  heal(): Promise<void> | void;
}

export interface DriveOptions {
  spec: PlanSpec;
  input: PlanInput;
  journal: Journal;
  world: RunWorld;
  /** Continue a run whose process died, at the step reconciled from its journal. */
  resume?: { step: string; context: PlanContext };
  nemesis?: RunNemesis;
  /** Called as each step starts, for live progress. */
  onStep?: (step: string, context: PlanContext) => void;
  /** Ctrl-C: the plan stops where it is (its journal stays), the cluster is still looked at. */
  signal?: AbortSignal;
  /** A run not ended after this long is stopped and is `stuck`; null: no bound. */
  boundMs: number | null;
  /** After the run: how long the rejoined standby gets to replay everything before the look. */
  settleMs: number;
}

export interface RunRecord {
  status: RunResult["status"] | "stuck" | "interrupted";
  /** The plan's context at its end; null when it did not end. */
  context: PlanContext | null;
  /** The step the run ended in or after. */
  lastStep: string;
  history: History;
  roles: RoleObservation[];
  final: FinalLook;
  /** Time the plan itself took (ms on the world's clock). */
  planMs: number;
}

/**
 * The one driver of a run, simulated or real: the plan on the world's executor (wrapped by the
 * nemesis and journaled), the client writing, the roles watched; then the faults heal, the
 * cluster settles, and the record goes to the checkers (verify/judge.ts).
 */
export async function drive(o: DriveOptions): Promise<RunRecord> {
  const { world } = o;
  const history = new History();
  const started = world.clock.now();
  const executor = journaled(
    o.nemesis ? o.nemesis.wrap(world.executor) : world.executor,
    o.journal,
    world.clock,
  );
  let probes = 0;
  let settle: (r: RunResult) => void = () => {};
  const ended = new Promise<RunResult>((resolve) => {
    settle = resolve;
  });
  let operatorAlive = true;
  const operator: Operator = {
    dies: () => {
      if (!operatorAlive) return false;
      operatorAlive = false;
      run.kill();
      return true;
    },
    resumes: () => {
      const at = lastPosition(o.journal.entries());
      if (operatorAlive || !at || !("step" in at)) return null;
      operatorAlive = true;
      // The new process's run replaces the killed one: `ended` settles with it.
      run = resumeRun(options, at.step, at.context);
      void run.result.then(settle);
      return at.step;
    },
  };
  const options: RunOptions = {
    spec: o.spec,
    journal: o.journal,
    deps: {
      executor,
      clock: world.clock,
      history,
      probeId: () => world.probeId(probes++),
      runId: o.resume?.context.runId ?? o.input.runId,
    },
    onStep: (step, context) => {
      o.nemesis?.onStep(step, operator);
      o.onStep?.(step, context);
    },
  };
  let run: RunHandle = o.resume
    ? resumeRun(options, o.resume.step, o.resume.context)
    : startRun(options, o.input);
  void run.result.then(settle);
  const workload = world.startWorkload?.(history);
  const watch = world.watchRoles();
  await world.runUntil(ended, () => run.finished(), o.boundMs, o.signal);
  const planMs = world.clock.now() - started;
  const result = run.finished() ? await ended : null;
  if (!result) run.kill();
  const status = result?.status ?? (o.signal?.aborted ? "interrupted" : "stuck");
  await workload?.stop();
  // Healed while the roles are still watched: what a healed fault brings back is judged too.
  await o.nemesis?.heal();
  const roles = await watch.stop();
  // Interrupted: the operator wants out, so one look at the cluster, no wait for a catch-up.
  const final = await world.finalLook(status === "interrupted" ? 0 : o.settleMs);
  return {
    status,
    context: result?.context ?? null,
    lastStep: run.step(),
    history,
    roles,
    final,
    planMs,
  };
}

/** Several nemeses as one: each wraps the executor in turn and hears every step. */
export function combined(...nemeses: RunNemesis[]): RunNemesis {
  return {
    wrap: (x) => nemeses.reduce((inner, n) => n.wrap(inner), x),
    onStep: (step, operator) => {
      for (const n of nemeses) n.onStep(step, operator);
    },
    heal: async () => {
      for (const n of nemeses) await n.heal();
    },
  };
}
