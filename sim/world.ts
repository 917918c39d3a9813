import type { Clock } from "../core/clock.ts";
import type { NodeName } from "../core/executor.ts";
import type { Rng } from "../core/rng.ts";
import {
  apply,
  type HostKind,
  lastEnd,
  linkKey,
  node,
  type SimNode,
  type SimPooler,
  type WalRecord,
  type WorldEvent,
  type WorldState,
} from "./model.ts";

export const CLIENT = "client";
/** The pooler's host, on links of its own: to the nodes, and to the operator (its console). */
export const POOLER = "pooler";
export const OPERATOR = "operator";
/** The share of operations that take several times their nominal length. */
const SLOW_SHARE = 0.05;

export interface Topology {
  primary: NodeName;
  standby: NodeName;
  version: string;
  /** Pages already dirty when the run starts: what a shutdown checkpoint would have to flush. */
  dirty: number;
  /** What runs the servers on both hosts; stock Debian unless said otherwise. */
  hosts?: HostKind;
  /** A PgBouncer in front of the VIP. */
  pooler?: boolean;
}

/** The initial cluster: a primary streaming to a caught-up standby, VIP on the primary. */
export function initialWorld(t: Topology): WorldState {
  const boot: WalRecord = { rid: 0, start: 0, end: 0x3000028, tli: 1, kind: "checkpoint", at: 0 };
  const control = {
    state: "in production" as const,
    checkpointLsn: boot.start,
    checkpointEndLsn: boot.end,
    timeline: 1,
  };
  const make = (name: NodeName, standby: boolean): SimNode => ({
    name,
    hostKind: t.hosts ?? "debian",
    hostUp: true,
    boots: 0,
    fenced: false,
    process: "running",
    frozen: false,
    standbySignal: standby,
    inRecovery: standby,
    upstream: standby ? t.primary : null,
    installed: t.version,
    runningVersion: t.version,
    records: [boot],
    replayed: 1,
    control: standby ? { ...control, state: "in archive recovery" } : control,
    forks: [],
    vip: !standby,
    hasData: true,
    setAside: false,
    dirty: standby ? 0 : t.dirty,
  });
  return {
    nodes: { [t.primary]: make(t.primary, false), [t.standby]: make(t.standby, true) },
    pooler: t.pooler ? { up: true, paused: false, server: null, busyUntil: 0 } : null,
    watchdog: null,
    cut: new Set(),
    arp: { node: t.primary, staleUntil: Number.POSITIVE_INFINITY },
    receiveLagMs: 2,
    replayLagMs: 1,
    nextRid: 1,
  };
}

export type WriteOutcome =
  | { type: "ok"; node: NodeName }
  | { type: "fail" | "info"; reason: string };

type Emittable = WorldEvent extends infer E ? (E extends WorldEvent ? Omit<E, "t"> : never) : never;

/**
 * The live simulated cluster: an append-only log of events and the state they fold to.
 * Replication is brought up to date before every event and every read, so between two events
 * connectivity is constant and shipping WAL "as time passes" stays exact.
 */
export class World {
  readonly log: WorldEvent[] = [];
  private thawWaiters = new Map<NodeName, Array<() => void>>();
  private readonly running = new Map<NodeName, number>();
  /** The writes a paused pooler holds, in the order they came. */
  private held: Array<{ writeId: string; done: (o: WriteOutcome) => void }> = [];
  private listeners: Array<(e: WorldEvent) => void> = [];

  constructor(
    readonly state: WorldState,
    readonly clock: Clock,
    /** Draws how long each operation takes (`duration`); without it every one takes its nominal time. */
    private readonly latencies?: Rng,
  ) {}

  /**
   * How long an operation of nominal length `ms` takes this time: half to one and a half times
   * as long, and one in twenty two to five times (a slow disk, a busy host, a retransmission).
   * Drawn from the scenario's seed, in the order the operations happen, so a run replays.
   */
  duration(ms: number): number {
    const r = this.latencies;
    if (!r) return ms;
    const u = r.next();
    return ms * (r.chance(SLOW_SHARE) ? 2 + 3 * u : 0.5 + u);
  }

  emit(e: Emittable): void {
    this.sync();
    this.record(e);
    if (e.type === "frozen" && !e.frozen) this.wakeThawed(e.node);
    if (e.type === "pooler" && (e.change.paused === false || e.change.up === false))
      this.releaseHeld(e.change.up === false);
  }

