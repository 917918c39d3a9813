import { type Clock, sleep } from "../core/clock.ts";
import type {
  CallOptions,
  ControlData,
  Executor,
  NodeName,
  NodeStatus,
  Outcome,
  Pooler,
  ProbeResult,
  PromoteResult,
  ReplicationStatus,
  Stop,
  TimelineFork,
  Watchdog,
} from "../core/executor.ts";
import {
  CHECKPOINT_BASE,
  CHECKPOINT_PER_PAGE,
  HostLost,
  session,
  shutDown,
  startServer,
  upgradePackages,
  watchdogFires,
} from "./host.ts";
import {
  appliedWrites,
  lastEnd,
  node,
  replayedEnd,
  type SimNode,
  type SimPooler,
} from "./model.ts";
import { OPERATOR, POOLER, type World } from "./world.ts";

/**
 * Simulated durations (ms): the proportions of real operations, not their absolute values. Each
 * is nominal: every command draws how long it takes this time (World.duration), from the seed.
 */
const LATENCY = 5;
/** How long a command to a host that is down takes to fail (no route to host). */
const CONNECT_TIMEOUT = 1000;
const PROMOTE = 40;
const REWIND = 400;
const BASE_BACKUP = 2500;
const DATA_BYTES = 32 * 1024 * 1024;
/** pg_ctl's default wait (-t) for a shutdown already under way. */
const STOP_WAIT = 60_000;
const POLL = 10;
const FORWARD = true;

const ok = { ok: true } as const;
const fail = (reason: string) => ({ ok: false, reason }) as const;

/** What the Executor's operations do to the simulated world, each taking simulated time. */
type HostOps = {
  [K in keyof Executor]: (...args: DropOptions<Parameters<Executor[K]>>) => ReturnType<Executor[K]>;
};
type DropOptions<P extends unknown[]> = P extends [...infer Head, (CallOptions | undefined)?]
  ? Head
  : P;

/**
 * The Executor over the simulated world. A command, once sent, runs to its end on the host even
 * if the caller gives up (its deadline passed, or the operator's process died): the call
 * returns early, the effect still happens. That is what makes retries and resumes honest.
 * Only the host going down (a reboot) ends a command midway: it answers `{ ok: false }`.
 */
export function simulatedExecutor(world: World): Executor {
  const host = new SimulatedHost(world);
  const executor: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(SimulatedHost.prototype)) {
    const op = (host as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
    if (name === "constructor" || name.startsWith("_") || typeof op !== "function") continue;
    const arity = op.length;
    executor[name] = (...args: unknown[]) => {
      // A command to a node's host, counted until it ends there (the watchdog waits for it).
      const on = name !== "probeWrite" && typeof args[0] === "string" ? args[0] : null;
      const sent = on !== null && on in world.state.nodes;
      if (sent) world.commandSent(on);
      const running = op.apply(host, args.slice(0, arity)).catch(lostToFailure);
      if (sent) void running.finally(() => world.commandEnded(on));
      return abortable(running, (args[arity] as CallOptions | undefined)?.signal);
    };
  }
  return executor as unknown as Executor;
}

class SimulatedHost implements HostOps {
  private readonly clock: Clock;

  constructor(private readonly world: World) {
    this.clock = world.clock;
  }

  async status(name: NodeName): Promise<Outcome<NodeStatus>> {
    const n = await this._reach(name);
    return { ok: true, running: n.process !== "stopped", version: n.installed, vipBound: n.vip };
  }

