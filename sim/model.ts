import type { ClusterState, NodeName, TimelineFork } from "../core/executor.ts";

/**
 * The simulated cluster as data. `fold(events)` rebuilds it from the world's log; the live
 * World applies the same `apply` as each event happens (in place, for speed: a scenario
 * applies thousands of events, and a copy per event would dominate the run time).
 */
export interface WalRecord {
  /** Unique per record: two nodes share history exactly where they hold the same ids. */
  rid: number;
  start: number;
  end: number;
  tli: number;
  kind: "write" | "checkpoint" | "shutdown" | "endOfRecovery";
  writeId?: string;
  /** Simulated time it was written on its origin node. */
  at: number;
}

export type ProcessState = "running" | "stopping" | "stopped";

/**
 * What runs the server (sim/host.ts). `debian`: a postgresql-common cluster under systemd's
 * `postgresql@15-main`, which the package scripts and the boot start by themselves unless its
 * start.conf says `manual`. `pg_ctl`: a hand-built installation, which nothing but a command starts.
 */
export type HostKind = "debian" | "pg_ctl";

/** Who stopped or started a server when no command did: the host itself. */
export type HostAction = "packageScripts" | "reboot" | "boot";

export interface SimNode {
  name: NodeName;
  hostKind: HostKind;
  /** The host answers: false from the moment a reboot begins until it has booted. */
  hostUp: boolean;
  /** Reboots begun so far: a command whose host rebooted under it lost its session. */
  boots: number;
  /** Kept down by what the host honours (start.conf `manual`): only a command starts it. */
  fenced: boolean;
  process: ProcessState;
  frozen: boolean;
  /** standby.signal present: the server starts in recovery. */
  standbySignal: boolean;
  inRecovery: boolean;
  upstream: NodeName | null;
  installed: string;
  runningVersion: string | null;
  records: WalRecord[];
  /** Records [0, replayed) are applied; [replayed, records.length) received, not yet applied. */
  replayed: number;
  control: {
    state: ClusterState;
    checkpointLsn: number;
    checkpointEndLsn: number;
    timeline: number;
  };
  forks: TimelineFork[];
  vip: boolean;
  hasData: boolean;
  setAside: boolean;
  /** Pages dirtied since the last checkpoint: what the next checkpoint must flush. */
  dirty: number;
}

/**
 * The PgBouncer in front of the VIP, when the scenario has one. Its server connections are
 * opened through the VIP; paused, it holds its clients' queries (no error) until RESUME.
 */
export interface SimPooler {
  /** pgbouncer runs: false while its host restarts, which drops every connection and the pause. */
  up: boolean;
  paused: boolean;
  /** The node its server connections are open to (where the VIP led when they were opened). */
  server: NodeName | null;
  /** A client's transaction holds a server connection until then: PAUSE waits for it to end. */
  busyUntil: number;
}

/**
 * The run's watchdog (hosts/watchdog.ts), on the old primary's host once armed. `decision` is
 * taken once, by whichever comes first: the run claiming the promotion (`promote`), the
 * watchdog taking the run back (`watchdog`: every later command of the run there is refused),
 * or the run ending where it started (`ended`).
 */
export interface SimWatchdog {
  node: NodeName;
  /** Arms so far: a watchdog fires only if none was armed after it (a re-arm replaces it). */
  arms: number;
  /** The host's boots when it was armed: a reboot ends the process that would fire it. */
  boots: number;
  decision: "promote" | "watchdog" | "ended" | null;
}

export interface WorldState {
  nodes: Record<NodeName, SimNode>;
  pooler: SimPooler | null;
  watchdog: SimWatchdog | null;
  /** Cut links, as "a|b" with a < b; "client" is the application side. */
  cut: Set<string>;
  /** Which node the clients' ARP cache maps the VIP to, and until when that entry is trusted. */
  arp: { node: NodeName | null; staleUntil: number };
  receiveLagMs: number;
  replayLagMs: number;
  nextRid: number;
}

