import { AbortedError } from "../core/clock.ts";
import type {
  CallOptions,
  Executor,
  NodeName,
  Outcome,
  ReplicationStatus,
  StandbyInfo,
} from "../core/executor.ts";
import { parseLsn } from "../core/lsn.ts";
import {
  type ClusterSpec,
  type HostCommand,
  type HostCommands,
  type HostSpec,
  hostCommands,
  parseControlData,
  parseTimelineHistory,
  parseWalRecordEnd,
  type ReplicationRow,
  shortVersion,
  vipBound,
} from "./commands.ts";
import { type Endpoint, writeOnce } from "./writes.ts";

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
) => Promise<CommandResult>;

export interface ShellExecutorOptions {
  cluster: ClusterSpec;
  run: CommandRunner;
  /** Where a client reaches Postgres through the VIP or a node's own address. */
  endpoint: (target: NodeName | "vip") => Endpoint;
  /** The runbook's "tell the applications to reconnect"; nothing by default. */
  notify?: (message: string) => Promise<Outcome>;
  /** Deadlines per command (ms): the plan's own deadlines are shorter and abort the call first. */
  deadlines?: Partial<typeof DEFAULT_DEADLINES>;
}

const DEFAULT_DEADLINES = {
  command: 120_000,
  upgrade: 900_000,
  copy: 3_600_000,
};

/** pg_ctl's own waits (-t, seconds): they end a hung stop/start/promote on the host itself. */
const PG_CTL_WAIT_S = 120;

const ok = { ok: true } as const;

/**
 * The Executor over real hosts: each operation is the host command of commands.ts, run by a
 * CommandRunner, its output parsed into the port's data. A non-zero exit is `{ ok: false }`
 * with what the command printed; an aborted call rejects (its outcome is unknown).
 */
