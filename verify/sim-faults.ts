import fc from "fast-check";
import { simTimeouts } from "../core/timeouts.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { criticalWindow, detours, faultFreePath } from "./critical-window.ts";

/** `primary` and `standby` name the roles the nodes had when the run started. */
export type Role = "primary" | "standby";

/** The fault vocabulary, each fault aimed at a step of the plan; `At` says when in that step. */
export type FaultOf<At> =
  | { kind: "crash"; node: Role; at: At }
  | { kind: "freeze"; node: Role; at: At; forMs: number }
  | {
      kind: "partition";
      between: "nodes" | "client-primary" | "client-standby";
      at: At;
      forMs: number;
    }
  | { kind: "slowReplication"; at: At; forMs: number; lagMs: number }
  | { kind: "commandFails"; at: At }
  | { kind: "commandHangs"; at: At }
  | { kind: "operatorDies"; at: At; downMs: number }
  /** The node's host reboots (sim/host.ts): its server stops, the VIP goes, it boots `downMs` later. */
  | { kind: "reboot"; node: Role; at: At; downMs: number };

/**
 * When a simulated fault strikes: `fraction` (in [0, 1)) of the way through `step`, measured
 * in the step's own units: its expected duration in the simulator for a fault of the world (a
 * crash 30% into a 40 ms stop lands 12 ms in, one into a 2 s upgrade 600 ms in), its expected
 * number of commands for a command's fault (the 2nd of 4). A fixed delay after the step
 * started would land most faults in the long steps, and past the end of the short ones where
 * safety is decided.
 */
export interface Moment {
  step: string;
  fraction: number;
}

/**
 * The simulator's faults: the vocabulary at a moment of a step, and one the lab does not
 * strike: a command that ran on its host, whose reply is lost (the caller waits until its
 * deadline; the effect happened).
 */
export type SimFault =
  | FaultOf<Moment>
  | { kind: "replyLost"; at: Moment }
  /**
   * The operator's process stops for `forMs` (a laptop's sleep, SIGSTOP, a stalled VM), then
   * goes on: the commands it would send meanwhile, and the replies it would read, wait for it.
   * Simplified: the plan's own deadlines still pass on time (a real paused process sees them
   * all pass at once as it wakes: the same steps fail, a little later).
   */
  | { kind: "operatorPauses"; at: Moment; forMs: number }
  | PoolerFault<Moment>;

/** Faults of the pooler in front of the VIP: drawn only for a scenario that has one. */
export type PoolerFault<At> =
  /** A client's transaction through the pooler stays open `forMs`: a PAUSE waits for its end. */
  | { kind: "longTransaction"; at: At; forMs: number }
  /** The pooler's host restarts: every connection is dropped, a pause forgotten. */
  | { kind: "poolerRestart"; at: At; downMs: number }
  /** Its console does not answer the operator (the applications are still served). */
  | { kind: "poolerUnreachable"; at: At; forMs: number };

export type FaultKind = SimFault["kind"];
export const POOLER_FAULTS: readonly FaultKind[] = [
  "longTransaction",
  "poolerRestart",
  "poolerUnreachable",
];
export const FAULT_KINDS: readonly FaultKind[] = [
  "crash",
  "freeze",
  "partition",
  "slowReplication",
  "commandFails",
  "commandHangs",
  "replyLost",
  "operatorDies",
  "operatorPauses",
  "reboot",
  ...POOLER_FAULTS,
];
/** What any scenario may be struck by. */
export const CLUSTER_FAULTS = FAULT_KINDS.filter((k) => !POOLER_FAULTS.includes(k));
export const COMMAND_FAULTS: readonly FaultKind[] = ["commandFails", "commandHangs", "replyLost"];

/** What the simulator expects of each step, with no fault: how long it takes, how many commands. */
export type StepProfile = Record<string, { ms: number; calls: number }>;

/** How long a fault lasts, for the ones that last. */
export function faultMs(f: SimFault): number {
  if ("forMs" in f) return f.forMs;
  if ("downMs" in f) return f.downMs;
  return 0;
}

/**
 * A fault's duration: mostly seconds, which the plan's deadlines and retries ride out; one in
 * six outlasts the retry budget (`persist`), so the plan must give up, and safely.
 */
function lasting(min: number, max: number): fc.Arbitrary<number> {
  const budget = simTimeouts.persist;
  return fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min, max }) },
    { weight: 1, arbitrary: fc.integer({ min: budget, max: budget * 1.25 }) },
  );
}

/**
 * Every kind of fault (or `only` these) at a moment of one of `steps`, each kind as likely to
 * land: a crash is drawn twice as often, as half of them fall on a server already stopped,
 * and change nothing.
 */
