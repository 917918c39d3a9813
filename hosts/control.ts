import type { Stop } from "../core/executor.ts";
import { type HostCommand, pollUntil, shellQuote } from "./shell.ts";

/**
 * How a host starts, stops and fences its PostgreSQL, by control mode:
 *
 *   systemd        a postgresql-common cluster run by its unit `postgresql@<version>-<name>`
 *                  (stock Debian/Ubuntu): `systemctl start|stop`, as root
 *   pg_ctlcluster  a postgresql-common cluster on a host without systemd: `pg_ctlcluster`
 *   pg_ctl         a hand-built installation: `pg_ctl` on the data directory (today's lab host)
 *
 * Every stop and start is idempotent (stopping a stopped server, starting a running one). The
 * fence is what the host itself honours: on postgresql-common clusters `start.conf` (package
 * scripts start, and boot starts, only `auto` clusters), elsewhere a marker beside the data
 * directory that whatever starts the server at boot must check.
 */
export interface DebianCluster {
  /** The major version, "15". */
  version: string;
  /** The cluster's name, "main". */
  name: string;
}

export type HostControl =
  | { mode: "systemd" | "pg_ctlcluster"; cluster: DebianCluster }
  /** `configFile`: a postgresql.conf outside the data directory, passed to the server with -o. */
  | { mode: "pg_ctl"; configFile: string | null };

export type ControlMode = HostControl["mode"];
export const CONTROL_MODES: readonly ControlMode[] = ["systemd", "pg_ctlcluster", "pg_ctl"];

/** What the lifecycle commands need of a host (a HostSpec has it all). */
export interface ControlledHost {
  pgBin: string;
  dataDir: string;
  logFile: string;
  control: HostControl;
}

/** postgresql-common's layout: /etc/postgresql/15/main. */
export const clusterConfigDir = (c: DebianCluster) => `/etc/postgresql/${c.version}/${c.name}`;
export const clusterUnit = (c: DebianCluster) => `postgresql@${c.version}-${c.name}`;
export const startConfFile = (c: DebianCluster) => `${clusterConfigDir(c)}/start.conf`;

/** The postgresql.conf the server reads, when it is not the data directory's own. */
export function configFileOf(h: ControlledHost): string | null {
  return h.control.mode === "pg_ctl"
    ? h.control.configFile
    : `${clusterConfigDir(h.control.cluster)}/postgresql.conf`;
}

/**
 * On a pg_ctl host, while this file exists the host must not start the server by itself (the
 * lab's pg_ctl entrypoint checks it; a unit that starts Postgres at boot needs
 * `ConditionPathExists=!<data dir>.fenced`).
 */
export function fenceMarker(h: Pick<ControlledHost, "dataDir">): string {
  return `${h.dataDir}.fenced`;
}

/** What keeps a stopped server down on this host, across package scripts and reboots. */
export type Fence = { kind: "start.conf"; file: string } | { kind: "marker"; file: string };

export function fenceOf(h: Pick<ControlledHost, "dataDir" | "control">): Fence {
  return h.control.mode === "pg_ctl"
    ? { kind: "marker", file: fenceMarker(h) }
    : { kind: "start.conf", file: startConfFile(h.control.cluster) };
}

/**
 * start.conf's word, read as postgresql-common's systemd generator reads it. `file` is a shell
 * word: a path quoted by shellQuote, or an expansion (`"$f"`).
 */
export function readStartConf(file: string): string {
  return `sed 's/#.*$//; /^[[:space:]]*$/d; s/^[[:space:]]*//; s/[[:space:]]*$//' ${file}`;
}

/**
 * Sets start.conf's word in place (sed -i keeps its owner and renames atomically: the generator
 * never reads half a file), then reads it back as the generator does. The word goes last (the
 * append is queued before the old word's line is deleted: that line may be the last one).
 */
