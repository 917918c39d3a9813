import { AbortedError } from "../core/clock.ts";
import type {
  CallOptions,
  Executor,
  NodeName,
  Outcome,
  Pooler,
  ReplicationStatus,
  StandbyInfo,
} from "../core/executor.ts";
import { parseLsn } from "../core/lsn.ts";
import type { Timeouts } from "../core/timeouts.ts";
import {
  type ClusterSpec,
  HOLD_MARK,
  type HostCommand,
  type HostSpec,
  parseStoppedControl,
  parseTimelineHistory,
  parseWalRecordEnd,
  pgCtlRunning,
  type ReplicationRow,
  shortVersion,
  splitOutputs,
  vipBound,
} from "./commands.ts";
import { type ClientSend, type HostSend, hostSends, onHost } from "./host-calls.ts";
import {
  type AdminOptions,
  type AdminOutcome,
  type PoolerConsole,
  pausePooler,
  reconnectPooler,
  resumePooler,
} from "./pooler-admin.ts";
import { type Endpoint, serverIdentity, writeOnce } from "./writes.ts";

/** What a host command printed and how it ended; `code` null: its deadline passed first. */
export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one host command on a node: through `docker exec`, or over SSH. */
export type CommandRunner = (
  node: HostSpec,
  cmd: HostCommand,
  deadlineMs: number,
  /** Its call was abandoned: a command still queued here is never sent (a retry may be under way). */
  signal?: AbortSignal,
) => Promise<CommandResult>;

export interface ShellExecutorOptions {
  cluster: ClusterSpec;
  run: CommandRunner;
  /** Where a client reaches Postgres through the VIP or a node's own address. */
  endpoint: (target: NodeName | "vip") => Endpoint;
  /** The run's deadlines: the commands' own waits (pg_ctl -t) and each command's transport's. */
  timeouts: Timeouts;
}

const ok = { ok: true } as const;

/**
 * The Executor over real hosts: each operation sends the host commands host-calls.ts builds for
 * it (from commands.ts and the run's Timeouts), run by a CommandRunner, their output parsed into
 * the port's data. A non-zero exit is `{ ok: false }` with what the command printed; an aborted
 * call rejects (its outcome is unknown).
 */
