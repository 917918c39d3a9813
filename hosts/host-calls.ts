import type { ExecutorCall, NodeName, Pooler, Stop, Watchdog } from "../core/executor.ts";
import { hostDeadline, ownWaitS, type Timeouts } from "../core/timeouts.ts";
import {
  type ClusterSpec,
  type HostCommand,
  type HostCommands,
  type HostSpec,
  hostCommands,
} from "./commands.ts";
import { consoleStatements } from "./pooler-admin.ts";
import { ROOT_COMMAND_DIR, underDeadline, userCommandDir } from "./shell.ts";
import { armCommand, claimCommand, endCommand, refusedOnceTakenBack } from "./watchdog.ts";
import { CREATE_WRITES_SQL, INSERT_WRITE_SQL, SERVER_IDENTITY_SQL } from "./writes.ts";

/**
 * What each Executor call sends to the hosts, built from the run's Timeouts: the shell executor
 * (host-executor.ts) sends exactly these, and `switchover plan` and the dry run list them
 * (`sentBy`), so that what is shown is what runs.
 */

/** One host command, the node it runs on, and how long its transport may take. */
export interface HostSend {
  node: NodeName;
  command: HostCommand;
  deadlineMs: number;
  /** What a failure's reason calls it: "pg_ctl stop -m fast". */
  what: string;
  /** It changes the host: never while an earlier change still runs there (shell.ts underDeadline). */
  exclusive?: boolean;
  /**
   * It moves the switchover forward (anything but the way back to the old primary: its start,
   * the VIP up on it): refused on a host where the run's watchdog took the run back.
   */
  forward?: boolean;
}

/**
 * `send`'s command as the host runs it: under its deadline, a change after the earlier ones;
 * for a run's call that moves forward, refused once the run's watchdog took the run back there.
 */
export function onHost(send: HostSend, h: HostSpec, runId?: string): HostCommand {
  const own = send.command.user === "root" ? ROOT_COMMAND_DIR : userCommandDir(h.socketDir);
  const all = [ROOT_COMMAND_DIR, userCommandDir(h.socketDir)];
  const command =
    runId && send.forward
      ? { ...send.command, script: `${refusedOnceTakenBack(runId)}; ${send.command.script}` }
      : send.command;
  return underDeadline(command, {
    ...hostDeadline(send.deadlineMs),
    exclusive: send.exclusive ? { own, others: all.filter((d) => d !== own) } : null,
  });
}

/**
 * A client's statement through the pg driver: the probe, to the VIP or a node's own address;
 * a pooler's console statement, to `pgbouncer`.
 */
export interface ClientSend {
  target: NodeName | "vip" | "pgbouncer";
  /** Where the cluster says it listens (the executor may reach it through a tunnel). */
  address: string;
  sql: string;
  deadlineMs: number;
}

/** pg_ctl's own waits (-t) and the stop/promote polls, in whole seconds, from a step's deadline. */
const seconds = ownWaitS;

