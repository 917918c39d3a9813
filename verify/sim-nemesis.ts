import fc from "fast-check";
import type { CallOptions, Executor, NodeName } from "../core/executor.ts";
import { branchesOf, FINAL_STATES, type PlanSpec } from "../plan/spec.ts";
import type { Operator, RunNemesis } from "../run/driver.ts";
import { reboot } from "../sim/host.ts";
import { CLIENT, type World } from "../sim/world.ts";

/**
 * Faults, each aimed at a step of the plan: it strikes `delayMs` after the plan enters `step`.
 * `primary` and `standby` name the roles the nodes had when the run started.
 */
export type Role = "primary" | "standby";
export interface Trigger {
  step: string;
  delayMs: number;
}

export type Fault =
  | { kind: "crash"; node: Role; at: Trigger }
  | { kind: "freeze"; node: Role; at: Trigger; forMs: number }
  | {
      kind: "partition";
      between: "nodes" | "client-primary" | "client-standby";
      at: Trigger;
      forMs: number;
    }
  | { kind: "slowReplication"; at: Trigger; forMs: number; lagMs: number }
  | { kind: "commandFails"; at: Trigger }
  | { kind: "commandHangs"; at: Trigger }
  | { kind: "operatorDies"; at: Trigger; downMs: number }
  /** The node's host reboots (sim/host.ts): its server stops, the VIP goes, it boots `downMs` later. */
  | { kind: "reboot"; node: Role; at: Trigger; downMs: number };

export function faultArbitrary(spec: PlanSpec): fc.Arbitrary<Fault> {
  const at = fc.record({
    step: fc.constantFrom(...Object.keys(spec.steps)),
    delayMs: fc.integer({ min: 0, max: 400 }),
  });
  const node = fc.constantFrom<Role>("primary", "standby");
  const forMs = fc.integer({ min: 50, max: 6000 });
  return fc.oneof(
    fc.record({ kind: fc.constant("crash" as const), node, at }),
    fc.record({ kind: fc.constant("freeze" as const), node, at, forMs }),
    fc.record({
      kind: fc.constant("partition" as const),
      between: fc.constantFrom(
        "nodes" as const,
        "client-primary" as const,
        "client-standby" as const,
      ),
      at,
      forMs,
    }),
    fc.record({
      kind: fc.constant("slowReplication" as const),
      at,
      forMs,
      lagMs: fc.integer({ min: 50, max: 3000 }),
    }),
    fc.record({ kind: fc.constant("commandFails" as const), at }),
    fc.record({ kind: fc.constant("commandHangs" as const), at }),
    fc.record({
      kind: fc.constant("operatorDies" as const),
      at,
      downMs: fc.integer({ min: 0, max: 5000 }),
    }),
    fc.record({
      kind: fc.constant("reboot" as const),
      node,
      at,
      downMs: fc.integer({ min: 200, max: 5000 }),
    }),
  );
}

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
  switch (f.kind) {
    case "crash":
      return `the ${f.node} crashes (immediate stop) ${when}`;
    case "freeze":
      return `the ${f.node}'s host freezes for ${f.forMs} ms ${when}`;
    case "partition":
      return `the network between ${f.between.replace("-", " and ")} is cut for ${f.forMs} ms ${when}`;
    case "slowReplication":
      return `replication slows to ${f.lagMs} ms of lag for ${f.forMs} ms ${when}`;
    case "commandFails":
      return `the next command fails ${when}`;
    case "commandHangs":
      return `the next command hangs ${when}`;
    case "operatorDies":
      return `the operator's process dies ${when}, resumed from its journal ${f.downMs} ms later`;
    case "reboot":
      return `the ${f.node}'s host reboots ${when}, down for ${f.downMs} ms`;
  }
}

/**
 * Strikes faults on the simulated cluster as the plan enters the steps they are aimed at, and
 * heals them when their time is up: the world's faults, a step's command failing or hanging,
 * and the operator's process dying (resumed from its journal later).
 */
export class WorldNemesis implements RunNemesis {
  /** `atEnd`: healed because the run is over, not because the fault's time is up. */
  private readonly heals = new Map<string, (atEnd: boolean) => void>();
  private readonly commands = new CommandFaults();
  private readonly pending: Fault[];
  private step = "";
  private over = false;