export function shellExecutor(o: ShellExecutorOptions): Executor {
  const sends = hostSends(o.cluster, o.timeouts);

  /** Runs a command; the call rejects when `signal` aborts, whatever the host still does. */
  async function run(send: HostSend, opts: CallOptions | undefined): Promise<CommandResult> {
    opts?.signal?.throwIfAborted();
    const h = sends.host(send.node);
    const running = o.run(h, onHost(send, h, opts?.runId), send.deadlineMs, opts?.signal);
    if (!opts?.signal) return running;
    const signal = opts.signal;
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new AbortedError());
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([running, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Sends `send`: exit 0 gives `parse(stdout)`; else a failure naming the command's complaint. */
  async function outcome<T extends object>(
    send: HostSend,
    opts: CallOptions | undefined,
    parse: (stdout: string) => T,
  ): Promise<Outcome<T>> {
    const r = await run(send, opts);
    if (r.code !== 0) return { ok: false, reason: failure(send, r) };
    try {
      return { ok: true, ...parse(r.stdout) };
    } catch (e) {
      return { ok: false, reason: `${send.node}: ${send.what}: ${(e as Error).message}` };
    }
  }
  const done = () => ({});

  const controlData = async (name: NodeName, opts?: CallOptions) =>
    outcome(sends.controlData(name), opts, (s) => {
      const [control, record] = splitOutputs(s);
      return { ...parseStoppedControl(control), checkpointEndLsn: parseWalRecordEnd(record) };
    });

  const timelineFork = async (name: NodeName, opts?: CallOptions) =>
    outcome(sends.timelineFork(name), opts, (s) => parseTimelineHistory(s));

  /**
   * The node whose postmaster is `server` (what a write answered), asked of each node at its own
   * address; a node that does not answer is not it. None: the write landed on neither node's
   * postmaster as it runs now, and the probe says so (its write was acknowledged all the same).
   */
  async function nodeServing(server: string, deadlineMs: number, opts?: CallOptions) {
    const seen = await Promise.all(
      o.cluster.nodes.map((n) =>
        serverIdentity(o.endpoint(n.name), deadlineMs, opts?.signal).catch(() => null),
      ),
    );
    const at = seen.indexOf(server);
    return (
      o.cluster.nodes[at]?.name ?? `a server that is neither node (postmaster started ${server})`
    );
  }

  /**
   * A console operation on `p`'s pooled database, within the deadline of the statement the
   * listing shows for it; its answer as the port's: a deadline the plan's signal ended is unknown.
   */
  async function consoleOutcome(
    p: Pooler,
    opts: CallOptions | undefined,
    operation: (c: PoolerConsole, o: AdminOptions) => Promise<AdminOutcome>,
    listed: ClientSend,
  ): Promise<Outcome> {
    const c = { host: p.host, port: p.port, adminUser: p.adminUser };
    const r = await operation(c, {
      database: p.database,
      deadlineMs: listed.deadlineMs,
      ...(opts?.signal ? { signal: opts.signal } : {}),
    });
    if (opts?.signal?.aborted) throw new AbortedError();
    return r.ok ? ok : { ok: false, reason: `pooler ${p.host}:${p.port}: ${r.detail}` };
  }
  const copied = (send: HostSend, opts: CallOptions | undefined, parse: Parse) =>
    outcome(send, opts, (s) => ({ bytesCopied: parse(s) }));

  return {
    async status(name, opts) {
      const sent = sends.status(name);
      const [pgctl, facts] = await Promise.all([
        run(sent.server, opts),
        run(sent.versionAndVip, opts),
      ]);
      const running = pgCtlRunning(pgctl.code);
      if (running === null) return { ok: false, reason: failure(sent.server, pgctl) };
      if (facts.code !== 0) return { ok: false, reason: failure(sent.versionAndVip, facts) };
      const [version, vip] = splitOutputs(facts.stdout);
      return {
        ok: true,
        running,
        version: shortVersion(version),
        vipBound: vipBound(o.cluster, vip),
      };
    },
    stopPostgres: async (name, stop, opts) => outcome(sends.stopPostgres(name, stop), opts, done),
    startPostgres: async (name, opts) => outcome(sends.startPostgres(name), opts, done),
    fence: async (name, opts) => outcome(sends.fence(name), opts, done),
    upgradePackages: async (name, version, opts) =>
      outcome(sends.upgradePackages(name, version), opts, holdsSaid),
    checkpoint: async (name, opts) => outcome(sends.checkpoint(name), opts, done),
    replication: async (name, opts) =>
      outcome(sends.replication(name), opts, (s) => parseReplication(o.cluster, name, s)),
    controlData,
    timelineFork,
    async promote(name, opts) {
      return outcome(sends.promote(name), opts, (s) => ({
        timeline: parseTimelineHistory(splitOutputs(s)[1]).timeline,
      }));
    },
    vipDown: async (name, opts) => outcome(sends.vipDown(name), opts, done),
    vipUp: async (name, announce, opts) => outcome(sends.vipUp(name, announce), opts, done),
    configureStandby: async (name, upstream, opts) =>
      outcome(sends.configureStandby(name, upstream), opts, done),
    rewind: async (name, source, opts) => copied(sends.rewind(name, source), opts, rewindBytes),
    baseBackup: async (name, source, opts) =>
      copied(sends.baseBackup(name, source), opts, (s) => Number(s.trim().split("\n").at(-1))),
    removeDataDir: async (name, opts) => outcome(sends.removeDataDir(name), opts, done),
    removeSetAside: async (name, opts) => outcome(sends.removeSetAside(name), opts, done),
    async probeWrite(target, id, opts) {
      try {
        // writeOnce sends sends.probeWrite(target)'s statements (writes.ts holds their SQL).
        const { insert } = sends.probeWrite(target);
        const answer = await writeOnce(o.endpoint(target), id, insert.deadlineMs, opts?.signal);
        return { ok: true, node: await nodeServing(answer.server, insert.deadlineMs, opts) };
      } catch (e) {
        if (opts?.signal?.aborted) throw new AbortedError();
        return { ok: false, reason: `write through ${target}: ${(e as Error).message}` };
      }
    },
    writtenIds: async (name, opts) =>
      outcome(sends.writtenIds(name), opts, (s) => ({ ids: JSON.parse(s) as string[] })),
    // The hosts are told nothing: the operator's afterPromote hook tells the applications (run/hooks.ts).
    notify: async () => ok,
    pausePooler: (p, opts) => consoleOutcome(p, opts, pausePooler, sends.pooler(p).pause.pause),
    reconnectPooler: (p, opts) =>
      consoleOutcome(p, opts, reconnectPooler, sends.pooler(p).reconnect),
    resumePooler: (p, opts) => consoleOutcome(p, opts, resumePooler, sends.pooler(p).resume),
    armWatchdog: async (name, w, opts) => outcome(sends.armWatchdog(name, w), opts, done),
    claimPromotion: async (name, runId, opts) =>
      outcome(sends.claimPromotion(name, runId), opts, done),
    endWatchdog: async (name, runId, opts) => outcome(sends.endWatchdog(name, runId), opts, done),
  };
}

type Parse = (stdout: string) => number;

/** The lines --unhold's upgrade prints (HOLD_MARK), joined: what the journal keeps of it. */
function holdsSaid(stdout: string): { said?: string } {
  const lines = stdout
    .split("\n")
    .filter((l) => l.startsWith(HOLD_MARK))
    .map((l) => l.slice(HOLD_MARK.length).trim());
  return lines.length > 0 ? { said: lines.join("; ") } : {};
}

function failure({ node, what }: HostSend, r: CommandResult): string {
  if (r.code === null) return `${node}: ${what} did not finish before its deadline`;
  const said = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" / ");
  return `${node}: ${what} exited ${r.code}${said ? `: ${said}` : ""}`;
}

/** REPLICATION_SQL's row on `self`, its standbys named as the pair's nodes where they are. */
export function parseReplication(
  cluster: ClusterSpec,
  self: NodeName,
  stdout: string,
): ReplicationStatus {
  const raw = JSON.parse(stdout) as ReplicationRow;
  const lsn = (v: string | null) => (v === null ? null : parseLsn(v));
  return {
    inRecovery: raw.inRecovery,
    timeline: raw.timeline,
    lsn: lsn(raw.lsn) ?? 0,
    receiveLsn: lsn(raw.receiveLsn),
    replayLsn: lsn(raw.replayLsn),
    streaming: raw.streaming,
    standbys: raw.standbys.map(
      (s): StandbyInfo => ({
        client: standbyNode(cluster, self, raw.standbys, s),
        state: s.state,
        sentLsn: lsn(s.sentLsn) ?? 0,
        replayLsn: lsn(s.replayLsn) ?? 0,
      }),
    ),
  };
}

type StandbyRow = ReplicationRow["standbys"][number];

/**
 * Which node of the pair a row of `self`'s pg_stat_replication is: the one its application_name
 * names (what the plan's own primary_conninfo sets), else the other node when the row is the
 * only one from that node's address and no row names it (a standby whose application_name is
 * Debian's cluster_name "15/main", or libpq's "walreceiver"). Any other client (Barman,
 * pg_receivewal, a backup) keeps its own name, so it is never taken for the standby; two
 * unnamed rows from one address are neither (pre-flight then lists them).
 */
function standbyNode(
  cluster: ClusterSpec,
  self: NodeName,
  rows: readonly StandbyRow[],
  row: StandbyRow,
): string {
  if (cluster.nodes.some((h) => h.name === row.client)) return row.client;
  const other = cluster.nodes.find(
    (h) => h.name !== self && row.address !== null && h.address === row.address,
  );
  if (!other || rows.some((r) => r.client === other.name)) return row.client;
  const fromThere = rows.filter((r) => r.address === row.address);
  return fromThere.length === 1 ? other.name : row.client;
}

/** pg_rewind -P (its stderr joined to stdout) ends with "N/M kB (100%) copied". */
function rewindBytes(stdout: string): number {
  const all = [...stdout.matchAll(/(\d+)\/\d+ kB \(\d+%\) copied/g)];
  const last = all.at(-1);
  return last ? Number(last[1]) * 1024 : 0;
}