export function hostSends(cluster: ClusterSpec, t: Timeouts) {
  const hosts = new Map(cluster.nodes.map((h) => [h.name, h]));
  const commands = new Map(cluster.nodes.map((h) => [h.name, hostCommands(cluster, h)]));
  const host = (name: NodeName): HostSpec => {
    const h = hosts.get(name);
    if (!h) throw new Error(`no node "${name}" in the cluster (${[...hosts.keys()].join(", ")})`);
    return h;
  };
  const commandsOf = (name: NodeName) => commands.get(host(name).name) as HostCommands;
  const send = (
    node: NodeName,
    what: string,
    pick: (c: HostCommands) => HostCommand,
    deadlineMs = t.command,
  ): HostSend => ({
    node,
    what,
    command: pick(commandsOf(node)),
    deadlineMs,
  });
  const changes = (s: HostSend): HostSend => ({ ...s, exclusive: true, forward: true });
  const forward = (s: HostSend): HostSend => ({ ...s, forward: true });
  /** The way back to the old primary, which the run's watchdog takes too: never refused. */
  const restores = (s: HostSend): HostSend => ({ ...s, exclusive: true });
  const timelineFork = (n: NodeName) => send(n, "timeline history", (c) => c.latestTimelineHistory);
  const address = (target: NodeName | "vip") =>
    target === "vip"
      ? `${cluster.vip.address}:${cluster.nodes[0]?.port ?? 5432}`
      : `${host(target).address}:${host(target).port}`;
  return {
    host,
    /** Run side by side. */
    status: (n: NodeName) => ({
      server: send(n, "pg_ctl status", (c) => c.status),
      versionAndVip: send(n, "dpkg-query, ip addr show", (c) => c.versionAndVip),
    }),
    stopPostgres: (n: NodeName, stop: Stop) =>
      changes(send(n, commandsOf(n).stopWhat(stop), (c) => c.stop(stop, seconds(t.stop)), t.stop)),
    startPostgres: (n: NodeName) =>
      restores(send(n, commandsOf(n).startWhat, (c) => c.start(seconds(t.start)), t.start)),
    fence: (n: NodeName) => changes(send(n, commandsOf(n).fenceWhat, (c) => c.fence)),
    upgradePackages: (n: NodeName, version: string) =>
      changes(send(n, `upgrade to ${version}`, (c) => c.upgrade(version), t.upgrade)),
    checkpoint: (n: NodeName) => send(n, "CHECKPOINT", (c) => c.checkpoint),
    replication: (n: NodeName) => send(n, "replication status", (c) => c.replication),
    /**
     * pg_ctl status, pg_controldata, then pg_waldump at the latest checkpoint it names, to
     * read its end.
     */
    controlData: (n: NodeName) =>
      send(n, "pg_ctl status, pg_controldata, pg_waldump", (c) => c.controlDataAndRecord),
    timelineFork,
    /** pg_ctl promote, then the new timeline from its history file. */
    promote: (n: NodeName) =>
      changes(
        send(
          n,
          "pg_ctl promote, timeline history",
          (c) => c.promote(seconds(t.promote)),
          t.promote,
        ),
      ),
    vipDown: (n: NodeName) => changes(send(n, "ip addr del", (c) => c.vipDown)),
    vipUp: (n: NodeName, announce: boolean) =>
      restores(send(n, "ip addr add", (c) => c.vipUp(announce))),
    configureStandby: (n: NodeName, upstream: NodeName) =>
      changes(send(n, "standby configuration", (c) => c.configureStandby(host(upstream)))),
    rewind: (n: NodeName, source: NodeName) =>
      changes(send(n, "pg_rewind", (c) => c.rewind(host(source)), t.rejoin)),
    baseBackup: (n: NodeName, source: NodeName) =>
      changes(send(n, "pg_basebackup", (c) => c.baseBackup(host(source)), t.rejoin)),
    removeDataDir: (n: NodeName) => changes(send(n, "rm data directory", (c) => c.removeDataDir)),
    removeSetAside: (n: NodeName) =>
      changes(send(n, "rm set-aside directory", (c) => c.removeSetAside)),
    writtenIds: (n: NodeName) => send(n, "reading the written ids", (c) => c.writtenIds),
    /** The take-back is the plan's own rollback start and VIP-up (hosts/watchdog.ts). */
    armWatchdog: (n: NodeName, w: Watchdog) =>
      forward(
        send(n, "arming the watchdog", (c) =>
          armCommand(w.runId, w.afterMs, {
            host: host(n),
            start: c.start(seconds(t.start)),
            vipUp: c.vipUp(true),
            poolers: w.poolers,
          }),
        ),
      ),
    claimPromotion: (n: NodeName, runId: string) =>
      forward(send(n, "claiming the promotion", () => claimCommand(runId))),
    endWatchdog: (n: NodeName, runId: string) =>
      send(n, "ending the watchdog", () => endCommand(runId)),
    /**
     * A pooler's console statements (hosts/pooler-admin.ts), each on a connection of its own.
     * PAUSE's deadline ends before its step's, so that its own RESUME still runs in time.
     */
    pooler: (p: Pooler) => {
      const sql = consoleStatements(p.database);
      const at = (statement: string, deadlineMs: number): ClientSend => ({
        target: "pgbouncer",
        address: `${p.host}:${p.port}`,
        sql: statement,
        deadlineMs,
      });
      const pause = hostDeadline(t.pause).termMs;
      return {
        pause: {
          show: at(sql.show, pause),
          resume: at(sql.resume, pause),
          pause: at(sql.pause, pause),
        },
        show: at(sql.show, t.command),
        resume: at(sql.resume, t.command),
        reconnect: at(sql.reconnect, t.command),
      };
    },
    /** The INSERT; on a fresh cluster (no table yet) the CREATE TABLE, then the INSERT again. */
    probeWrite: (target: NodeName | "vip") => ({
      insert: { target, address: address(target), sql: INSERT_WRITE_SQL, deadlineMs: t.command },
      create: { target, address: address(target), sql: CREATE_WRITES_SQL, deadlineMs: t.command },
      /** Then to each node at its own address: the one whose postmaster the INSERT named. */
      identify: cluster.nodes.map((n) => ({
        target: n.name,
        address: address(n.name),
        sql: SERVER_IDENTITY_SQL,
        deadlineMs: t.command,
      })),
    }),
  };
}

