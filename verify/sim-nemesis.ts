import { sleep } from "../core/clock.ts";
import type { CallOptions, Executor, NodeName } from "../core/executor.ts";
import { branchesOf, FINAL_STATES, type PlanSpec } from "../plan/spec.ts";
import type { Operator, RunNemesis } from "../run/driver.ts";
import { reboot } from "../sim/host.ts";
import { CLIENT, OPERATOR, POOLER, type World } from "../sim/world.ts";
import { windingUp } from "./critical-window.ts";
import {
  COMMAND_FAULTS,
  commandIndex,
  describeFaultAt,
  describeSimFault,
  type FaultKind,
  type FaultOf,
  POOLER_FAULTS,
  type Role,
  type SimFault,
  type StepProfile,
} from "./sim-faults.ts";

export type { Role } from "./sim-faults.ts";

/** When a lab fault strikes: `delayMs` after the plan enters `step` (verify/lab-nemesis.ts). */
export interface Trigger {
  step: string;
  delayMs: number;
}

/** The fault vocabulary aimed by a delay in ms: the lab's (the simulator's is `SimFault`). */
export type Fault = FaultOf<Trigger>;

/**
 * The step whose success ends the run, when it does not retry: a fault striking there lands
 * after the plan has checked its work, and no plan can answer for it. Faults are dropped there.
 */
export function closingStep(spec: PlanSpec, step: string): boolean {
  return spec.steps[step]?.retry !== true && leadsOnlyTo(spec, step, () => false);
}

/** Whether every way out of `step` ends the run or enters a step `then` accepts. */
export function leadsOnlyTo(
  spec: PlanSpec,
  step: string,
  then: (target: string) => boolean,
): boolean {
  const s = spec.steps[step];
  return (
    s !== undefined &&
    branchesOf(s).every(
      (b) => (FINAL_STATES as readonly string[]).includes(b.target) || then(b.target),
    )
  );
}

export function describeFault(f: Fault): string {
  const when = `${f.at.delayMs} ms into ${f.at.step}`;
  if (f.kind === "commandFails") return `the next command fails ${when}`;
  if (f.kind === "commandHangs") return `the next command hangs ${when}`;
  return describeFaultAt(f, when);
}

/** A fault that landed: it changed something, in this step, at this time. */
export interface Strike {
  t: number;
  step: string;
  kind: FaultKind;
  fault: SimFault;
}

/** Expected of a step the profile does not know: one command, a few ms. */
const UNKNOWN_STEP = { ms: 10, calls: 1 };

/**
 * Strikes faults on the simulated cluster as the plan enters the steps they are aimed at, and
 * heals them when their time is up: the world's faults `fraction` of the step's expected
 * duration in, a step's k-th command failing, hanging or losing its reply, and the operator's
 * process dying (resumed from its journal later). `struck` lists what landed: not a fault
 * dropped because the run was over or in its closing step, nor one that changed nothing (a
 * crash of a stopped server, a command fault aimed past the step's last command).
 */
export class WorldNemesis implements RunNemesis {
  readonly struck: Strike[] = [];
  /** `atEnd`: healed because the run is over, not because the fault's time is up. */
  private readonly heals = new Map<string, (atEnd: boolean) => void>();
  private readonly commands = new CommandFaults(() => this.commandHit());
  private readonly pending: SimFault[];
  /** The command fault armed for this step's k-th command. */
  private armed: SimFault | null = null;
  private step = "";
  private over = false;

  constructor(
    private readonly world: World,
    private readonly roles: Record<Role, NodeName>,
    private readonly spec: PlanSpec,
    faults: readonly SimFault[],
    /** What each step is expected to take, which places the faults within it. */
    private readonly profile: StepProfile = {},
    /** Says what struck, for the scenario's trace. */
    private readonly note: (line: string) => void = () => {},
  ) {
    this.pending = [...faults];
  }

  wrap(x: Executor): Executor {
    return this.pausable(this.commands.wrap(x));
  }

  /** Until then the operator's process is paused: nothing it sends leaves, no reply is read. */
  private pausedUntil = 0;