export function setStartConf(file: string, word: "auto" | "manual"): string {
  // `file` is a shell word, as for readStartConf.
  return `{ sed -i -E -e '$a ${word}' -e '/^[[:space:]]*(auto|manual|disabled)[[:space:]]*(#.*)?$/d' ${file} && test "$(${readStartConf(file)})" = ${word}; } || { echo ${shellQuote(`${file} does not read ${word}`)} >&2; exit 1; }`;
}

/** Fails when systemd would start `unit` by itself at boot: `states` are is-enabled's answers. */
function refuseEnabled(unit: string, states: string, why: string): string {
  return `case "$(systemctl is-enabled ${unit} 2>/dev/null)" in ${states}) echo ${shellQuote(`${unit} is ${why}`)} >&2; exit 1;; esac`;
}

/** The commands that start, stop and fence the server, and what a listing calls them. */
export interface Lifecycle {
  /** Exit 0: running; 3: not running; 4: no data directory (pg_ctl status). */
  status: HostCommand;
  stop(stop: Stop, timeoutS: number): HostCommand;
  /** Clears the fence, then starts; on failure the end of the server log says why. */
  start(timeoutS: number): HostCommand;
  /** Sets the fence, read back; a running server stays up (`stop` with `fence` runs this first). */
  fence: HostCommand;
  stopWhat(stop: Stop): string;
  startWhat: string;
  fenceWhat: string;
}