export type WorldEvent = { t: number } & (
  | { type: "walWritten"; node: NodeName; record: WalRecord; dirty: number }
  | { type: "walReceived"; node: NodeName; from: NodeName; upTo: number }
  | { type: "walReplayed"; node: NodeName; upTo: number }
  | { type: "checkpointed"; node: NodeName; record: WalRecord; state: ClusterState }
  | { type: "stopping"; node: NodeName; by?: HostAction }
  | { type: "stopped"; node: NodeName; clean: boolean }
  | { type: "started"; node: NodeName; by?: HostAction }
  | { type: "fenced"; node: NodeName; fenced: boolean }
  | { type: "hostDown"; node: NodeName }
  | { type: "hostUp"; node: NodeName }
  | { type: "promoted"; node: NodeName; fork: TimelineFork; record: WalRecord }
  | { type: "vip"; node: NodeName; bound: boolean; announce: boolean }
  | { type: "arpExpired" }
  | { type: "upgraded"; node: NodeName; version: string }
  | { type: "standbyConfigured"; node: NodeName; upstream: NodeName }
  | {
      type: "copiedFrom";
      node: NodeName;
      from: NodeName;
      how: "rewind" | "baseBackup";
      bytes: number;
    }
  | { type: "dataRemoved"; node: NodeName }
  | { type: "setAsideRemoved"; node: NodeName }
  | { type: "link"; a: string; b: string; up: boolean }
  | { type: "frozen"; node: NodeName; frozen: boolean }
  | { type: "replicationLag"; receiveLagMs: number; replayLagMs: number }
  | { type: "pooler"; change: Partial<SimPooler> }
  | { type: "watchdog"; watchdog: SimWatchdog }
);

export function linkKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

export function lastEnd(node: SimNode): number {
  return node.records.at(-1)?.end ?? 0;
}

export function replayedEnd(node: SimNode): number {
  return node.records[node.replayed - 1]?.end ?? 0;
}

/** Write ids a node has applied: what a query on it would see. */
export function appliedWrites(node: SimNode): Set<string> {
  const ids = new Set<string>();
  for (let i = 0; i < node.replayed; i++) {
    const id = node.records[i]?.writeId;
    if (id !== undefined) ids.add(id);
  }
  return ids;
}

export function apply(s: WorldState, e: WorldEvent): void {
  switch (e.type) {
    case "walWritten":
    case "checkpointed":
    case "promoted":
      return appendOwn(s, e);
    case "walReceived": {
      const n = node(s, e.node);
      n.records.push(...node(s, e.from).records.slice(n.records.length, e.upTo));
      return;
    }
    case "walReplayed": {
      const n = node(s, e.node);
      n.replayed = e.upTo;
      n.control.timeline = n.records[e.upTo - 1]?.tli ?? n.control.timeline;
      return;
    }
    case "stopping":
      node(s, e.node).process = "stopping";
      return;
    case "stopped":
      return stopped(node(s, e.node), e.clean);
    case "started":
      return started(node(s, e.node));
    case "fenced":
      node(s, e.node).fenced = e.fenced;
      return;
    case "hostDown": {
      const n = node(s, e.node);
      n.hostUp = false;
      n.boots++;
      return;
    }
    case "hostUp":
      node(s, e.node).hostUp = true;
      return;
    case "vip":
      return vip(s, e);
    case "arpExpired":
      s.arp = { node: vipHolders(s)[0] ?? null, staleUntil: Number.POSITIVE_INFINITY };
      return;
    case "upgraded":
      node(s, e.node).installed = e.version;
      return;
    case "standbyConfigured": {
      const n = node(s, e.node);
      n.standbySignal = true;
      n.upstream = e.upstream;
      return;
    }
    case "copiedFrom":
      return copiedFrom(s, e.node, e.from, e.how);
    case "dataRemoved": {
      const n = node(s, e.node);
      Object.assign(n, { hasData: false, records: [], replayed: 0, standbySignal: false });
      return;
    }
    case "setAsideRemoved":
      node(s, e.node).setAside = false;
      return;
    case "link":
      if (e.up) s.cut.delete(linkKey(e.a, e.b));
      else s.cut.add(linkKey(e.a, e.b));
      return;
    case "frozen":
      node(s, e.node).frozen = e.frozen;
      return;
    case "replicationLag":
      s.receiveLagMs = e.receiveLagMs;
      s.replayLagMs = e.replayLagMs;
      return;
    case "pooler":
      if (s.pooler) Object.assign(s.pooler, e.change);
      return;
    case "watchdog":
      s.watchdog = { ...e.watchdog };
      return;
  }
}

