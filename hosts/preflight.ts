import { compareDebianVersions } from "../core/debian-version.ts";
import {
  call,
  type Executor,
  type ExecutorCall,
  type NodeName,
  type NodeStatus,
  type ReplicationStatus,
} from "../core/executor.ts";
import type { Timeouts } from "../core/timeouts.ts";
import { type ClusterSpec, type HostSpec, hostCommands } from "./commands.ts";
import type { HostSend } from "./host-calls.ts";
import type { CommandRunner } from "./host-executor.ts";
import { type HostFacts, hostFactsCommand, judgeControl, parseHostFacts } from "./host-facts.ts";
import {
  heldOf,
  heldProblem,
  missingToolsProblem,
  type PackageFacts,
  packageFactsCommand,
  parsePackageFacts,
  type Resolution,
  resolveOnPair,
} from "./package-versions.ts";
import {
  type LinkFacts,
  type LinkResolution,
  resolveStandbyLink,
  type SlotRow,
} from "./standby-link.ts";
import { syncStandbyNeed } from "./sync-standby.ts";

/**
 * The pre-flight checklist of a production run: read-only looks at both hosts, judged before
 * anything changes. A `fail` stops the run; a `warn` is shown and the run may go on.
 */
export interface CheckItem {
  status: "ok" | "warn" | "fail";
  check: string;
  detail: string;
}

export interface PreflightInput {
  cluster: ClusterSpec;
  primary: NodeName;
  standby: NodeName;
  /** A bare release ("15.20", resolved on each host) or a full Debian version. */
  targetVersion: string;
  maxLagBytes: number;
  minFreeBytes: number;
  /** `pause`: how long PAUSE may wait, what a long transaction is measured against. */
  timeouts: Pick<Timeouts, "pause">;
}

/**
 * What makes a shutdown hang or a rejoin fail, in one row of JSON per running server. Long
 * transactions: those open longer than `longTransactionS`, the poolers' PAUSE deadline: one
 * still open when the plan pauses them holds PAUSE past it, and the plan rolls back.
 */
export const hazardsSql = (longTransactionS: number) =>
  `SELECT json_build_object(
  'longTransactions', COALESCE((SELECT json_agg(json_build_object('pid', pid, 'ageS', floor(extract(epoch FROM now() - xact_start))::int,
     'application', application_name, 'state', state) ORDER BY xact_start)
     FROM pg_stat_activity WHERE xact_start < now() - interval '${longTransactionS} seconds' AND backend_type = 'client backend'), '[]'::json),
  'prepared', (SELECT count(*) FROM pg_prepared_xacts),
  'logicalSlots', (SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'),
  'archiveMode', current_setting('archive_mode'),
  'archiveReady', (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'),
  'archiveCommand', current_setting('archive_command'),
  'archiveLibrary', current_setting('archive_library'),
  'primaryConninfo', current_setting('primary_conninfo'),
  'primarySlotName', current_setting('primary_slot_name'),
  'physicalSlots', COALESCE((SELECT json_agg(json_build_object('name', slot_name, 'active', active,
     'address', (SELECT host(client_addr) FROM pg_stat_replication r WHERE r.pid = s.active_pid),
     'heldBytes', pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)))
     FROM pg_replication_slots s WHERE slot_type = 'physical'), '[]'::json),
  'walLogHints', current_setting('wal_log_hints'),
  'dataChecksums', current_setting('data_checksums'),
  'syncStandbyNames', current_setting('synchronous_standby_names'),
  'replicas', COALESCE((SELECT json_agg(json_build_object('name', application_name, 'address', host(client_addr))) FROM pg_stat_replication), '[]'::json))`.replace(
    /\s+/g,
    " ",
  );

/** A client's transaction open longer than the PAUSE deadline, as pg_stat_activity shows it. */
export interface LongTransaction {
  pid: number;
  ageS: number;
  application: string;
  /** active, idle in transaction, … */
  state: string;
}

export interface Hazards {
  /** Oldest first. */
  longTransactions: LongTransaction[];
  prepared: number;
  logicalSlots: number;
  archiveMode: string;
  archiveReady: number;
  archiveCommand: string;
  archiveLibrary: string;
  /** What this server streams from, when it is a standby. */
  primaryConninfo: string;
  primarySlotName: string;
  physicalSlots: SlotRow[];
  walLogHints: string;
  dataChecksums: string;
  syncStandbyNames: string;
  /** What pg_stat_replication calls each standby, and where it connects from. */
  replicas: { name: string | null; address: string | null }[];
}