  constructor(
    private readonly world: World,
    private readonly roles: Record<Role, NodeName>,
    private readonly spec: PlanSpec,
    faults: readonly Fault[],
    /** Says what struck, for the scenario's trace. */
    private readonly note: (line: string) => void = () => {},
  ) {
    this.pending = [...faults];
  }

  wrap(x: Executor): Executor {
    return this.commands.wrap(x);
  }

  onStep(step: string, operator: Operator): void {
    this.step = step;
    for (const f of this.pending.filter((f) => f.at.step === step)) {
      this.pending.splice(this.pending.indexOf(f), 1);
      this.world.clock.setTimeout(() => this.strike(f, operator), f.at.delayMs);
    }
  }

  heal(): void {
    this.over = true;
    this.healAll();
  }

  private strike(f: Fault, operator: Operator): void {
    if (this.over || closingStep(this.spec, this.step)) return;
    this.note(`FAULT: ${describeFault(f)}`);
    if (f.kind === "commandFails" || f.kind === "commandHangs")
      return this.commands.arm(f.kind === "commandFails" ? "fails" : "hangs");
    if (f.kind !== "operatorDies") return this.strikeWorld(f);
    // A dead operator cannot die again: one death, one resume, never two live processes.
    if (!operator.dies()) return this.note("the operator's process is already down: no effect");
    this.world.clock.setTimeout(() => {
      const at = operator.resumes();
      if (at) this.note(`resumed from the journal at ${at}`);
    }, f.downMs);
  }

  private strikeWorld(f: Fault): void {
    const w = this.world;
    switch (f.kind) {
      case "crash": {
        const node = this.roles[f.node];
        if (w.node(node).process !== "stopped") w.emit({ type: "stopped", node, clean: false });
        return;
      }
      case "freeze": {
        const node = this.roles[f.node];
        if (w.node(node).frozen) return;
        w.emit({ type: "frozen", node, frozen: true });
        return this.healLater(f.forMs, `freeze:${node}`, () =>
          w.emit({ type: "frozen", node, frozen: false }),
        );
      }
      case "partition": {
        const [a, b] = this.ends(f.between);
        if (!w.connected(a, b)) return;
        w.emit({ type: "link", a, b, up: false });
        return this.healLater(f.forMs, `link:${a}|${b}`, () =>
          w.emit({ type: "link", a, b, up: true }),
        );
      }
      case "reboot": {
        const node = this.roles[f.node];
        if (!w.node(node).hostUp) return this.note(`${node}'s host is already down: no effect`);
        const host = reboot(w, node);
        return this.healLater(f.downMs, `reboot:${node}`, (atEnd) => host.boot(atEnd));
      }
      case "slowReplication": {
        // One at a time: a second one would heal back to the first one's lag, for good.
        if (this.heals.has("lag")) return;
        const { receiveLagMs, replayLagMs } = w.state;
        w.emit({ type: "replicationLag", receiveLagMs: f.lagMs, replayLagMs: f.lagMs / 4 });
        return this.healLater(f.forMs, "lag", () =>
          w.emit({ type: "replicationLag", receiveLagMs, replayLagMs }),
        );
      }
      default:
        return;
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
 * An executor wrapper that makes the next call fail, or hang until the caller's deadline:
 * the "a step's command fails or times out" faults.
 */
export class CommandFaults {
  private pending: "fails" | "hangs" | null = null;

  /** Arms the next call's fault; null disarms (the run is over). */
  arm(kind: "fails" | "hangs" | null): void {
    this.pending = kind;
  }

  wrap(inner: Executor): Executor {
    const wrapped: Record<string, unknown> = {};
    for (const [op, fn] of Object.entries(
      inner as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>,
    )) {
      wrapped[op] = (...args: unknown[]) => {
        const fault = this.pending;
        if (fault === null) return fn.apply(inner, args);
        this.pending = null;
        if (fault === "fails")
          return Promise.resolve({ ok: false, reason: `injected: ${op} failed` });
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