export function fold(initial: () => WorldState, events: readonly WorldEvent[]): WorldState {
  const s = initial();
  for (const e of events) apply(s, e);
  return s;
}

export function node(s: WorldState, name: NodeName): SimNode {
  const n = s.nodes[name];
  if (!n) throw new Error(`no such node: ${name}`);
  return n;
}

export function vipHolders(s: WorldState): NodeName[] {
  return Object.values(s.nodes)
    .filter((n) => n.vip)
    .map((n) => n.name);
}

function appendOwn(
  s: WorldState,
  e: Extract<WorldEvent, { type: "walWritten" | "checkpointed" | "promoted" }>,
): void {
  const n = node(s, e.node);
  n.records.push(e.record);
  n.replayed = n.records.length;
  s.nextRid = Math.max(s.nextRid, e.record.rid + 1);
  if (e.type === "walWritten") n.dirty += e.dirty;
  if (e.type === "checkpointed") {
    n.dirty = 0;
    n.control = {
      state: e.state,
      checkpointLsn: e.record.start,
      checkpointEndLsn: e.record.end,
      timeline: e.record.tli,
    };
  }
  if (e.type === "promoted") {
    n.inRecovery = false;
    n.standbySignal = false;
    n.upstream = null;
    n.forks.push(e.fork);
    n.control = { ...n.control, state: "in production", timeline: e.fork.timeline };
  }
}

function stopped(n: SimNode, clean: boolean): void {
  n.process = "stopped";
  n.runningVersion = null;
  if (!clean) return;
  if (n.inRecovery) n.control = { ...n.control, state: "shut down in recovery" };
}

function started(n: SimNode): void {
  n.process = "running";
  n.runningVersion = n.installed;
  n.inRecovery = n.standbySignal;
  // Crash recovery replays whatever the node holds; a standby goes on replaying as WAL arrives.
  if (!n.inRecovery) n.replayed = n.records.length;
  n.control = { ...n.control, state: n.inRecovery ? "in archive recovery" : "in production" };
}

/**
 * Clients cache the VIP's hardware address. When its owner drops the address the entry lingers
 * until it expires; only a gratuitous ARP from the new owner replaces it at once.
 */
function vip(s: WorldState, e: Extract<WorldEvent, { type: "vip" }>): void {
  node(s, e.node).vip = e.bound;
  if (!e.bound) {
    if (s.arp.node === e.node)
      s.arp = { ...s.arp, staleUntil: Math.min(s.arp.staleUntil, e.t + ARP_TTL_MS) };
    return;
  }
  if (e.announce || s.arp.node === null)
    s.arp = { node: e.node, staleUntil: Number.POSITIVE_INFINITY };
}

export const ARP_TTL_MS = 3000;

function copiedFrom(
  s: WorldState,
  name: NodeName,
  from: NodeName,
  how: "rewind" | "baseBackup",
): void {
  const n = node(s, name);
  const src = node(s, from);
  const replayed = how === "rewind" ? commonPrefix(n, src) : src.replayed;
  // pg_rewind keeps the common history and takes the rest from the source; a base backup
  // takes everything. Either way the node's own divergent records are gone.
  // A base backup sets the replaced directory aside, if there was one to replace.
  n.setAside = n.setAside || (how === "baseBackup" && n.hasData);
  n.records = src.records.slice();
  n.replayed = replayed;
  n.control = { ...src.control, state: "in archive recovery" };
  n.forks = src.forks.slice();
  Object.assign(n, { hasData: true, standbySignal: true, upstream: from, dirty: 0 });
}

function commonPrefix(a: SimNode, b: SimNode): number {
  let i = 0;
  while (i < a.replayed && i < b.records.length && a.records[i]?.rid === b.records[i]?.rid) i++;
  return i;
}