/** Everything pre-flight looked at on one node; null where the look failed. */
export interface NodeFacts {
  name: NodeName;
  status: NodeStatus | { error: string };
  replication: ReplicationStatus | null;
  hazards: Hazards | null;
  freeBytes: number | null;
  /** Installed and installable versions, holds, the VIP tools; null where the look failed. */
  packages: PackageFacts | null;
  /**
   * The primary only: its replication connection to the standby's address (IDENTIFY_SYSTEM's
   * line, or what libpq said), as the old primary connects to the new one after the switchover
   * (probeReplicationBack).
   */
  replicationTo?: { ok: boolean; said: string } | null;
  /** What runs PostgreSQL there (init, clusters, units); null where the look failed. */
  host: HostFacts | null;
}

/** How long each of pre-flight's own commands may take. */
const LOOK_MS = 30_000;

/**
 * What pre-flight looks at on a node, in order: through the executor (status, then replication
 * if it runs), then its own read-only commands, side by side. gatherFacts sends these; the dry
 * run lists them.
 */
export function preflightLooks(i: PreflightInput, host: HostSpec) {
  const cmds = hostCommands(i.cluster, host);
  const standbyHost = i.cluster.nodes.find((n) => n.name === i.standby);
  const look = (what: string, command: HostSend["command"]): HostSend => ({
    node: host.name,
    what,
    command,
    deadlineMs: LOOK_MS,
  });
  return {
    calls: [
      call("status", host.name),
      { ...call("replication", host.name), when: "if it runs" },
    ] satisfies ExecutorCall[],
    hostFacts: look("what runs postgres (systemd, pg_lsclusters, start.conf)", hostFactsCommand()),
    hazards: look("shutdown and rejoin hazards", cmds.sql(hazardsSql(i.timeouts.pause / 1000))),
    freeBytes: look("free disk", cmds.freeBytes),
    packages: look(
      "package versions (dpkg-query, apt-cache madison), holds, ip and arping",
      packageFactsCommand(i.cluster),
    ),
    replicationTo:
      host.name === i.primary && standbyHost
        ? look(
            `replication connection to ${i.standby}'s address, as after the switchover`,
            cmds.replicationProbe(standbyHost),
          )
        : null,
  };
}

export async function gatherFacts(
  x: Executor,
  run: CommandRunner,
  i: PreflightInput,
  host: HostSpec,
): Promise<NodeFacts> {
  const looks = preflightLooks(i, host);
  const send = (l: HostSend) => run(host, l.command, l.deadlineMs);
  const st = await x.status(host.name);
  const running = st.ok && st.running;
  const rep = running ? await x.replication(host.name) : null;
  const [hz, df, apt, hf] = await Promise.all([
    running ? send(looks.hazards) : null,
    send(looks.freeBytes),
    send(looks.packages),
    send(looks.hostFacts),
  ]);
  return {
    name: host.name,
    status: st.ok ? st : { error: st.reason },
    replication: rep?.ok ? rep : null,
    hazards: hz?.code === 0 ? (JSON.parse(hz.stdout) as Hazards) : null,
    freeBytes: df.code === 0 && /^\d+$/.test(df.stdout.trim()) ? Number(df.stdout.trim()) : null,
    packages: apt.code === 0 ? parsePackageFacts(i.cluster, apt.stdout) : null,
    host: hf.code === 0 ? parseHostFacts(hf.stdout) : null,
  };
}

/**
 * On the primary, once the cluster has the link pre-flight resolved (preflightLink): the
 * replication connection the rebuilt old primary will make, with the link's keywords.
 */
export async function probeReplicationBack(
  run: CommandRunner,
  i: PreflightInput,
  host: HostSpec,
): Promise<NodeFacts["replicationTo"]> {
  const look = preflightLooks(i, host).replicationTo;
  if (!look) return null;
  const back = await run(host, look.command, look.deadlineMs);
  return {
    ok: back.code === 0,
    said: back.stdout.trim().split("\n").slice(-2).join(" / ") || `exit ${back.code}`,
  };
}

