import { isBareRelease } from "../core/debian-version.ts";
import type {
  ClusterState,
  ControlData,
  Lsn,
  NodeName,
  Stop,
  TimelineFork,
} from "../core/executor.ts";
import { parseLsn } from "../core/lsn.ts";
import type { StandbyLink } from "../core/standby-link.ts";
import { formatConninfo } from "./conninfo.ts";
import { type ControlledHost, configFileOf, type HostControl, lifecycle } from "./control.ts";
import { type HostCommand, pollUntil, shellQuote } from "./shell.ts";
import { SELECT_WRITES_SQL } from "./writes.ts";

export {
  type ControlMode,
  type DebianCluster,
  fenceMarker,
  type HostControl,
} from "./control.ts";
export { type HostCommand, shellQuote } from "./shell.ts";

/**
 * The exact shell lines each operation runs on a host: one module for the Docker and the SSH
 * executors, so that the lab rehearses precisely what production runs. Each command is a
 * script for `sh -c`, run as `user`.
 */
export interface HostSpec extends ControlledHost {
  name: NodeName;
  /** Where the other node and the clients reach this host's Postgres. */
  address: string;
  pgBin: string;
  dataDir: string;
  port: number;
  socketDir: string;
  logFile: string;
  /** The OS user Postgres runs as. */
  osUser: string;
  /** How the host starts, stops and fences the server (control.ts). */
  control: HostControl;
}

export interface ClusterSpec {
  nodes: HostSpec[];
  vip: { address: string; prefix: number; device: string };
  superuser: string;
  replicationUser: string;
  database: string;
  /**
   * The Debian packages a minor upgrade moves, the server package first; on each host the
   * upgrade set adds every installed package built from the server's source (upgradeSet).
   */
  packages: string[];
  /** --unhold: the upgrade unholds those of its set on hold, and holds them again after. */
  unhold?: boolean;
  /** How the old primary, rebuilt as a standby, connects (pre-flight reads it from the pair). */
  standbyLink?: StandbyLink;
}

/** "15.20-0+deb12u1" (dpkg) or "15.20 (Debian …)" (server_version) → "15.20". */
export function shortVersion(debianOrServer: string): string {
  return /^(\d+\.\d+)/.exec(debianOrServer.trim())?.[1] ?? debianOrServer.trim();
}

/**
 * The version apt-get pins: a full Debian version as it is; a bare release ("15.20") as Debian
 * bookworm builds it ("15.20-0+deb12u1"), which the lab's images and the listings use. A run
 * against hosts pins what pre-flight resolved there (package-versions.ts).
 */
export function debianVersion(version: string): string {
  return isBareRelease(version) ? `${version}-0+deb12u1` : version;
}

/**
 * One row of JSON from the local server: what each executor parses for replication status.
 * Timeline: a primary's current one is in its WAL file name (the checkpoint's may still be the
 * old one just after a promotion); a standby's is the one it receives on.
 */
export const REPLICATION_SQL = `SELECT json_build_object(
  'inRecovery', pg_is_in_recovery(),
  'timeline', CASE WHEN pg_is_in_recovery()
     THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
     ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'lsn', CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
  'receiveLsn', pg_last_wal_receive_lsn(),
  'replayLsn', pg_last_wal_replay_lsn(),
  'streaming', COALESCE((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false),
  'receiverTimeline', (SELECT received_tli FROM pg_stat_wal_receiver),
  'standbys', COALESCE((SELECT json_agg(json_build_object('client', COALESCE(application_name, client_addr::text),
     'address', host(client_addr), 'state', state, 'sentLsn', sent_lsn, 'replayLsn', replay_lsn)) FROM pg_stat_replication), '[]'::json))`;

/**
 * Gratuitous ARP so neighbours (clients, routers) drop the VIP's old MAC. arping sends its first
 * packet at once and the second a second later; the command returns once the first is out
 * (arping still running after 50 ms), or with arping's failure.
 */
