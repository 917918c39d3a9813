/**
 * The Executor port: every operation a switchover performs on a host, addressed to a node.
 * Results are data; a non-zero exit is `{ ok: false }`, never an exception. Only a broken
 * transport throws. A call whose `signal` aborts (the plan's deadline passed) rejects: its
 * outcome is unknown, and the plan treats it so.
 */
export type NodeName = string;

/** A WAL position as a byte offset (PostgreSQL prints it as `X/Y`, see lsn.ts). */
export type Lsn = number;

export type Failure = { ok: false; reason: string };
export type Outcome<T = Record<never, never>> = ({ ok: true } & T) | Failure;

export type StopMode = "fast" | "immediate";

/**
 * How to stop a server. `fence`: it must then stay down across a host restart until the plan
 * starts it again (an old primary once its standby may be promoted): the host command marks it so
 * before stopping, and a start clears the mark.
 */
export interface Stop {
  mode: StopMode;
  fence: boolean;
}

/** What pg_controldata says of the cluster state. */
export type ClusterState =
  | "shut down"
  | "shut down in recovery"
  | "shutting down"
  | "in crash recovery"
  | "in archive recovery"
  | "in production";

export interface ControlData {
  /**
   * A postmaster ran on the data directory when pg_control was read (pg_ctl status, in the same
   * command): pg_control says what a running server last wrote, not what it is doing.
   */
  running: boolean;
  state: ClusterState;
  timeline: number;
  /** Start of the latest checkpoint record. */
  checkpointLsn: Lsn;
  /** End of that record: a standby has it once its replay position reaches this. */
  checkpointEndLsn: Lsn;
}

export interface StandbyInfo {
  /** Address or name the standby connected from. */
  client: string;
  state: string;
  sentLsn: Lsn;
  replayLsn: Lsn;
}

export interface ReplicationStatus {
  inRecovery: boolean;
  timeline: number;
  /** Primary: current WAL insert position. Standby: last replayed position. */
  lsn: Lsn;
  /** Standby only: received and flushed, and replayed positions; whether the receiver streams. */
  receiveLsn: Lsn | null;
  replayLsn: Lsn | null;
  streaming: boolean;
  /** Primary only: its connected standbys (pg_stat_replication). */
  standbys: StandbyInfo[];
}

export interface NodeStatus {
  running: boolean;
  /** Installed package version of the server, e.g. "15.18". */
  version: string;
  vipBound: boolean;
}

export interface PromoteResult {
  timeline: number;
}

export interface TimelineFork {
  timeline: number;
  /** Where the new timeline branched off the previous one (from its history file). */
  switchpoint: Lsn;
}

export interface ProbeResult {
  /** The node that committed the probe write. */
  node: NodeName;
}

/**
 * A PgBouncer in front of the VIP, as the inventory names it: its admin console (`adminUser`
 * in its admin_users) and the pooled database the plan pauses and resumes.
 */
export interface Pooler {
  host: string;
  port: number;
  adminUser: string;
  database: string;
}

export interface CallOptions {
  signal?: AbortSignal;
  /**
   * The run the call belongs to: on the old primary's host every command of a run first checks
   * that the run's watchdog has not taken the run back (a `revoked` failure if it has).
   */
  runId?: string;
}

/**
 * The watchdog armed on the old primary's host before the VIP goes down: if the run has not
 * claimed the promotion `afterMs` later, it takes the run back there (the old primary started,
 * unfenced, the VIP up and announced, the poolers resumed) and refuses the run's later commands.
 */
export interface Watchdog {
  runId: string;
  afterMs: number;
  poolers: Pooler[];
}