export function lifecycle(h: ControlledHost): Lifecycle {
  const pgCtl = shellQuote(`${h.pgBin}/pg_ctl`);
  const data = shellQuote(h.dataDir);
  const pg = (script: string): HostCommand => ({ user: "postgres", script });
  // Read as pg_ctlcluster status does (it execs exactly this), without its Perl's 40 ms: status
  // is sampled every 200 ms on both hosts while a run goes on.
  const status = pg(`${pgCtl} status -D ${data}`);
  const running = `${pgCtl} status -D ${data} >/dev/null`;
  const stopper = h.control.mode === "systemd" ? clusterUnit(h.control.cluster) : h.control.mode;
  const pidGone = (timeoutS: number) =>
    pollUntil(`test ! -e ${data}/postmaster.pid`, timeoutS, "server does not shut down", stopper);
  const logTail = `{ tail -n 20 ${shellQuote(h.logFile)} >&2; exit 1; }`;
  const c = h.control;
  if (c.mode === "pg_ctl") {
    const marker = shellQuote(fenceMarker(h));
    // pg_ctl puts -o's text into a shell line of its own: the path is quoted for that one too.
    const config = c.configFile
      ? ` -o ${shellQuote(`-c config_file=${shellQuote(c.configFile)}`)}`
      : "";
    const fence = `touch ${marker}`;
    return {
      status,
      stop: ({ mode, fence: fenced }, timeoutS) =>
        pg(
          `${fenced ? `${fence} && ` : ""}if ${running}; then ${pgCtl} stop -D ${data} -m ${mode} -W && ${pidGone(timeoutS)}; fi`,
        ),
      start: (timeoutS) =>
        pg(
          `rm -f ${marker} && { ${running} || ${pgCtl} start -D ${data}${config} -l ${shellQuote(h.logFile)} -w -t ${timeoutS} || ${logTail}; }`,
        ),
      fence: pg(fence),
      stopWhat: ({ mode }) => `pg_ctl stop -m ${mode}`,
      startWhat: "pg_ctl start",
      fenceWhat: `touch ${marker}`,
    };
  }
  const cluster = `${shellQuote(c.cluster.version)} ${shellQuote(c.cluster.name)}`;
  const startConf = shellQuote(startConfFile(c.cluster));
  const manual = setStartConf(startConf, "manual");
  if (c.mode === "pg_ctlcluster") {
    return {
      status,
      stop: ({ mode, fence }, timeoutS) =>
        pg(
          `${fence ? `${manual} && ` : ""}if ${running}; then pg_ctlcluster ${cluster} stop -m ${mode} && ${pidGone(timeoutS)}; fi`,
        ),
      // pg_ctlcluster start waits for the server to accept connections and prints the log itself.
      start: () =>
        pg(
          `${setStartConf(startConf, "auto")} && { ${running} || pg_ctlcluster ${cluster} start; }`,
        ),
      fence: pg(manual),
      stopWhat: ({ mode }) => `pg_ctlcluster stop -m ${mode}`,
      startWhat: "pg_ctlcluster start",
      fenceWhat: "start.conf manual",
    };
  }
  const unit = shellQuote(clusterUnit(c.cluster));
  const root = (script: string): HostCommand => ({ user: "root", script });
  /**
   * The fence: start.conf manual, read back; a unit enabled by hand (not by postgresql-common's
   * generator) starts at boot whatever start.conf says, so it is refused. Then systemd reloads,
   * so that `systemctl start postgresql` no longer pulls the cluster in either (until a reload it
   * still would), and the unit must no longer be wanted at boot. The reload takes 100–200 ms:
   * the verified plan fences the old primary in a step of its own, before the outage begins.
   */
  const fence = [
    manual,
    refuseEnabled(
      unit,
      "enabled",
      "enabled by hand: a boot starts it whatever start.conf says (systemctl disable it: postgresql.service starts the auto clusters)",
    ),
    "systemctl daemon-reload",
    refuseEnabled(unit, "enabled*", "still wanted at boot after start.conf manual and a reload"),
  ].join(" && ");
  const stopNow = (mode: Stop["mode"], timeoutS: number) =>
    mode === "fast"
      ? // On the outage. `systemctl stop` would run the unit's ExecStop, pg_ctlcluster -m fast (a
        // Perl start-up, 40–300 ms on a busy host, before its pg_ctl sends anything), whose
        // pg_ctl -w then polls every 100 ms. So the fast shutdown's SIGINT goes to the postmaster
        // itself, and the exit is polled for every 10 ms: to the pid its pid file names when
        // that process is in the unit's cgroup (the unit's main pid; a stale pid file's number
        // reused by another process is not), else through `systemctl kill` (a D-Bus round trip
        // to systemd, 10–20 ms more). The unit then runs its ExecStop on a stopped cluster,
        // which exits 2: the unit ends `failed` (no Restart=), and the plan's next
        // `systemctl start` (as a standby, or the rollback's) starts it as usual.
        // (pg_ctl status refuses root: the postmaster's pid file says whether there is one.)
        `if test -e ${data}/postmaster.pid; then p=$(head -n 1 ${data}/postmaster.pid); if grep -q ${shellQuote(`/${clusterUnit(c.cluster)}.service$`)} "/proc/$p/cgroup" 2>/dev/null; then kill -INT "$p" 2>/dev/null || ! test -d "/proc/$p"; else systemctl kill --kill-whom=main --signal=SIGINT ${unit}; fi; fi && ${pidGone(timeoutS)}`
      : // As root, pg_ctlcluster stop hands an active unit to `systemctl stop` (a fast stop,
        // whatever -m says): an immediate stop must skip that, and then clear the failed unit.
        `if pg_ctlcluster ${cluster} status >/dev/null; then pg_ctlcluster --skip-systemctl-redirect ${cluster} stop -m immediate && ${pidGone(timeoutS)}; fi && { systemctl reset-failed ${unit} 2>/dev/null || true; }`;
  return {
    status,
    stop: ({ mode, fence: fenced }, timeoutS) =>
      root(`${fenced ? `${fence} && ` : ""}${stopNow(mode, timeoutS)}`),
    // The reload makes the unit wanted by postgresql.service again (start.conf auto). The unit's
    // ExecStart waits until the server accepts connections.
    start: () =>
      root(
        `${setStartConf(startConf, "auto")} && systemctl daemon-reload && { systemctl start ${unit} || ${logTail}; }`,
      ),
    fence: root(fence),
    stopWhat: ({ mode }) =>
      mode === "fast" ? `systemctl stop ${unit}` : `pg_ctlcluster stop -m immediate`,
    startWhat: `systemctl start ${unit}`,
    fenceWhat: "start.conf manual and a daemon-reload",
  };
}