export function shellExecutor(o: ShellExecutorOptions): Executor {
  const deadlines = { ...DEFAULT_DEADLINES, ...o.deadlines };
  const hosts = new Map(o.cluster.nodes.map((h) => [h.name, h]));
  const host = (name: NodeName): HostSpec => {
    const h = hosts.get(name);
    if (!h) throw new Error(`no node "${name}" in the cluster (${[...hosts.keys()].join(", ")})`);
    return h;
  };
  const cmds = new Map(o.cluster.nodes.map((h) => [h.name, hostCommands(o.cluster, h)]));
  const on = (name: NodeName) => cmds.get(host(name).name) as HostCommands;

  /** Runs a command; the call rejects when `signal` aborts, whatever the host still does. */
  async function run(
    name: NodeName,
    pick: (c: HostCommands) => HostCommand,
    opts: CallOptions | undefined,
    deadlineMs = deadlines.command,
  ): Promise<CommandResult> {
    opts?.signal?.throwIfAborted();
    const running = o.run(host(name), pick(on(name)), deadlineMs);
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

  /** Exit 0 gives `parse(stdout)`; anything else a failure naming the command's complaint. */
  async function outcome<T extends object>(
    name: NodeName,
    what: string,
    result: Promise<CommandResult>,
    parse: (stdout: string) => T,
  ): Promise<Outcome<T>> {
    const r = await result;
    if (r.code !== 0) return { ok: false, reason: failure(name, what, r) };
    try {
      return { ok: true, ...parse(r.stdout) };
    } catch (e) {
      return { ok: false, reason: `${name}: ${what}: ${(e as Error).message}` };
    }
  }
  const done = () => ({});

  const controlData = async (name: NodeName, opts?: CallOptions) => {
    const cd = await outcome(
      name,
      "pg_controldata",
      run(name, (c) => c.controlData, opts),
      (s) => parseControlData(s),
    );
    if (!cd.ok) return cd;
    return outcome(
      name,
      "pg_waldump",
      run(name, (c) => c.walRecord(cd.checkpointLsn, cd.timeline), opts),
      (s) => ({ ...cd, checkpointEndLsn: parseWalRecordEnd(s) }),
    );
  };

  const timelineFork = (name: NodeName, opts?: CallOptions) =>
    outcome(
      name,
      "timeline history",
      run(name, (c) => c.latestTimelineHistory, opts),
      (s) => parseTimelineHistory(s),
    );

  const copied = (name: NodeName, what: string, r: Promise<CommandResult>, parse: Parse) =>
    outcome(name, what, r, (s) => ({ bytesCopied: parse(s) }));

  return {
    async status(name, opts) {
      const [pgctl, version, vip] = await Promise.all([
        run(name, (c) => c.status, opts),
        run(name, (c) => c.installedVersion, opts),
        run(name, (c) => c.vipShow, opts),
      ]);
      // pg_ctl status: 0 running, 3 not running, 4 no data directory (not running either).
      if (pgctl.code !== 0 && pgctl.code !== 3 && pgctl.code !== 4)
        return { ok: false, reason: failure(name, "pg_ctl status", pgctl) };
      if (version.code !== 0) return { ok: false, reason: failure(name, "dpkg-query", version) };
      if (vip.code !== 0) return { ok: false, reason: failure(name, "ip addr show", vip) };
      return {
        ok: true,
        running: pgctl.code === 0,
        version: shortVersion(version.stdout),
        vipBound: vipBound(o.cluster, vip.stdout),
      };
    },
    stopPostgres: (name, stop, opts) =>
      outcome(
        name,
        `pg_ctl stop -m ${stop.mode}`,
        run(name, (c) => c.stop(stop, PG_CTL_WAIT_S), opts),
        done,
      ),
    startPostgres: (name, opts) =>
      outcome(
        name,
        "pg_ctl start",
        run(name, (c) => c.start(PG_CTL_WAIT_S), opts),
        done,
      ),
    upgradePackages: (name, version, opts) =>
      outcome(
        name,
        `upgrade to ${version}`,
        run(name, (c) => c.upgrade(version), opts, deadlines.upgrade),
        done,
      ),
    checkpoint: (name, opts) =>
      outcome(
        name,
        "CHECKPOINT",
        run(name, (c) => c.checkpoint, opts),
        done,
      ),
    replication: (name, opts) =>
      outcome(
        name,
        "replication status",
        run(name, (c) => c.replication, opts),
        parseReplication,
      ),
    controlData,
    timelineFork,
    async promote(name, opts) {
      const r = await outcome(
        name,
        "pg_ctl promote",
        run(name, (c) => c.promote(PG_CTL_WAIT_S), opts),
        done,
      );
      if (!r.ok) return r;
      const fork = await timelineFork(name, opts);
      return fork.ok ? { ok: true, timeline: fork.timeline } : fork;
    },
    vipDown: (name, opts) =>
      outcome(
        name,
        "ip addr del",
        run(name, (c) => c.vipDown, opts),
        done,
      ),
    vipUp: (name, announce, opts) =>
      outcome(
        name,
        "ip addr add",
        run(name, (c) => c.vipUp(announce), opts),
        done,
      ),
    configureStandby: (name, upstream, opts) =>
      outcome(
        name,
        "standby configuration",
        run(name, (c) => c.configureStandby(host(upstream)), opts),
        done,
      ),
    rewind: (name, source, opts) =>
      copied(
        name,
        "pg_rewind",
        run(name, (c) => c.rewind(host(source)), opts, deadlines.copy),
        rewindBytes,
      ),
    baseBackup: (name, source, opts) =>
      copied(
        name,
        "pg_basebackup",
        run(name, (c) => c.baseBackup(host(source)), opts, deadlines.copy),
        (s) => Number(s.trim().split("\n").at(-1)),
      ),
    removeDataDir: (name, opts) =>
      outcome(
        name,
        "rm data directory",
        run(name, (c) => c.removeDataDir, opts),
        done,
      ),
    removeSetAside: (name, opts) =>
      outcome(
        name,
        "rm set-aside directory",
        run(name, (c) => c.removeSetAside, opts),
        done,
      ),
    async probeWrite(target, id, opts) {
      try {
        const node = await writeOnce(o.endpoint(target), id, deadlines.command, opts?.signal);
        return { ok: true, node };
      } catch (e) {
        if (opts?.signal?.aborted) throw new AbortedError();
        return { ok: false, reason: `write through ${target}: ${(e as Error).message}` };
      }
    },
    writtenIds: (name, opts) =>
      outcome(
        name,
        "reading the written ids",
        run(name, (c) => c.writtenIds, opts),
        (s) => ({
          ids: JSON.parse(s) as string[],
        }),
      ),
    notify: async (message) => (o.notify ? o.notify(message) : ok),
  };
}

type Parse = (stdout: string) => number;

function failure(name: NodeName, what: string, r: CommandResult): string {
  if (r.code === null) return `${name}: ${what} did not finish before its deadline`;
  const said = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" / ");
  return `${name}: ${what} exited ${r.code}${said ? `: ${said}` : ""}`;
}

function parseReplication(stdout: string): ReplicationStatus {
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
        client: s.client,
        state: s.state,
        sentLsn: lsn(s.sentLsn) ?? 0,
        replayLsn: lsn(s.replayLsn) ?? 0,
      }),
    ),
  };
}

/** pg_rewind -P (its stderr joined to stdout) ends with "N/M kB (100%) copied". */
function rewindBytes(stdout: string): number {
  const all = [...stdout.matchAll(/(\d+)\/\d+ kB \(\d+%\) copied/g)];
  const last = all.at(-1);
  return last ? Number(last[1]) * 1024 : 0;
}