function faultAt(
  steps: readonly string[],
  only: readonly FaultKind[] = CLUSTER_FAULTS,
): fc.Arbitrary<SimFault> {
  const at = fc.record({
    step: fc.constantFrom(...steps),
    // Thousandths: fast-check's doubles crowd near 0, its integers spread evenly.
    fraction: fc.integer({ min: 0, max: 999 }).map((n) => n / 1000),
  });
  const node = fc.constantFrom<Role>("primary", "standby");
  const forMs = lasting(50, 6000);
  const kinds: Array<{ kind: FaultKind; weight: number; arbitrary: fc.Arbitrary<SimFault> }> = [
    { kind: "crash", weight: 2, arbitrary: fc.record({ kind: fc.constant("crash"), node, at }) },
    {
      kind: "freeze",
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("freeze"), node, at, forMs }),
    },
    {
      kind: "partition",
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("partition"),
        between: fc.constantFrom(
          "nodes" as const,
          "client-primary" as const,
          "client-standby" as const,
        ),
        at,
        forMs,
      }),
    },
    {
      kind: "slowReplication",
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("slowReplication"),
        at,
        forMs,
        lagMs: fc.integer({ min: 50, max: 3000 }),
      }),
    },
    {
      kind: "commandFails",
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("commandFails"), at }),
    },
    {
      kind: "commandHangs",
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("commandHangs"), at }),
    },
    { kind: "replyLost", weight: 1, arbitrary: fc.record({ kind: fc.constant("replyLost"), at }) },
    {
      kind: "operatorDies",
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("operatorDies"), at, downMs: lasting(0, 5000) }),
    },
    {
      kind: "operatorPauses",
      weight: 1,
      // Half of them outlast the watchdog's deadline, measured from its arming.
      arbitrary: fc.record({
        kind: fc.constant("operatorPauses"),
        at,
        forMs: fc.integer({ min: 50, max: 2 * simTimeouts.watchdog }),
      }),
    },
    {
      kind: "reboot",
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("reboot"), node, at, downMs: lasting(200, 5000) }),
    },
    {
      kind: "longTransaction",
      weight: 1,
      // Mostly shorter than the PAUSE's deadline, which it then only delays; some outlast it.
      arbitrary: fc.record({
        kind: fc.constant("longTransaction"),
        at,
        forMs: fc.integer({ min: 50, max: 2 * simTimeouts.pause }),
      }),
    },
    {
      kind: "poolerRestart",
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("poolerRestart"), at, downMs: lasting(50, 3000) }),
    },
    {
      kind: "poolerUnreachable",
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("poolerUnreachable"), at, forMs }),
    },
  ];
  return fc.oneof(...kinds.filter((k) => only.includes(k.kind)));
}

/** The faults that last, and so are still in force some steps after they struck. */
const LASTING: readonly FaultKind[] = ["freeze", "partition", "slowReplication", "reboot"];

/**
 * A fault aimed at a step off the fault-free path, after the fault that takes the run there:
 * the first command of a step whose failure leads there fails or hangs (a poll that fails is
 * only polled again; one that hangs runs into the step's deadline).
 */
function detour(to: string, via: readonly string[]): fc.Arbitrary<SimFault[]> {
  return fc
    .tuple(
      fc.constantFrom(...via),
      fc.constantFrom("commandFails" as const, "commandHangs" as const),
      faultAt([to]),
    )
    .map(([from, kind, f]) => [{ kind, at: { step: from, fraction: 0 } }, f]);
}

type Weighted = { weight: number; arbitrary: fc.Arbitrary<SimFault[]> };

/**
 * A scenario's faults: none in one scenario in thirteen (a run with no fault must end done),
 * else one or two draws. Most aim inside the critical window (critical-window.ts): at a step
 * of it the fault-free run goes through, or in pairs at one only a failure leads to (the
 * rollback, the promotion's check). Some are faults that last, aimed at the step that enters
 * the window: begun just before the VIP goes down, they are in force through the switchover
 * (a standby frozen while the last writes through the VIP are acknowledged). The rest aim at
 * the other steps, the same two ways. Shrinking tries no fault first, then fewer.
 */
export function faultsArbitrary(spec: PlanSpec, pooler = false): fc.Arbitrary<SimFault[]> {
  const window = criticalWindow(spec);
  const path = faultFreePath(spec);
  const pooled = pooledSteps(spec, path);
  const approach = path[path.indexOf(window.onPath[0] ?? "") - 1];
  const elsewhere = path.filter((s) => !window.steps.includes(s) && s !== approach);
  const via = detours(spec);
  const detoursInto = (inWindow: boolean) =>
    [...via.entries()]
      .filter(([to]) => window.steps.includes(to) === inWindow)
      .map(([to, from]) => detour(to, from));
  const draws: Weighted[] = [
    { weight: 5, arbitrary: single(window.onPath) },
    { weight: 3, arbitrary: among(detoursInto(true)) },
    { weight: 1, arbitrary: approach ? single([approach], LASTING) : null },
    { weight: 1, arbitrary: single(elsewhere) },
    { weight: 1, arbitrary: among(detoursInto(false)) },
  ].filter((d): d is Weighted => d.arbitrary !== null);
  const cluster = fc.array(fc.oneof(...draws), { minLength: 1, maxLength: 2 }).map((d) => d.flat());
  // With a pooler, most struck scenarios get one of its faults besides: the cluster's faults
  // keep their share, and a scenario without any fault stays one.
  const struck =
    !pooler || pooled.paused.length === 0
      ? cluster
      : fc
          .tuple(
            cluster,
            fc.option(
              fc.oneof(
                { weight: 2, arbitrary: faultAt(pooled.pausing, ["longTransaction"]) },
                {
                  weight: 3,
                  arbitrary: faultAt(pooled.paused, ["poolerRestart", "poolerUnreachable"]),
                },
              ),
              { freq: 3 },
            ),
          )
          .map(([c, p]) => (p === null ? c : [...c, p]));
  return fc.oneof(
    { withCrossShrink: true },
    { weight: 1, arbitrary: fc.constant<SimFault[]>([]) },
    { weight: 12, arbitrary: struck },
  );
}