function announceVip(c: ClusterSpec): string {
  return `{ arping -q -U -c 2 -I ${shellQuote(c.vip.device)} ${shellQuote(c.vip.address)} >/dev/null 2>&1 & a=$!; sleep 0.05; kill -0 $a 2>/dev/null || wait $a; }`;
}

/**
 * ONE_TRIP: two commands a call always runs one after the other go as one script, the second
 * only once the first succeeded, their outputs apart at OUTPUT_BREAK: each round trip to a host
 * costs ~10-20 ms, and the VIP is off the old primary until the new one holds it.
 */
export const OUTPUT_BREAK = "--- pg-switchover: then ---";
function bothOutputs(first: string, then: string): string {
  return `{ ${first}; } && echo ${shellQuote(OUTPUT_BREAK)} && { ${then}; }`;
}

/** A bothOutputs command's two outputs. */
export function splitOutputs(stdout: string): [string, string] {
  const at = stdout.indexOf(`${OUTPUT_BREAK}\n`);
  if (at < 0) throw new Error(`no "${OUTPUT_BREAK}" in: ${stdout.trim().slice(0, 200)}`);
  return [stdout.slice(0, at), stdout.slice(at + OUTPUT_BREAK.length + 1)];
}

/** Where a host keeps the packages --unhold lifted, until they are held again. */
const UNHELD_DIR = "/var/lib/pg-switchover";
/** How --unhold's upgrade prints what it unheld and held again, for the journal. */
export const HOLD_MARK = "pg-switchover:";
export const UNHELD_FILE = `${UNHELD_DIR}/unheld-packages`;

/**
 * The upgrade set as a host has it, one package a line: `packages`, and every package installed
 * (or held, or left half configured by an interrupted upgrade) that is built from the same source
 * as the server package: on Debian the client, libpq5, libpq-dev, the PL packages. They come from
 * one build, depend on each other's exact version (libpq-dev on libpq5), and a minor release's
 * security fixes are often in libpq: all of them move to the target together. A libpq5 built from
 * another source (PGDG's comes from the newest major) is not the cluster's, and stays. Names are
 * dpkg's without the architecture: a second architecture's copy (libpq5:i386) is not handled.
 */
export function upgradeSet(c: ClusterSpec): string {
  const server = shellQuote(c.packages[0] ?? "");
  return `{ src=$(dpkg-query -W -f='\${source:Package}' ${server} 2>/dev/null); { printf '%s\\n' ${c.packages.map(shellQuote).join(" ")}; test -z "$src" || dpkg-query -W -f='\${db:Status-Abbrev} \${Package} \${source:Package}\\n' | awk -v s="$src" '$1 ~ /^[ih][^nc]/ && $3 == s {print $2}'; } | sort -u; }`;
}

/**
 * `install` with --unhold around it: the held packages of the upgrade set (in "$set") are
 * written down on the host, unheld, installed, and held again whether the install worked or
 * not. The list outlives the command, so an upgrade cut short (the SSH connection lost, the host
 * rebooted) and tried again still holds them again afterwards.
 */
function unholdingAround(c: ClusterSpec, install: string): string {
  if (!c.unhold) return install;
  const say = (what: string) => `echo "${HOLD_MARK} ${what} $(echo $held)"`;
  return [
    `mkdir -p ${UNHELD_DIR} && { apt-mark showhold | grep -x -F -e "$set" >> ${UNHELD_FILE} || true; } && held=$(sort -u ${UNHELD_FILE}) && { test -z "$held" || { apt-mark unhold $held >/dev/null && ${say("unheld")}; }; } || exit 1`,
    `{ ${install}; }; rc=$?`,
    `{ test -z "$held" || { apt-mark hold $held >/dev/null && ${say("held again")}; }; } && rm -f ${UNHELD_FILE}`,
    "exit $rc",
  ].join("; ");
}

/** `name = 'value'` for postgresql.auto.conf: a quote doubled, a backslash too (GUC_scanstr). */
function settingLine(name: string, value: string): string {
  return `${name} = '${value.replace(/[\\']/g, (ch) => ch + ch)}'`;
}