  /** A fence is set first (start.conf `manual`), so that it holds whatever happens next. */
  async stopPostgres(name: NodeName, { mode, fence }: Stop): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    if (fence && !n.fenced) this.world.emit({ type: "fenced", node: name, fenced: true });
    if (n.process === "stopped") return ok;
    if (n.process === "stopping" && mode === "fast") return this._awaitExit(name);
    if (mode === "immediate") {
      this.world.emit({ type: "stopped", node: name, clean: false });
      return ok;
    }
    await session(this.world, name).during(shutDown(this.world, name));
    return ok;
  }

  /** A second fast stop only waits for the shutdown under way, as `pg_ctl stop -w` does. */
  private async _awaitExit(name: NodeName): Promise<Outcome> {
    for (let waited = 0; waited < STOP_WAIT; waited += POLL) {
      if (this.world.node(name).process === "stopped") return ok;
      await this._pass(POLL, name);
    }
    return fail(`${name}: server does not shut down`);
  }

  /** The fence alone: a running server stays up, but the host will not start it again. */
  async fence(name: NodeName): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    if (!n.fenced) this.world.emit({ type: "fenced", node: name, fenced: true });
    return ok;
  }

  /** Any start clears the fence first, as the host command does. */
  async startPostgres(name: NodeName): Promise<Outcome> {
    const n = await this._reach(name);
    if (n.fenced) this.world.emit({ type: "fenced", node: name, fenced: false });
    if (!n.hasData) return fail(`${name}: no data directory`);
    if (n.process === "stopping") return fail(`${name}: the server is shutting down`);
    if (n.process === "running") return ok;
    await startServer(this.world, name, session(this.world, name).pass);
    return ok;
  }

  /** What else the upgrade does to the server depends on the host: see sim/host.ts. */
  async upgradePackages(name: NodeName, version: string): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    if (n.installed === version) return ok;
    await upgradePackages(this.world, name, version, session(this.world, name));
    return ok;
  }

  async checkpoint(name: NodeName): Promise<Outcome> {
    const n = await this._reach(name);
    if (n.process !== "running") return fail(`${name}: not running`);
    await this._pass(this.world.duration(CHECKPOINT_BASE + n.dirty * CHECKPOINT_PER_PAGE), name);
    if (this.world.node(name).process !== "running") return fail(`${name}: server went away`);
    // On a standby CHECKPOINT is a restartpoint: it flushes, and writes no WAL of its own.
    if (n.inRecovery) return ok;
    const record = this.world.newRecord(name, "checkpoint", 114);
    this.world.emit({ type: "checkpointed", node: name, record, state: "in production" });
    return ok;
  }

  async replication(name: NodeName): Promise<Outcome<ReplicationStatus>> {
    const n = await this._reach(name);
    if (n.process !== "running") return fail(`${name}: not running`);
    const up = n.upstream === null ? undefined : this.world.state.nodes[n.upstream];
    const standbys = this.world.streamingStandbys(name).map((s) => ({
      client: s.name,
      state: "streaming",
      sentLsn: lastEnd(s),
      replayLsn: replayedEnd(s),
    }));
    return {
      ok: true,
      inRecovery: n.inRecovery,
      timeline: n.control.timeline,
      lsn: n.inRecovery ? replayedEnd(n) : lastEnd(n),
      receiveLsn: n.inRecovery ? lastEnd(n) : null,
      replayLsn: n.inRecovery ? replayedEnd(n) : null,
      streaming: n.inRecovery && up !== undefined && this.world.canStream(n, up),
      standbys,
    };
  }

  async controlData(name: NodeName): Promise<Outcome<ControlData>> {
    const n = await this._reach(name);
    if (!n.hasData) return fail(`${name}: no data directory`);
    return { ok: true, running: n.process !== "stopped", ...n.control };
  }

  async timelineFork(name: NodeName): Promise<Outcome<TimelineFork>> {
    const n = await this._reach(name);
    const fork = n.forks.at(-1);
    return fork ? { ok: true, ...fork } : fail(`${name}: no timeline history (never promoted)`);
  }

  async promote(name: NodeName): Promise<Outcome<PromoteResult>> {
    const n = await this._reach(name, FORWARD);
    if (n.process !== "running") return fail(`${name}: not running`);
    if (!n.inRecovery) return { ok: true, timeline: n.control.timeline };
    await this._pass(this.world.duration(PROMOTE), name);
    const m = this.world.node(name);
    if (m.process !== "running" || !m.inRecovery) return fail(`${name}: changed while promoting`);
    // Promotion first replays everything received; WAL still in flight is not part of it.
    if (m.replayed < m.records.length)
      this.world.emit({ type: "walReplayed", node: name, upTo: m.records.length });
    const record = this.world.newRecord(name, "endOfRecovery", 114);
    const fork = { timeline: record.tli, switchpoint: record.start };
    this.world.emit({ type: "promoted", node: name, fork, record });
    return { ok: true, timeline: fork.timeline };
  }

  async vipDown(name: NodeName): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    if (n.vip) this.world.emit({ type: "vip", node: name, bound: false, announce: false });
    return ok;
  }

  async vipUp(name: NodeName, announce: boolean): Promise<Outcome> {
    const n = await this._reach(name);
    if (!n.vip || announce) this.world.emit({ type: "vip", node: name, bound: true, announce });
    return ok;
  }

  async configureStandby(name: NodeName, upstream: NodeName): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    if (n.process !== "stopped") return fail(`${name}: must be stopped to become a standby`);
    if (!n.hasData) return fail(`${name}: no data directory`);
    this.world.emit({ type: "standbyConfigured", node: name, upstream });
    return ok;
  }

  rewind(name: NodeName, source: NodeName): Promise<Outcome<{ bytesCopied: number }>> {
    return this._copyFrom(name, source, "rewind");
  }

  baseBackup(name: NodeName, source: NodeName): Promise<Outcome<{ bytesCopied: number }>> {
    return this._copyFrom(name, source, "baseBackup");
  }

  async removeDataDir(name: NodeName): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    if (n.process !== "stopped") return fail(`${name}: server running`);
    this.world.emit({ type: "dataRemoved", node: name });
    return ok;
  }

  async removeSetAside(name: NodeName): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    if (n.setAside) this.world.emit({ type: "setAsideRemoved", node: name });
    return ok;
  }

  async probeWrite(target: NodeName | "vip", id: string): Promise<Outcome<ProbeResult>> {
    await sleep(this.clock, this.world.duration(LATENCY));
    const w = this.world.write(target, id);
    return w.type === "ok" ? { ok: true, node: w.node } : fail(w.reason);
  }

  async writtenIds(name: NodeName): Promise<Outcome<{ ids: string[] }>> {
    const n = await this._reach(name);
    if (n.process !== "running") return fail(`${name}: not running`);
    return { ok: true, ids: [...appliedWrites(n)] };
  }

  async notify(_message: string): Promise<Outcome> {
    await sleep(this.clock, this.world.duration(LATENCY));
    return ok;
  }

  /** PAUSE returns once no transaction holds a server connection; it then closes them. */
  async pausePooler(_pooler: Pooler): Promise<Outcome> {
    const p = await this._reachPooler();
    if (!p) return fail("pooler console: connection timed out");
    if (!p.paused) this.world.emit({ type: "pooler", change: { paused: true } });
    while (p.up && p.busyUntil > this.clock.now())
      await sleep(this.clock, p.busyUntil - this.clock.now());
    if (!p.up) return fail("pooler: the connection to its console was lost (it restarted)");
    if (p.server !== null) this.world.emit({ type: "pooler", change: { server: null } });
    return ok;
  }

  async reconnectPooler(_pooler: Pooler): Promise<Outcome> {
    const p = await this._reachPooler();
    if (!p) return fail("pooler console: connection timed out");
    if (p.server !== null) this.world.emit({ type: "pooler", change: { server: null } });
    return ok;
  }

  async resumePooler(_pooler: Pooler): Promise<Outcome> {
    const p = await this._reachPooler();
    if (!p) return fail("pooler console: connection timed out");
    if (p.paused) this.world.emit({ type: "pooler", change: { paused: false } });
    return ok;
  }

  /** Arms the run's watchdog; an arm after the decision was taken changes nothing. */
  async armWatchdog(name: NodeName, w: Watchdog): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    const before = this.world.state.watchdog;
    if (before?.decision)
      return fail(`${name}: the run's watchdog decided already: ${before.decision}`);
    const arms = (before?.arms ?? 0) + 1;
    this.world.emit({
      type: "watchdog",
      watchdog: { node: name, arms, boots: n.boots, decision: null },
    });
    this.clock.setTimeout(() => void watchdogFires(this.world, arms), w.afterMs);
    return ok;
  }

  /** Taken once: the run's claim or the watchdog's take-back, whichever comes first. */
  async claimPromotion(name: NodeName, _runId: string): Promise<Outcome> {
    const n = await this._reach(name, FORWARD);
    const w = this.world.state.watchdog ?? { node: name, arms: 0, boots: n.boots, decision: null };
    if (w.decision === "promote") return ok;
    if (w.decision !== null)
      return fail(`${name}: the run's watchdog decided already: ${w.decision}`);
    this.world.emit({ type: "watchdog", watchdog: { ...w, decision: "promote" } });
    return ok;
  }

  async endWatchdog(name: NodeName, _runId: string): Promise<Outcome> {
    await this._reach(name);
    const w = this.world.state.watchdog;
    if (w && w.decision === null)
      this.world.emit({ type: "watchdog", watchdog: { ...w, decision: "ended" } });
    return ok;
  }

  /** The pooler's console from the operator's machine; null: it did not answer in time. */
  private async _reachPooler(): Promise<SimPooler | null> {
    const latency = this.world.duration(LATENCY);
    await sleep(this.clock, latency);
    const p = this.world.state.pooler;
    if (!p) throw new Error("the simulated cluster has no pooler: the plan names one");
    if (p.up && this.world.connected(OPERATOR, POOLER)) return p;
    await sleep(this.clock, Math.max(0, CONNECT_TIMEOUT - latency));
    return null;
  }

  private async _copyFrom(
    name: NodeName,
    source: NodeName,
    how: "rewind" | "baseBackup",
  ): Promise<Outcome<{ bytesCopied: number }>> {
    const n = await this._reach(name, FORWARD);
    if (n.process !== "stopped") return fail(`${name}: must be stopped`);
    const src = this.world.node(source);
    if (src.process !== "running" || src.frozen || !this.world.connected(name, source)) {
      return fail(`${source}: cannot connect to the source server`);
    }
    await this._pass(this.world.duration(how === "rewind" ? REWIND : BASE_BACKUP), name);
    const bytes =
      how === "rewind" ? divergedBytes(this.world.node(name), src) : DATA_BYTES + lastEnd(src);
    this.world.emit({ type: "copiedFrom", node: name, from: source, how, bytes });
    return { ok: true, bytesCopied: bytes };
  }

  /**
   * The command reaches the host: a frozen host answers only once it thaws, a down one never.
   * One that moves the switchover forward is refused once the run's watchdog took the run back.
   */
  private async _reach(name: NodeName, forward = false): Promise<SimNode> {
    const latency = this.world.duration(LATENCY);
    await sleep(this.clock, latency);
    if (!node(this.world.state, name).hostUp) {
      await sleep(this.clock, Math.max(0, CONNECT_TIMEOUT - latency));
      throw new HostLost(`${name}: no route to host (the host is down)`);
    }
    await this.world.whenThawed(name);
    if (!node(this.world.state, name).hostUp) throw new HostLost(`${name}: the host went down`);
    // Checked as the command arrives, as the host's wrapper does, then the command acts: one
    // that arrived just before the watchdog decided still acts after it (the real race).
    const w = this.world.state.watchdog;
    if (forward && w?.node === name && w.decision === "watchdog")
      throw new Refused(`${name}: the watchdog took this run back on this host: refused`);
    return this.world.node(name);
  }

  /** Time passes on the host; a frozen host makes no progress until it thaws. */
  private _pass(ms: number, name: NodeName): Promise<void> {
    return session(this.world, name).pass(ms);
  }
}

/** The host refused the command (its wrapper's check, before the command ran). */
class Refused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Refused";
  }
}

/** A session lost to a reboot is the command failing: its reply never came; so is a refusal. */
function lostToFailure(e: unknown): Outcome {
  if (e instanceof HostLost || e instanceof Refused) return fail(e.message);
  throw e;
}

/** pg_rewind copies the blocks the source changed since the fork: proportional to its new WAL. */
function divergedBytes(target: SimNode, source: SimNode): number {
  let i = 0;
  while (i < target.records.length && target.records[i]?.rid === source.records[i]?.rid) i++;
  if (i === target.records.length) return 0;
  return (lastEnd(source) - (source.records[i]?.start ?? lastEnd(source))) * 64;
}

function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