/** The checklist from what was seen: pure, so each rule is tested without a cluster. */
export function judge(i: PreflightInput, p: NodeFacts, s: NodeFacts): CheckItem[] {
  const items: CheckItem[] = [];
  const add = (status: CheckItem["status"], check: string, detail: string) =>
    items.push({ status, check, detail });
  const pst = "error" in p.status ? null : p.status;
  const sst = "error" in s.status ? null : s.status;
  for (const [n, st] of [
    [p, pst],
    [s, sst],
  ] as const) {
    if (!st) add("fail", `${n.name} answers`, (n.status as { error: string }).error);
  }
  for (const n of [p, s]) {
    const spec = i.cluster.nodes.find((h) => h.name === n.name);
    if (!spec) continue;
    if (n.host) items.push(...judgeControl(spec, n.host));
    else
      add("fail", `${n.name} control ${spec.control.mode}`, "could not look at what runs postgres");
  }
  const pr = p.replication;
  const sr = s.replication;
  add(
    pst?.running && pr && !pr.inRecovery ? "ok" : "fail",
    `${p.name} is the primary`,
    !pst?.running
      ? "postgres is not running"
      : pr
        ? pr.inRecovery
          ? "it is in recovery (a standby)"
          : `timeline ${pr.timeline}`
        : "replication status unreadable",
  );
  const streams = pr?.standbys.some((b) => b.client === s.name && b.state === "streaming");
  add(
    sst?.running && sr?.inRecovery && sr.streaming && streams ? "ok" : "fail",
    `${s.name} is a standby streaming from ${p.name}`,
    !sst?.running
      ? "postgres is not running"
      : !sr?.inRecovery
        ? "it is not in recovery (a primary?)"
        : !sr.streaming || !streams
          ? `not streaming (${p.name} lists: ${pr?.standbys.map((b) => `${b.client} ${b.state}`).join(", ") || "none"})`
          : `timeline ${sr.timeline}`,
  );
  if (pr && sr?.replayLsn != null) {
    const lag = Math.max(0, pr.lsn - sr.replayLsn);
    add(
      lag <= i.maxLagBytes ? "ok" : "fail",
      "standby lag",
      `${lag} bytes (bound ${i.maxLagBytes})`,
    );
  }
  items.push(...judgePackages(i, p, s));
  if (p.replicationTo) {
    const s0 = i.cluster.nodes.find((h) => h.name === s.name);
    add(
      p.replicationTo.ok ? "ok" : "fail",
      `${p.name} connects to ${s.name} for replication`,
      p.replicationTo.ok
        ? `as ${i.cluster.replicationUser} to ${s0?.address}:${s0?.port}, IDENTIFY_SYSTEM ${p.replicationTo.said}`
        : `${p.name}: ${p.replicationTo.said}: after the switchover it could not stream from ${s.name} (pg_hba.conf on ${s.name} must allow replication for ${i.cluster.replicationUser} from ${p.name}, with its password in ~postgres/.pgpass on ${p.name})`,
    );
  }
  add(
    pst?.vipBound && !sst?.vipBound ? "ok" : "fail",
    `VIP ${i.cluster.vip.address} on ${p.name} only`,
    `bound on: ${[pst?.vipBound ? p.name : null, sst?.vipBound ? s.name : null].filter(Boolean).join(", ") || "none"}`,
  );
  for (const n of [p, s]) {
    add(
      n.freeBytes !== null && n.freeBytes >= i.minFreeBytes ? "ok" : "fail",
      `free disk on ${n.name}`,
      n.freeBytes === null ? "df failed" : `${mib(n.freeBytes)} free (need ${mib(i.minFreeBytes)})`,
    );
  }
  const h = p.hazards;
  if (!h) {
    add("fail", "shutdown and rejoin hazards", `could not read them on ${p.name}`);
    return items;
  }
  const [oldest] = h.longTransactions;
  const longS = i.timeouts.pause / 1000;
  add(
    oldest ? "warn" : "ok",
    "long-running transactions",
    oldest
      ? `${h.longTransactions.length} open for over ${longS} s, the oldest for ${oldest.ageS} s (pid ${oldest.pid}, ${oldest.application ? `application ${oldest.application}` : "no application_name"}, ${oldest.state}): one still open when the poolers are paused holds PAUSE past its ${longS} s deadline and the plan rolls back; the fast stop rolls it back`
      : `none open for over ${longS} s`,
  );
  add(
    h.prepared === 0 ? "ok" : "fail",
    "prepared transactions",
    h.prepared === 0
      ? "none"
      : `${h.prepared}: commit or roll them back first (they hold locks across the switchover)`,
  );
  add(
    h.logicalSlots === 0 ? "ok" : "fail",
    "logical replication slots",
    h.logicalSlots === 0
      ? "none"
      : `${h.logicalSlots} on ${p.name}: PostgreSQL 15 loses them at the promotion`,
  );
  add(
    h.archiveReady <= 16 ? (h.archiveReady === 0 ? "ok" : "warn") : "fail",
    "archive backlog",
    `archive_mode ${h.archiveMode}, ${h.archiveReady} WAL file(s) waiting: a shutdown waits for them`,
  );
  items.push(judgeStandbyArchiving(p.name, h.archiveMode, s));
  items.push(...judgeLink(i, p, s));
  // The names synchronous_standby_names may give the standby: the node's, or what it connects as.
  const standbyAt = i.cluster.nodes.find((n) => n.name === s.name)?.address;
  const names = [
    s.name,
    ...h.replicas.flatMap((r) => (r.address === standbyAt && r.name ? [r.name] : [])),
  ];
  const sync = syncStandbyNeed(h.syncStandbyNames, names);
  add(
    sync.needed ? "fail" : "ok",
    "synchronous replication",
    sync.needed
      ? `${p.name}: ${sync.reason}`
      : h.syncStandbyNames.trim() === ""
        ? "asynchronous (synchronous_standby_names is empty)"
        : `synchronous_standby_names = '${h.syncStandbyNames}' does not need ${s.name}`,
  );
  const rewindable = h.dataChecksums === "on" || h.walLogHints === "on";
  add(
    rewindable ? "ok" : "warn",
    "pg_rewind possible",
    `data_checksums ${h.dataChecksums}, wal_log_hints ${h.walLogHints}${rewindable ? "" : ": a rejoin that needs a rewind falls back to a full base backup"}`,
  );
  return items;
}