/** REPLICATION_SQL's row: LSNs as PostgreSQL prints them (`X/Y`), null where they do not apply. */
export interface ReplicationRow {
  inRecovery: boolean;
  timeline: number;
  lsn: string | null;
  receiveLsn: string | null;
  replayLsn: string | null;
  streaming: boolean;
  receiverTimeline: number | null;
  standbys: {
    client: string;
    /** client_addr without its mask; null over a Unix socket. */
    address: string | null;
    state: string;
    sentLsn: string | null;
    replayLsn: string | null;
  }[];
}

export function hostCommands(c: ClusterSpec, h: HostSpec) {
  const q = shellQuote;
  const bin = (tool: string) => q(`${h.pgBin}/${tool}`);
  /** The data directory as a word; a suffix (`${data}.new`, `${data}/pg_wal`) stays in it. */
  const data = q(h.dataDir);
  /** For tools whose output is parsed: untranslated, whatever the host's locale. */
  const untranslated = (tool: string) => `LC_ALL=C LANGUAGE= ${bin(tool)}`;
  const pg = (script: string): HostCommand => ({ user: "postgres", script });
  const root = (script: string): HostCommand => ({ user: "root", script });
  const psql = (sql: string, database = "postgres") =>
    `${bin("psql")} -X -q -At -v ON_ERROR_STOP=1 -h ${q(h.socketDir)} -p ${h.port} -U ${q(c.superuser)} -d ${q(database)} -c ${q(sql)}`;
  const vip = q(`${c.vip.address}/${c.vip.prefix}`);
  const dev = q(c.vip.device);
  const bound = q(` ${c.vip.address}/`);
  /** The rebuild's keywords for the new upstream, then the pair's own (sslmode, passfile, …). */
  const conninfo = (up: HostSpec) =>
    formatConninfo({
      host: up.address,
      port: String(up.port),
      user: c.replicationUser,
      application_name: h.name,
      ...c.standbyLink?.keywords,
    });
  const autoConf = `${data}/postgresql.auto.conf`;
  const life = lifecycle(h);
  const configFile = configFileOf(h);
  const installedVersion = `dpkg-query -W -f='\${Version}' ${q(c.packages[0] ?? "")}`;
  const vipShow = `ip -o -4 addr show dev ${dev}`;
  const controlData = `${untranslated("pg_controldata")} -D ${data}`;
  /** The record at `lsn`, to read where it ends; `lsn` and `timeline` are shell words. */
  const walRecord = (lsn: string, timeline: string) =>
    `${untranslated("pg_waldump")} -p ${data}/pg_wal -t ${timeline} -s ${lsn} -n 1`;
  const latestTimelineHistory = `f=$(ls -1 ${data}/pg_wal/*.history 2>/dev/null | sort | tail -n 1) && test -n "$f" && basename "$f" .history && cat "$f"`;
  return {
    /** What a listing and a failure call the stop and the start, per control mode. */
    stopWhat: life.stopWhat,
    startWhat: life.startWhat,
    fenceWhat: life.fenceWhat,
    /** Exit 0: running; 3: not running; 4: no data directory (pg_ctl status). */
    status: life.status,
    installedVersion: root(installedVersion),
    vipShow: root(vipShow),
    /** installedVersion, then vipShow: one round trip, as status needs both (ONE_TRIP). */
    versionAndVip: root(bothOutputs(installedVersion, vipShow)),
    /** Already stopped is done. Fenced: first, so that it stays down should the host restart. */
    stop: (stop: Stop, timeoutS: number) => life.stop(stop, timeoutS),
    /** Already running is done; on failure, the end of the server log says why. Unfences. */
    start: (timeoutS: number) => life.start(timeoutS),
    /** The fence alone (start.conf manual, the marker): the server, if running, stays up. */
    fence: life.fence,
    /**
     * The host's upgrade set (upgradeSet), each at `version`; those apt had marked as installed
     * automatically (libpq5, pulled in by the client) are marked so again, as naming them to
     * apt-get install marks them manual. First finishes what an interrupted
     * dpkg left half configured (a reboot mid-upgrade does that, and apt-get then refuses to
     * install anything), keeping the host's own config files.
     */
    upgrade: (version: string) =>
      root(
        `set=$(${upgradeSet(c)}) && test -n "$set" && auto=$(apt-mark showauto $set) || exit 1; ${unholdingAround(
          c,
          `DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold $(printf '%s\\n' "$set" | awk -v v=${q(`=${debianVersion(version)}`)} '{print $0 v}') && { test -z "$auto" || apt-mark auto $auto >/dev/null; }`,
        )}`,
      ),
    checkpoint: pg(psql("CHECKPOINT")),
    /** One statement on the local server as the superuser; rows printed unaligned, one a line. */
    sql: (statement: string) => pg(psql(statement)),
    replication: pg(psql(REPLICATION_SQL.replace(/\s+/g, " "))),
    /** The ids of the rows clients wrote (see writes.ts), as one JSON array. */
    writtenIds: pg(psql(SELECT_WRITES_SQL, c.database)),
    controlData: pg(controlData),
    /**
     * Whether a postmaster runs (pg_ctl status's exit, first line), pg_controldata, then
     * pg_waldump at the latest checkpoint and timeline it printed, to read where that record
     * ends: one round trip (ONE_TRIP), on the outage when the old primary's stop is confirmed.
     */
    controlDataAndRecord: pg(
      `${bin("pg_ctl")} status -D ${data} >/dev/null 2>&1; s=$?; c=$(${controlData}) && ${bothOutputs(
        `printf '%s %s\\n%s\\n' ${q(PG_CTL_STATUS)} "$s" "$c"`,
        walRecord(
          `"$(printf '%s\\n' "$c" | sed -n 's/^Latest checkpoint location: *//p')"`,
          `"$(printf '%s\\n' "$c" | sed -n "s/^Latest checkpoint's TimeLineID: *//p")"`,
        ),
      )}`,
    ),
    /** The newest timeline history file: its timeline (the file name, hex), then its lines. */
    latestTimelineHistory: pg(latestTimelineHistory),
    /** Then the new timeline's history file (ONE_TRIP). */
    promote: (timeoutS: number) =>
      pg(
        bothOutputs(
          `${bin("pg_ctl")} promote -D ${data} -W && ${pollUntil(
            `${controlData} | grep -q '^Database cluster state: *in production'`,
            timeoutS,
            "server did not promote in time",
          )}`,
          latestTimelineHistory,
        ),
      ),
    /**
     * Not bound is done. Verified in the same round trip (ONE_TRIP): the device is read again
     * and the command fails while it still shows the VIP; the outage has begun, so a second
     * call to read it back would lengthen it.
     */
    vipDown: root(
      `if ip -o -4 addr show dev ${dev} | grep -q ${bound}; then ip addr del ${vip} dev ${dev}; fi; if ip -o -4 addr show dev ${dev} | grep -q ${bound}; then echo ${q(`${c.vip.address} is still bound on ${c.vip.device}`)} >&2; exit 1; fi`,
    ),
    vipUp: (announce: boolean) =>
      root(
        `{ ip -o -4 addr show dev ${dev} | grep -q ${bound} || ip addr add ${vip} dev ${dev}; }` +
          (announce ? ` && ${announceVip(c)}` : ""),
      ),
    /**
     * With a slot: made on the upstream first, over the replication connection the standby
     * will stream on (the replication user may), WAL reserved from then on; one already there
     * (SQLSTATE 42710, a run resumed) is the one. The slot it replaces goes from this stopped
     * server's pg_replslot (what a base backup leaves out): a standby keeps WAL for its slots too.
     */
    configureStandby: (upstream: HostSpec) => {
      const slot = c.standbyLink?.slot?.name ?? null;
      const replaced = c.standbyLink?.slot?.replaces ?? null;
      return pg(
        [
          ...(slot
            ? [
                `{ out=$(PGCONNECT_TIMEOUT=10 ${bin("psql")} -X -w -At -v VERBOSITY=sqlstate -c ${q(
                  `CREATE_REPLICATION_SLOT ${slot} PHYSICAL RESERVE_WAL`,
                )} ${q(`${conninfo(upstream)} dbname=replication replication=true`)} 2>&1) || echo "$out" | grep -q 42710 || { echo "slot ${slot} on ${upstream.name}: $out" >&2; exit 1; }; }`,
              ]
            : []),
          ...(replaced ? [`rm -Rf ${data}/pg_replslot/${q(replaced)}`] : []),
          `sed -i '/^primary_conninfo/d;/^primary_slot_name/d' ${autoConf}`,
          `printf "%s\\n" ${q(settingLine("primary_conninfo", conninfo(upstream)))} >> ${autoConf}`,
          ...(slot
            ? [`printf "%s\\n" ${q(settingLine("primary_slot_name", slot))} >> ${autoConf}`]
            : []),
          `touch ${data}/standby.signal`,
        ].join(" && "),
      );
    },
    rewind: (source: HostSpec) =>
      pg(
        `${bin("pg_rewind")} -D ${data}${configFile ? ` ${q(`--config-file=${configFile}`)}` : ""} --source-server=${shellQuote(
          `host=${source.address} port=${source.port} user=${c.superuser} dbname=postgres`,
        )} -P 2>&1`,
      ),
    /**
     * Into a new directory, verified, then swapped in; the replaced one is kept aside. Refuses a
     * data directory a server runs on (as the simulator does): the copy would be swapped in
     * under it. The plan stops and fences the node first (stopOldPrimaryForCopy).
     */
    baseBackup: (source: HostSpec) =>
      pg(
        [
          `{ ! ${bin("pg_ctl")} status -D ${data} >/dev/null 2>&1 || { echo ${q(`a server runs on ${h.dataDir}: it must be stopped before a copy replaces its data`)} >&2; exit 1; }; }`,
          `rm -Rf ${data}.new`,
          `${bin("pg_basebackup")} -D ${data}.new -h ${q(source.address)} -p ${source.port} -U ${q(c.replicationUser)} -X stream -R -c fast`,
          `${bin("pg_verifybackup")} -q -n ${data}.new`,
          `du -sb ${data}.new | cut -f1`,
          `sed -i '/^primary_conninfo/d' ${data}.new/postgresql.auto.conf`,
          `printf "%s\\n" ${q(settingLine("primary_conninfo", conninfo(source)))} >> ${data}.new/postgresql.auto.conf`,
          `{ test ! -e ${data} || { rm -Rf ${data}.old && mv ${data} ${data}.old; }; }`,
          `mv ${data}.new ${data}`,
        ].join(" && "),
      ),
    /**
     * Pre-flight, on the primary: a replication connection to `up` as the rejoin makes one after
     * the switchover (its pg_hba.conf, this host's password file, the link's keywords), never
     * prompting.
     */
    replicationProbe: (up: HostSpec) =>
      pg(
        `PGCONNECT_TIMEOUT=10 ${bin("psql")} -X -w -At -c IDENTIFY_SYSTEM ${shellQuote(
          `${conninfo(up)} dbname=replication replication=true`,
        )} 2>&1`,
      ),
    /** Pre-flight: bytes free on the data directory's filesystem. */
    freeBytes: pg(`df -P -B1 ${data} | awk 'NR==2 {print $4}'`),
    removeDataDir: pg(`rm -Rf ${data}`),
    removeSetAside: pg(`rm -Rf ${data}.old`),
  };
}

export type HostCommands = ReturnType<typeof hostCommands>;

/** vipShow's output: whether the VIP is bound on the device (what vipUp and vipDown test too). */
export function vipBound(c: ClusterSpec, vipShowOutput: string): boolean {
  return vipShowOutput.includes(` ${c.vip.address}/`);
}

/**
 * Whether a postmaster runs, by pg_ctl status's exit: 0 running, 3 not running, 4 no data
 * directory (not running either); anything else (1: a pid file it cannot read) says neither.
 */
export function pgCtlRunning(code: number | null): boolean | null {
  if (code === 0) return true;
  return code === 3 || code === 4 ? false : null;
}

/** How controlDataAndRecord's first line begins: pg_ctl status's exit code follows. */
const PG_CTL_STATUS = "pg_ctl status exit:";

/** controlDataAndRecord's first part: whether a postmaster ran, then pg_control. */
export function parseStoppedControl(text: string): Omit<ControlData, "checkpointEndLsn"> {
  const [first = "", ...rest] = text.split("\n");
  if (!first.startsWith(`${PG_CTL_STATUS} `))
    throw new Error(`no "${PG_CTL_STATUS}" line: ${first.slice(0, 80)}`);
  const code = first.slice(PG_CTL_STATUS.length).trim();
  const running = /^\d+$/.test(code) ? pgCtlRunning(Number(code)) : null;
  if (running === null)
    throw new Error(`pg_ctl status exited ${code}: whether a postmaster runs is unknown`);
  return { running, ...parseControlData(rest.join("\n")) };
}

/** pg_controldata's "key: value" lines, as the port's ControlData. */
export function parseControlData(text: string): Omit<ControlData, "checkpointEndLsn" | "running"> {
  const f = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) f.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  const need = (key: string) => {
    const v = f.get(key);
    if (v === undefined) throw new Error(`pg_controldata printed no "${key}"`);
    return v;
  };
  return {
    state: need("Database cluster state") as ClusterState,
    timeline: Number(need("Latest checkpoint's TimeLineID")),
    checkpointLsn: parseLsn(need("Latest checkpoint location")),
  };
}

/** WAL page and segment sizes of a default build and initdb, as the Debian packages have them. */
const WAL_PAGE = 8192;
const WAL_SEGMENT = 16 * 1024 * 1024;
/** Page headers a record spanning pages skips: short, and long at the start of a segment. */
const SHORT_PAGE_HEADER = 24;
const LONG_PAGE_HEADER = 40;

/**
 * pg_waldump's line for one record gives its start and total length. The record ends that many
 * bytes on, counting only page contents (a record crossing a page boundary continues past the
 * next page's header), rounded up to 8 bytes (MAXALIGN): where a standby's replay position
 * stands once it has the record.
 */
export function parseWalRecordEnd(text: string): Lsn {
  const m = /len \(rec\/tot\):\s*\d+\/\s*(\d+),.*?lsn: ([0-9A-F]+\/[0-9A-F]+)/.exec(text);
  if (!m) throw new Error(`pg_waldump printed no record: ${text.trim().slice(0, 200)}`);
  let at = parseLsn(m[2] as string);
  let left = Number(m[1]);
  for (;;) {
    const room = WAL_PAGE - (at % WAL_PAGE);
    if (left <= room) break;
    left -= room;
    at += room;
    at += at % WAL_SEGMENT === 0 ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER;
  }
  return Math.ceil((at + left) / 8) * 8;
}

/**
 * latestTimelineHistory's output: the timeline (hex, the file's name), then the history lines;
 * the last line is the fork that started that timeline.
 */
export function parseTimelineHistory(text: string): TimelineFork {
  const [name, ...rest] = text.trim().split("\n");
  const timeline = Number.parseInt(name ?? "", 16);
  const last = rest
    .filter((l) => /^\d+\s/.test(l.trim()))
    .at(-1)
    ?.trim()
    .split(/\s+/);
  if (!Number.isFinite(timeline) || !last?.[1]) {
    throw new Error(`no timeline fork in: ${text.trim().slice(0, 200)}`);
  }
  return { timeline, switchpoint: parseLsn(last[1]) };
}