  private pausable(inner: Executor): Executor {
    const clock = this.world.clock;
    const awake = async () => {
      while (this.pausedUntil > clock.now()) await sleep(clock, this.pausedUntil - clock.now());
    };
    const wrapped: Record<string, unknown> = {};
    for (const [op, fn] of Object.entries(
      inner as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>,
    )) {
      wrapped[op] = async (...args: unknown[]) => {
        await awake();
        const r = await fn.apply(inner, args);
        await awake();
        return r;
      };
    }
    return wrapped as unknown as Executor;
  }

  onStep(step: string, operator: Operator): void {
    this.step = step;
    // Aimed past the last command of the step before: it never came, nothing struck.
    this.disarm();
    const expected = this.profile[step] ?? UNKNOWN_STEP;
    for (const f of this.pending.filter((f) => f.at.step === step)) {
      this.pending.splice(this.pending.indexOf(f), 1);
      if (!COMMAND_FAULTS.includes(f.kind)) {
        this.world.clock.setTimeout(() => this.strike(f, operator), f.at.fraction * expected.ms);
        continue;
      }
      if (this.over || closingStep(this.spec, step)) continue;
      this.armed = f;
      const kind =
        f.kind === "commandFails" ? "fails" : f.kind === "commandHangs" ? "hangs" : "lost";
      this.commands.arm(kind, commandIndex(f.at.fraction, expected.calls));
    }
  }

  heal(): void {
    this.over = true;
    this.pausedUntil = 0;
    this.armed = null;
    this.commands.arm(null);
    this.healAll();
  }

  private disarm(): void {
    if (this.armed) this.noEffect(this.armed, "the step sent fewer commands");
    this.armed = null;
    this.commands.arm(null);
  }

  /** Struck, but changed nothing: in the trace, not among the strikes. */
  private noEffect(f: SimFault, why: string): void {
    this.note(`FAULT: ${describeSimFault(f, this.profile)}: no effect, ${why}`);
  }

  private commandHit(): void {
    const f = this.armed;
    this.armed = null;
    if (f) this.landed(f);
  }

  private landed(f: SimFault): void {
    this.struck.push({ t: this.world.clock.now(), step: this.step, kind: f.kind, fault: f });
    this.note(`FAULT: ${describeSimFault(f, this.profile)}`);
  }

  private strike(f: SimFault, operator: Operator): void {
    if (this.over || closingStep(this.spec, this.step)) return;
    if (windingUp(this.spec, this.step) && !POOLER_FAULTS.includes(f.kind))
      return this.noEffect(f, "the run has ended for the cluster: only the poolers are resumed");
    if (f.kind === "operatorPauses") {
      if (this.pausedUntil > this.world.clock.now())
        return this.noEffect(f, "the operator's process is paused already");
      this.pausedUntil = this.world.clock.now() + f.forMs;
      return this.landed(f);
    }
    if (f.kind !== "operatorDies") {
      if (this.strikeWorld(f)) this.landed(f);
      else this.noEffect(f, "it was so already");
      return;
    }
    // A dead operator cannot die again: one death, one resume, never two live processes.
    if (!operator.dies()) return this.noEffect(f, "the operator's process is already down");
    this.landed(f);
    this.world.clock.setTimeout(() => {
      const at = operator.resumes();
      if (at) this.note(`resumed from the journal at ${at}`);
    }, f.downMs);
  }