/** The pair's replication link as pre-flight saw it; null where the hazards were unreadable. */
function linkFacts(i: PreflightInput, p: NodeFacts, s: NodeFacts): LinkFacts | null {
  if (!p.hazards || !s.hazards) return null;
  return {
    primary: p.name,
    standby: s.name,
    replicationUser: i.cluster.replicationUser,
    conninfo: s.hazards.primaryConninfo,
    slotName: s.hazards.primarySlotName,
    slotsOnPrimary: p.hazards.physicalSlots,
  };
}

/** How the old primary will stream from the new one (its conninfo keywords, its slot). */
export function preflightLink(i: PreflightInput, p: NodeFacts, s: NodeFacts): LinkResolution {
  const f = linkFacts(i, p, s);
  return f
    ? resolveStandbyLink(f)
    : { ok: false, check: "replication slots", reason: `could not read them on ${s.name}` };
}

function judgeLink(i: PreflightInput, p: NodeFacts, s: NodeFacts): CheckItem[] {
  const link = preflightLink(i, p, s);
  if (!link.ok) return [{ status: "fail", check: link.check, detail: link.reason }];
  return [
    { status: "ok", check: "primary_conninfo kept", detail: link.conninfo },
    { status: "ok", check: "replication slots", detail: link.slot },
    ...(link.leftBehind
      ? [{ status: "warn" as const, check: "slots lost at the promotion", detail: link.leftBehind }]
      : []),
  ];
}

/**
 * The standby archives once promoted as the primary does now: archive_mode on (or always) and
 * something to archive with; else the archive has a gap from the promotion on, or WAL piles up.
 */
