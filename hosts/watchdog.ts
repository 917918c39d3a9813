import type { Pooler } from "../core/executor.ts";
import type { HostCommand, HostSpec } from "./commands.ts";
import { consoleStatements } from "./pooler-admin.ts";
import { ALIVE, commandPidFiles, shellQuote as q } from "./shell.ts";

/**
 * The run's watchdog on the old primary's host, armed before the poolers are paused and the VIP
 * goes down: a detached process (its own session, so the command's deadline and a closed SSH
 * channel leave it alone) that sleeps the watchdog's deadline, then takes the run back unless
 * the run decided first. The decision is one symlink, `<run>.decision`, created once (`ln -s`
 * fails if it exists): `promote` by the run's claim, `watchdog` by the watchdog, `ended` by the
 * run's end where it started. So the run promotes or the watchdog takes it back, never both,
 * however slow (paused, partitioned) the operator's process is; and from the watchdog's
 * decision on, every command of the run on this host refuses to run (REVOKED_EXIT).
 *
 * Kept under /var/lib, not /run: a decision must outlive a reboot, or a paused operator's run
 * could claim the promotion after the host rebooted and forgot that the watchdog took it back.
 * What it does not survive: a reboot ends the sleeping process (the host then boots fenced, the
 * old primary down: the outage lasts until someone resumes the run); a host whose logind kills
 * a session's processes when it ends (KillUserProcesses=yes) ends it with the SSH session.
 */
export const WATCHDOG_DIR = "/var/lib/pg-switchover/watchdog";

/** What a command of a run the watchdog took back exits with on that host. */
export const REVOKED_EXIT = 97;

/** Run ids are hex (plan/context.ts newRunId): they name files here, so nothing else is taken. */
function files(runId: string, dir: string) {
  if (!/^[0-9a-f]{8,64}$/.test(runId)) throw new Error(`not a run id: "${runId}"`);
  return {
    dir: q(dir),
    decision: q(`${dir}/${runId}.decision`),
    log: q(`${dir}/${runId}.log`),
    out: q(`${dir}/${runId}.out`),
    pid: q(`${dir}/${runId}.pid`),
    current: q(`${dir}/current`),
  };
}

/** First in every command of run `runId`, on every host: a run taken back here stops here. */
export function refusedOnceTakenBack(runId: string, dir = WATCHDOG_DIR): string {
  const f = files(runId, dir);
  return `if [ "$(readlink ${f.decision} 2>/dev/null)" = watchdog ]; then echo "pg-switchover: the watchdog took this run back on this host: $(tail -n 1 ${f.log} 2>/dev/null)" >&2; exit ${REVOKED_EXIT}; fi`;
}

/** What the watchdog does, rendered from the plan's own commands for this host. */
export interface TakeBack {
  host: HostSpec;
  /** The server's start (unfences it), as the plan's rollback sends it. */
  start: HostCommand;
  /** The VIP up, announced. */
  vipUp: HostCommand;
  poolers: Pooler[];
}

/**
 * Arms the run's watchdog, `afterMs` from now (an earlier arm of the run is replaced). From now
 * on an earlier run's watchdog that has not fired yet does nothing (`current` names this run).
 */