  /** Strikes a fault of the world; false if it would change nothing (already so). */
  private strikeWorld(f: SimFault): boolean {
    const w = this.world;
    switch (f.kind) {
      case "crash": {
        const node = this.roles[f.node];
        if (w.node(node).process === "stopped") return false;
        w.emit({ type: "stopped", node, clean: false });
        return true;
      }
      case "freeze": {
        const node = this.roles[f.node];
        if (w.node(node).frozen) return false;
        w.emit({ type: "frozen", node, frozen: true });
        this.healLater(f.forMs, `freeze:${node}`, () =>
          w.emit({ type: "frozen", node, frozen: false }),
        );
        return true;
      }
      case "partition": {
        const [a, b] = this.ends(f.between);
        if (!w.connected(a, b)) return false;
        w.emit({ type: "link", a, b, up: false });
        this.healLater(f.forMs, `link:${a}|${b}`, () => w.emit({ type: "link", a, b, up: true }));
        return true;
      }
      case "reboot": {
        const node = this.roles[f.node];
        if (!w.node(node).hostUp) return false;
        const host = reboot(w, node);
        this.healLater(f.downMs, `reboot:${node}`, (atEnd) => host.boot(atEnd));
        return true;
      }
      case "slowReplication": {
        // One at a time: a second one would heal back to the first one's lag, for good.
        if (this.heals.has("lag")) return false;
        const { receiveLagMs, replayLagMs } = w.state;
        w.emit({ type: "replicationLag", receiveLagMs: f.lagMs, replayLagMs: f.lagMs / 4 });
        this.healLater(f.forMs, "lag", () =>
          w.emit({ type: "replicationLag", receiveLagMs, replayLagMs }),
        );
        return true;
      }
      case "longTransaction": {
        if (!w.state.pooler?.up) return false;
        const until = w.clock.now() + f.forMs;
        if (w.state.pooler.busyUntil >= until) return false;
        w.emit({ type: "pooler", change: { busyUntil: until } });
        return true;
      }
      case "poolerRestart":
        if (!w.state.pooler?.up) return false;
        w.emit({
          type: "pooler",
          change: { up: false, paused: false, server: null, busyUntil: 0 },
        });
        this.healLater(f.downMs, "pooler", () => w.emit({ type: "pooler", change: { up: true } }));
        return true;
      case "poolerUnreachable":
        if (!w.state.pooler || !w.connected(OPERATOR, POOLER)) return false;
        w.emit({ type: "link", a: OPERATOR, b: POOLER, up: false });
        this.healLater(f.forMs, "link:operator|pooler", () =>
          w.emit({ type: "link", a: OPERATOR, b: POOLER, up: true }),
        );
        return true;
      default:
        return false;
    }
  }

  /** Ends every fault still in force, as an operator would once the incident is over. */
  private healAll(): void {
    for (const heal of [...this.heals.values()]) heal(true);
  }

  private ends(between: "nodes" | "client-primary" | "client-standby"): [string, string] {
    if (between === "nodes") return [this.roles.primary, this.roles.standby];
    return [CLIENT, between === "client-primary" ? this.roles.primary : this.roles.standby];
  }

  private healLater(ms: number, key: string, heal: (atEnd: boolean) => void): void {
    let done = false;
    const once = (atEnd: boolean) => {
      if (done) return;
      done = true;
      this.heals.delete(key);
      heal(atEnd);
    };
    this.heals.set(key, once);
    this.world.clock.setTimeout(() => once(false), ms);
  }
}

/**
 * An executor wrapper that makes a call fail, hang until the caller's deadline, or run on its
 * host and lose its reply (the caller waits until its deadline): the "a step's command fails
 * or times out" faults. Armed, it lets `skip` calls through first (the k-th command of a step).
 */
export class CommandFaults {
  private pending: "fails" | "hangs" | "lost" | null = null;
  private skip = 0;

  /** `onHit` hears of each call a fault hits. */
  constructor(private readonly onHit: () => void = () => {}) {}

  /** Arms a fault for the call after the next `skip` ones; null disarms (the run is over). */
  arm(kind: "fails" | "hangs" | "lost" | null, skip = 0): void {
    this.pending = kind;
    this.skip = skip;
  }

  wrap(inner: Executor): Executor {
    const wrapped: Record<string, unknown> = {};
    for (const [op, fn] of Object.entries(
      inner as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>,
    )) {
      wrapped[op] = (...args: unknown[]) => {
        const fault = this.pending;
        if (fault === null) return fn.apply(inner, args);
        if (this.skip > 0) {
          this.skip--;
          return fn.apply(inner, args);
        }
        this.pending = null;
        this.onHit();
        if (fault === "fails")
          return Promise.resolve({ ok: false, reason: `injected: ${op} failed` });
        // The host runs it to its end; only the answer never comes back.
        if (fault === "lost") fn.apply(inner, args).catch(() => {});
        const signal = args.find(
          (a): a is CallOptions => typeof a === "object" && a !== null && "signal" in a,
        )?.signal;
        return new Promise((_, reject) =>
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true }),
        );
      };
    }
    return wrapped as unknown as Executor;
  }
}