function judgeStandbyArchiving(primary: NodeName, primaryMode: string, s: NodeFacts): CheckItem {
  const check = `archiving on ${s.name} once promoted`;
  const h = s.hazards;
  if (!h) return { status: "fail", check, detail: `could not read its settings on ${s.name}` };
  const archives = h.archiveMode !== "off";
  const how = h.archiveLibrary
    ? `archive_library '${h.archiveLibrary}'`
    : `archive_command '${h.archiveCommand}'`;
  const waiting = `${h.archiveReady} WAL file(s) waiting there`;
  if (primaryMode === "off" && !archives)
    return { status: "ok", check, detail: `archive_mode off on ${primary} and ${s.name}` };
  if (!archives)
    return {
      status: "fail",
      check,
      detail: `${s.name}: archive_mode off while ${primary} archives (${primaryMode}): the archive would miss every WAL file from the promotion on (set archive_mode = on there, with ${primary}'s archive_command, and restart it)`,
    };
  if (!h.archiveLibrary && h.archiveCommand.trim() === "")
    return {
      status: "fail",
      check,
      detail: `${s.name}: archive_mode ${h.archiveMode} with an empty archive_command: once promoted, WAL piles up in pg_wal as .ready files (${waiting})`,
    };
  return {
    status: h.archiveReady <= 16 ? "ok" : "warn",
    check,
    detail: `archive_mode ${h.archiveMode}, ${how}, ${waiting}`,
  };
}

/** What `targetVersion` is on this pair: the one Debian version both hosts can install. */
export function preflightTarget(i: PreflightInput, p: NodeFacts, s: NodeFacts): Resolution {
  return resolveOnPair(i.cluster, i.targetVersion, [
    { node: p.name, facts: p.packages },
    { node: s.name, facts: s.packages },
  ]);
}

/** The target resolved on both hosts, no node past it, nothing held, the VIP tools there. */
function judgePackages(i: PreflightInput, p: NodeFacts, s: NodeFacts): CheckItem[] {
  const items: CheckItem[] = [];
  const add = (status: CheckItem["status"], check: string, detail: string) =>
    items.push({ status, check, detail });
  const server = i.cluster.packages[0] as string;
  const target = preflightTarget(i, p, s);
  add(
    target.ok ? "ok" : "fail",
    `target version ${i.targetVersion}`,
    target.ok
      ? `${target.version} on ${p.name} and ${s.name}, for the upgrade set of each (${[p, s]
          .map((n) => `${n.name}: ${n.packages?.set.join(", ") ?? "?"}`)
          .join("; ")})`
      : target.reason,
  );
  const installed = [p, s].map((n) => ({ n, v: n.packages?.installed[server] ?? null }));
  // Any package of the set past the target: apt-get would have to downgrade it, and refuses.
  const newer = target.ok
    ? [p, s].flatMap((n) =>
        Object.entries(n.packages?.installed ?? {})
          .filter(([, v]) => v !== null && compareDebianVersions(v, target.version) > 0)
          .map(([pkg, v]) => `; ${n.name}: ${pkg} ${v} is newer than the target`),
      )
    : [];
  add(
    newer.length > 0 ? "fail" : "ok",
    "versions",
    `${installed.map((x) => `${x.n.name} ${x.v ?? "?"}`).join(", ")} → ${target.ok ? target.version : i.targetVersion}${newer.join("")}`,
  );
  for (const n of [p, s]) {
    if (!n.packages) {
      add("fail", `packages on ${n.name}`, `${n.name}: could not read dpkg and apt there`);
      continue;
    }
    const held = heldProblem(n.name, n.packages);
    add(
      held === null ? "ok" : i.cluster.unhold ? "warn" : "fail",
      `held packages on ${n.name}`,
      held === null
        ? "none of the upgrade's"
        : i.cluster.unhold
          ? `${n.name}: ${heldOf(n.packages).join(", ")} held: --unhold unholds them for the upgrade and holds them again after it`
          : held,
    );
    const tools = missingToolsProblem(n.name, n.packages);
    add(tools === null ? "ok" : "fail", `ip and arping on ${n.name}`, tools ?? "both found");
  }
  return items;
}

function mib(n: number): string {
  return `${Math.round(n / 1024 ** 2)} MiB`;
}

export function renderChecklist(items: readonly CheckItem[]): string {
  const mark = { ok: "[ok]  ", warn: "[warn]", fail: "[FAIL]" };
  return `${items.map((c) => `  ${mark[c.status]} ${c.check}: ${c.detail}`).join("\n")}\n`;
}