  /** Calls `listener` with every event as it is logged, until the returned function is called. */
  onEvent(listener: (e: WorldEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  node(name: NodeName): SimNode {
    this.sync();
    return node(this.state, name);
  }

  connected(a: string, b: string): boolean {
    return !this.state.cut.has(linkKey(a, b));
  }

  /** A new WAL record at the end of `name`'s own WAL. */
  newRecord(name: NodeName, kind: WalRecord["kind"], size: number, writeId?: string): WalRecord {
    const n = node(this.state, name);
    const start = lastEnd(n);
    const tli = kind === "endOfRecovery" ? n.control.timeline + 1 : (n.records.at(-1)?.tli ?? 1);
    const rec: WalRecord = {
      rid: this.state.nextRid,
      start,
      end: start + size,
      tli,
      kind,
      at: this.clock.now(),
    };
    if (writeId !== undefined) rec.writeId = writeId;
    return rec;
  }

  /**
   * A client's write through the VIP or a node's own address, as the network would route it;
   * `from` the pooler for its server connections.
   */
  write(target: NodeName | "vip", writeId: string, from = CLIENT): WriteOutcome {
    this.sync();
    const name = target === "vip" ? this.state.arp.node : target;
    if (name === null) return { type: "fail", reason: "no host answers for the VIP" };
    const n = node(this.state, name);
    if (!this.connected(from, name))
      return { type: "info", reason: `${name} unreachable (timeout)` };
    if (!n.hostUp && n.process === "stopped")
      return { type: "info", reason: `${name} does not answer (its host is down)` };
    if (target === "vip" && !n.vip)
      return { type: "info", reason: `stale ARP entry points at ${name}` };
    if (n.frozen) return { type: "info", reason: `${name} does not answer (timeout)` };
    if (n.process !== "running") return { type: "fail", reason: `${name}: connection refused` };
    if (n.inRecovery) return { type: "fail", reason: `${name}: read-only transaction` };
    this.emit({
      type: "walWritten",
      node: name,
      record: this.newRecord(name, "write", 120, writeId),
      dirty: 1,
    });
    return { type: "ok", node: name };
  }

  /** A client's write through the pooler: run at once, or held (no error) while it is paused. */
  writeThroughPooler(writeId: string, done: (o: WriteOutcome) => void): void {
    const p = this.state.pooler;
    if (!p?.up) return done({ type: "fail", reason: "pooler: connection refused" });
    if (p.paused) {
      this.held.push({ writeId, done });
      return;
    }
    done(this.poolWrite(p, writeId));
  }

  /** The writes a paused pooler still holds give up: the client stopped waiting, unanswered. */
  abandonHeld(reason: string): void {
    const held = this.held;
    this.held = [];
    for (const h of held) h.done({ type: "info", reason });
  }

  /**
   * A server connection open to a node that lost the VIP or went away is broken: the write sent
   * on it is indeterminate, and the next one connects afresh, through the VIP.
   */
  private poolWrite(p: SimPooler, writeId: string): WriteOutcome {
    const was = p.server;
    if (was !== null) {
      const n = node(this.state, was);
      if (!n.vip || n.process !== "running" || n.frozen || !this.connected(POOLER, was)) {
        this.emit({ type: "pooler", change: { server: null } });
        return { type: "info", reason: `pooler: its server connection to ${was} broke` };
      }
    }
    const r = this.write("vip", writeId, POOLER);
    if (r.type === "ok" && was === null) this.emit({ type: "pooler", change: { server: r.node } });
    return r;
  }

  /** Resumed, the held writes run in order; restarted, their connections are gone. */
  private releaseHeld(restarted: boolean): void {
    const p = this.state.pooler;
    if (restarted || !p) return this.abandonHeld("pooler restarted: the connection was lost");
    const held = this.held;
    this.held = [];
    for (const h of held) h.done(this.poolWrite(p, h.writeId));
  }

  /** Commands sent to a node's host that have not ended there (sim-executor.ts). */
  commandSent(name: NodeName): void {
    this.running.set(name, (this.running.get(name) ?? 0) + 1);
  }

  commandEnded(name: NodeName): void {
    this.running.set(name, (this.running.get(name) ?? 1) - 1);
  }

  commandsRunning(name: NodeName): number {
    return this.running.get(name) ?? 0;
  }

  /** Resolves once `name` is no longer frozen. */
  whenThawed(name: NodeName): Promise<void> {
    if (!node(this.state, name).frozen) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.thawWaiters.get(name) ?? [];
      list.push(resolve);
      this.thawWaiters.set(name, list);
    });
  }

  /** Ships and replays WAL on every standby up to the current simulated time. */
  sync(): void {
    const now = this.clock.now();
    const s = this.state;
    if (s.arp.staleUntil <= now) this.record({ type: "arpExpired" });
    for (const n of Object.values(s.nodes)) {
      if (n.process === "stopped" || n.frozen || !n.inRecovery) continue;
      const up = n.upstream === null ? undefined : s.nodes[n.upstream];
      if (up && this.canStream(n, up)) {
        let upTo = n.records.length;
        while (upTo < up.records.length && (up.records[upTo]?.at ?? 0) <= now - s.receiveLagMs)
          upTo++;
        if (upTo > n.records.length)
          this.record({ type: "walReceived", node: n.name, from: up.name, upTo });
      }
      let replay = n.replayed;
      const due = now - s.receiveLagMs - s.replayLagMs;
      while (replay < n.records.length && (n.records[replay]?.at ?? 0) <= due) replay++;
      if (replay > n.replayed) this.record({ type: "walReplayed", node: n.name, upTo: replay });
    }
  }

  /** The standbys streaming from `name` right now: a fast shutdown waits to ship them its end. */
  streamingStandbys(name: NodeName): SimNode[] {
    const up = this.state.nodes[name];
    if (!up) return [];
    return Object.values(this.state.nodes).filter(
      (s) =>
        s.upstream === name && s.inRecovery && s.process !== "stopped" && this.canStream(s, up),
    );
  }

  /** A standby streams when both ends run, the link is up, and its WAL is a prefix of the upstream's. */
  canStream(n: SimNode, up: SimNode): boolean {
    if (up.process === "stopped" || up.frozen || !this.connected(n.name, up.name)) return false;
    const len = n.records.length;
    if (len > up.records.length) return false;
    return len === 0 || n.records[len - 1]?.rid === up.records[len - 1]?.rid;
  }

  private record(e: Emittable): void {
    const event = { ...e, t: this.clock.now() } as WorldEvent;
    this.log.push(event);
    apply(this.state, event);
    for (const listener of this.listeners) listener(event);
  }

  private wakeThawed(name: NodeName): void {
    const list = this.thawWaiters.get(name) ?? [];
    this.thawWaiters.delete(name);
    for (const wake of list) wake();
  }
}