export type HostSends = ReturnType<typeof hostSends>;

/** One thing a call sends, as a listing shows it; `note` says when, if not always. */
export type Sent =
  | { kind: "host"; send: HostSend; note?: string }
  | { kind: "client"; send: ClientSend; note?: string }
  | { kind: "nothing"; note: string };

/** Everything `call` sends, in order: what the shell executor runs for it, from the same builders. */
export function sentBy(s: HostSends, c: ExecutorCall): Sent[] {
  const host = (send: HostSend, note?: string): Sent => ({
    kind: "host",
    send,
    ...(note ? { note } : {}),
  });
  const client = (send: ClientSend, note?: string): Sent => ({
    kind: "client",
    send,
    ...(note ? { note } : {}),
  });
  switch (c.method) {
    case "status": {
      const st = s.status(c.args[0]);
      return [host(st.server), host(st.versionAndVip)];
    }
    case "stopPostgres":
      return [host(s.stopPostgres(c.args[0], c.args[1]))];
    case "startPostgres":
      return [host(s.startPostgres(c.args[0]))];
    case "fence":
      return [host(s.fence(c.args[0]))];
    case "upgradePackages":
      return [host(s.upgradePackages(c.args[0], c.args[1]))];
    case "checkpoint":
      return [host(s.checkpoint(c.args[0]))];
    case "replication":
      return [host(s.replication(c.args[0]))];
    case "controlData":
      return [host(s.controlData(c.args[0]))];
    case "timelineFork":
      return [host(s.timelineFork(c.args[0]))];
    case "promote":
      return [host(s.promote(c.args[0]))];
    case "vipDown":
      return [host(s.vipDown(c.args[0]))];
    case "vipUp":
      return [host(s.vipUp(c.args[0], c.args[1]))];
    case "configureStandby":
      return [host(s.configureStandby(c.args[0], c.args[1]))];
    case "rewind":
      return [host(s.rewind(c.args[0], c.args[1]))];
    case "baseBackup":
      return [host(s.baseBackup(c.args[0], c.args[1]))];
    case "removeDataDir":
      return [host(s.removeDataDir(c.args[0]))];
    case "removeSetAside":
      return [host(s.removeSetAside(c.args[0]))];
    case "writtenIds":
      return [host(s.writtenIds(c.args[0]))];
    case "probeWrite": {
      const p = s.probeWrite(c.args[0]);
      return [
        { kind: "client", send: p.insert, note: "on a new connection, $1 = the probe's id" },
        {
          kind: "client",
          send: p.create,
          note: "only if the table is missing (SQLSTATE 42P01), then the INSERT again",
        },
        ...p.identify.map(
          (send): Sent => ({
            kind: "client",
            send,
            note: "then, side by side, to each node: the one whose postmaster start the INSERT returned is where it landed",
          }),
        ),
      ];
    }
    case "pausePooler": {
      const p = s.pooler(c.args[0]).pause;
      return [
        client(p.show),
        client(p.resume, "only if it shows paused already (a resumed run)"),
        client(p.pause),
        client(p.show, "if PAUSE has not returned by its deadline, to undo it"),
        client(p.resume, "then, only if it shows paused"),
      ];
    }
    case "reconnectPooler":
      return [client(s.pooler(c.args[0]).reconnect)];
    case "resumePooler": {
      const p = s.pooler(c.args[0]);
      return [client(p.show), client(p.resume, "only if it shows paused")];
    }
    case "armWatchdog":
      return [host(s.armWatchdog(c.args[0], c.args[1]))];
    case "claimPromotion":
      return [host(s.claimPromotion(c.args[0], c.args[1]))];
    case "endWatchdog":
      return [host(s.endWatchdog(c.args[0], c.args[1]))];
    case "notify":
      return [
        {
          kind: "nothing",
          note: "nothing is sent to the hosts: the afterPromote hook, if any, runs on the operator's machine (listed with the hooks)",
        },
      ];
  }
}