/**
 * Where a pooler's faults aim: a long transaction as its PAUSE is sent (the step before and the
 * pause itself); a restart or its console out of reach while it is paused (from its pause to its
 * resume on the fault-free path) and where the way back resumes it.
 */
function pooledSteps(spec: PlanSpec, path: readonly string[]) {
  const pooling = (s: string) =>
    ["pausePoolers", "resumePoolers"].includes(spec.steps[s]?.actor ?? "");
  const at = path.flatMap((s, i) => (pooling(s) ? [i] : []));
  const [first, last] = [at[0], at.at(-1)];
  if (first === undefined || last === undefined) return { pausing: [], paused: [] };
  const back = Object.keys(spec.steps).filter((s) => pooling(s) && !path.includes(s));
  return {
    pausing: path.slice(Math.max(0, first - 1), first + 1),
    paused: [...path.slice(first, last + 1), ...back],
  };
}

function single(
  steps: readonly string[],
  only?: readonly FaultKind[],
): fc.Arbitrary<SimFault[]> | null {
  return steps.length > 0 ? faultAt(steps, only).map((f) => [f]) : null;
}

function among(choices: fc.Arbitrary<SimFault[]>[]): fc.Arbitrary<SimFault[]> | null {
  return choices.length > 0 ? fc.oneof(...choices) : null;
}

/** The command of `step` a command fault aimed at `fraction` of it hits (0 = the first). */
export function commandIndex(fraction: number, calls: number): number {
  return Math.floor(fraction * Math.max(1, calls));
}

const ORDINALS = ["first", "second", "third", "fourth", "fifth"];

/** Says what a fault does and when; with the step profile, when in ms or which command. */
export function describeSimFault(f: SimFault, profile?: StepProfile): string {
  const { step, fraction } = f.at;
  const expected = profile?.[step];
  const pct = `${Math.round(fraction * 100)}%`;
  const when = expected ? `${Math.round(fraction * expected.ms)} ms (${pct})` : pct;
  if (f.kind === "longTransaction")
    return `a client's transaction through the pooler stays open ${f.forMs} ms from ${when} into ${step}`;
  if (f.kind === "poolerRestart")
    return `the pooler's host restarts ${when} into ${step}, down for ${f.downMs} ms`;
  if (f.kind === "poolerUnreachable")
    return `the pooler's console does not answer for ${f.forMs} ms from ${when} into ${step}`;
  if (f.kind === "operatorPauses")
    return `the operator's process is paused for ${f.forMs} ms from ${when} into ${step}: its commands and their replies wait`;
  if (f.kind === "commandFails" || f.kind === "commandHangs" || f.kind === "replyLost") {
    const k = expected ? commandIndex(fraction, expected.calls) : null;
    const which =
      k === null ? `a command of ${step}` : `the ${ORDINALS[k] ?? `${k + 1}th`} command of ${step}`;
    if (f.kind === "replyLost") return `${which} runs, but its reply is lost`;
    return `${which} ${f.kind === "commandFails" ? "fails" : "hangs"}`;
  }
  return describeFaultAt(f, `${when} into ${step}`);
}

/** The fault's description, `when` it strikes given by the caller. */
export function describeFaultAt(
  f: Exclude<FaultOf<unknown>, { kind: "commandFails" | "commandHangs" }>,
  when: string,
): string {
  switch (f.kind) {
    case "crash":
      return `the ${f.node} crashes (immediate stop) ${when}`;
    case "freeze":
      return `the ${f.node}'s host freezes for ${f.forMs} ms ${when}`;
    case "partition":
      return `the network between ${f.between.replace("-", " and ")} is cut for ${f.forMs} ms ${when}`;
    case "slowReplication":
      return `replication slows to ${f.lagMs} ms of lag for ${f.forMs} ms ${when}`;
    case "operatorDies":
      return `the operator's process dies ${when}, resumed from its journal ${f.downMs} ms later`;
    case "reboot":
      return `the ${f.node}'s host reboots ${when}, down for ${f.downMs} ms`;
  }
}