export function armCommand(
  runId: string,
  afterMs: number,
  t: TakeBack,
  dir = WATCHDOG_DIR,
): HostCommand {
  const f = files(runId, dir);
  const asItsUser = (c: HostCommand) =>
    c.user === "root" ? c.script : `runuser -u ${q(t.host.osUser)} -- sh -c ${q(c.script)}`;
  const secs = (afterMs / 1000).toFixed(3);
  const log = `log() { printf '%s %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*" >>${f.log}; }`;
  const resume = t.poolers.map((p) => {
    const at = `${p.host}:${p.port}`;
    const sql = consoleStatements(p.database).resume;
    // A pool that is not paused (the run died before its PAUSE) says so, and is as it should be.
    return `if o=$(PGCONNECT_TIMEOUT=5 timeout 10 ${q(`${t.host.pgBin}/psql`)} -X -q -h ${q(p.host)} -p ${p.port} -U ${q(p.adminUser)} -d pgbouncer -c ${q(sql)} 2>&1) || printf '%s\\n' "$o" | grep -q 'is not paused'; then log ${q(`pooler ${at} resumed`)}; else printf '%s\\n' "$o" >>${f.out}; log ${q(`pooler ${at}: RESUME failed (see ${dir}/${runId}.out): resume it by hand`)}; fi`;
  });
  const waitMs = 60_000;
  const ready = `${q(`${t.host.pgBin}/pg_isready`)} -q -h ${q(t.host.socketDir)} -p ${t.host.port}`;
  const fire = [
    "cd /",
    `sleep ${secs}`,
    log,
    `[ "$(cat ${f.current} 2>/dev/null)" = ${runId} ] || { log "not acting: a later run armed its own watchdog"; exit 0; }`,
    `ln -s watchdog ${f.decision} 2>/dev/null || { log "not acting: the run decided first: $(readlink ${f.decision})"; exit 0; }`,
    `log ${q(`the run did not claim the promotion within ${secs} s: taking it back`)}`,
    // The run's commands still running here finish first (or their deadline ends them).
    ALIVE,
    `w=0; while ${commandPidFiles(t.host.socketDir)
      .map((p) => `alive ${q(p)}`)
      .join(" || ")}; do w=$((w+1)); [ $w -lt ${waitMs / 50} ] || break; sleep 0.05; done`,
    'log "the run\'s commands on this host have ended (waited $((w * 50)) ms)"',
    // A shutdown under way is waited for: the start is tried again until it takes. The VIP goes
    // up as soon as the server accepts connections: a unit's start job returns seconds later
    // (postgresql-common's pg_ctlcluster, seen in the lab: ready in 0.2 s, the job done in 2.3 s).
    `( n=0; until { ${asItsUser(t.start)}; }; do n=$((n+1)); [ $n -lt 30 ] || exit 1; sleep 1; done ) >>${f.out} 2>&1 & s=$!`,
    `r=0; until ${ready}; do r=$((r+1)); if [ $r -ge ${waitMs / 20} ] || { ! kill -0 $s 2>/dev/null && ! ${ready}; }; then log ${q(`FAILED: ${t.host.name}'s server did not start (see ${dir}/${runId}.out): the pair has no primary serving`)}; exit 1; fi; sleep 0.02; done`,
    `log ${q(`${t.host.name}'s server accepts connections, unfenced`)}`,
    `{ ${t.vipUp.script}; } >>${f.out} 2>&1 || { log ${q(`FAILED: ${t.host.name} serves, but the VIP could not be put up (see ${dir}/${runId}.out)`)}; exit 1; }`,
    ...resume,
    `wait $s || log ${q(`the start command failed, though the server accepts connections (see ${dir}/${runId}.out)`)}`,
    `log ${q(`took the run back: ${t.host.name} serves again, unfenced, with the VIP${t.poolers.length > 0 ? ", poolers resumed as said above" : ""}`)}`,
  ].join("; ");
  return {
    user: "root",
    script: [
      `mkdir -p -m 755 ${f.dir} || exit 1`,
      `if [ -L ${f.decision} ]; then echo "pg-switchover: this run's watchdog decided already: $(readlink ${f.decision})" >&2; exit 1; fi`,
      `if [ -s ${f.pid} ]; then kill -- -"$(cat ${f.pid})" 2>/dev/null; fi`,
      `find ${f.dir} -maxdepth 1 \\( -type f -o -type l \\) -mtime +30 -delete`,
      `printf '%s\\n' ${runId} >${f.current}.new && mv -f ${f.current}.new ${f.current} || exit 1`,
      `setsid sh -c ${q(fire)} </dev/null >/dev/null 2>&1 & echo $! >${f.pid}`,
    ].join("; "),
  };
}

/** The run's claim: `promote`, unless the watchdog (or the run's end) decided first. */
export function claimCommand(runId: string, dir = WATCHDOG_DIR): HostCommand {
  const f = files(runId, dir);
  return {
    user: "root",
    script: `mkdir -p -m 755 ${f.dir} && { ln -s promote ${f.decision} 2>/dev/null || [ "$(readlink ${f.decision})" = promote ] || { echo "pg-switchover: this run's watchdog decided already: $(readlink ${f.decision})" >&2; exit 1; }; }`,
  };
}

/** The run ended where it started: `ended` unless decided, and the sleeping process stopped. */
export function endCommand(runId: string, dir = WATCHDOG_DIR): HostCommand {
  const f = files(runId, dir);
  return {
    user: "root",
    script: `[ -d ${f.dir} ] || exit 0; ln -s ended ${f.decision} 2>/dev/null; if [ -s ${f.pid} ]; then kill -- -"$(cat ${f.pid})" 2>/dev/null; fi; rm -f ${f.pid}`,
  };
}