export interface Executor {
  status(node: NodeName, o?: CallOptions): Promise<Outcome<NodeStatus>>;
  stopPostgres(node: NodeName, stop: Stop, o?: CallOptions): Promise<Outcome>;
  /**
   * Fences the server without stopping it: from now on the host does not start it by itself
   * (package scripts, a boot) until a start clears the fence. A running server stays up.
   */
  fence(node: NodeName, o?: CallOptions): Promise<Outcome>;
  startPostgres(node: NodeName, o?: CallOptions): Promise<Outcome>;
  upgradePackages(node: NodeName, version: string, o?: CallOptions): Promise<Outcome>;
  checkpoint(node: NodeName, o?: CallOptions): Promise<Outcome>;
  replication(node: NodeName, o?: CallOptions): Promise<Outcome<ReplicationStatus>>;
  controlData(node: NodeName, o?: CallOptions): Promise<Outcome<ControlData>>;
  /** Latest timeline fork of a node that was promoted (its newest timeline history file). */
  timelineFork(node: NodeName, o?: CallOptions): Promise<Outcome<TimelineFork>>;
  promote(node: NodeName, o?: CallOptions): Promise<Outcome<PromoteResult>>;
  vipDown(node: NodeName, o?: CallOptions): Promise<Outcome>;
  /** Binds the VIP; `announce` sends gratuitous ARP so neighbours drop their old entry. */
  vipUp(node: NodeName, announce: boolean, o?: CallOptions): Promise<Outcome>;
  /** Writes standby.signal and primary_conninfo pointing at `upstream` (node stopped). */
  configureStandby(node: NodeName, upstream: NodeName, o?: CallOptions): Promise<Outcome>;
  rewind(
    node: NodeName,
    source: NodeName,
    o?: CallOptions,
  ): Promise<Outcome<{ bytesCopied: number }>>;
  /** A fresh copy of `source` into a new directory, verified, then swapped in (old kept aside). */
  baseBackup(
    node: NodeName,
    source: NodeName,
    o?: CallOptions,
  ): Promise<Outcome<{ bytesCopied: number }>>;
  /** Deletes the data directory outright: only the classic runbook does this. */
  removeDataDir(node: NodeName, o?: CallOptions): Promise<Outcome>;
  /** Deletes the directory a base backup put aside, once its replacement streams. */
  removeSetAside(node: NodeName, o?: CallOptions): Promise<Outcome>;
  /** Commits a probe row through the VIP or a node's own address; says who committed it. */
  probeWrite(target: NodeName | "vip", id: string, o?: CallOptions): Promise<Outcome<ProbeResult>>;
  /** The ids of the rows clients wrote that this running node holds: what the checkers read. */
  writtenIds(node: NodeName, o?: CallOptions): Promise<Outcome<{ ids: string[] }>>;
  /** The runbook's "tell the applications to reconnect": an operator-supplied hook. */
  notify(message: string, o?: CallOptions): Promise<Outcome>;
  /**
   * PAUSE: the transactions in flight finish, the pool's server connections close, new queries
   * wait in the pooler. Bounded by the `pause` deadline; past it the pause is undone (RESUME).
   */
  pausePooler(pooler: Pooler, o?: CallOptions): Promise<Outcome>;
  /** RECONNECT: each server connection is closed once released; the next one goes through the VIP. */
  reconnectPooler(pooler: Pooler, o?: CallOptions): Promise<Outcome>;
  /** RESUME: the waiting queries run; a pooler that is not paused is left as it is. */
  resumePooler(pooler: Pooler, o?: CallOptions): Promise<Outcome>;
  /** Arms `w` on the node's host (again: the earlier one of the run is replaced). */
  armWatchdog(node: NodeName, w: Watchdog, o?: CallOptions): Promise<Outcome>;
  /**
   * The run claims the promotion on the node's host, atomically against its watchdog: from then
   * on the watchdog does nothing. Fails (revoked) if the watchdog took the run back first.
   */
  claimPromotion(node: NodeName, runId: string, o?: CallOptions): Promise<Outcome>;
  /** The run has ended where it started: the watchdog is stopped and will never act. */
  endWatchdog(node: NodeName, runId: string, o?: CallOptions): Promise<Outcome>;
}

/**
 * One call of the port, its options left out, as data: what a caller (a plan effect, the
 * sampler, pre-flight) makes, for `switchover plan` and the dry run to list with what it sends.
 * `when`: when the caller makes it, if not always once ("every 50 ms until …", "if it runs").
 */
export type ExecutorCall = {
  [K in keyof Executor]: { method: K; args: Parameters<Executor[K]>; when?: string };
}[keyof Executor];

export function call<K extends keyof Executor>(
  method: K,
  ...args: Parameters<Executor[K]>
): ExecutorCall {
  return { method, args } as ExecutorCall;
}
