import type Docker from "dockerode";
import { EnvironmentError } from "../core/errors.ts";
import {
  type HostCommand,
  parseControlData,
  type ReplicationRow,
  shellQuote,
} from "../hosts/commands.ts";
import { fenceOf, readStartConf } from "../hosts/control.ts";
import { describeFailure, runHostCommand } from "../hosts/transports/docker-exec.ts";
import type { LabHost } from "./hosts.ts";

/**
 * Postgres inside one lab host, driven by the host commands of hosts/commands.ts (its control
 * mode's start, psql over the local socket, pg_controldata), as the switchover itself drives it.
 */
export class PostgresCommandError extends EnvironmentError {
  override readonly name = "PostgresCommandError";
}

const SHORT_MS = 30_000;
/** The start's own wait for the server (pg_ctl -t, seconds), and ours around it. */
const START_WAIT_S = 120;
const START_DEADLINE_MS = 150_000;

/** A lab-only script (initdb, inspecting the data directory), run as `postgres` like the rest. */
export const asPostgres = (script: string): HostCommand => ({ user: "postgres", script });
/** A lab-only script that needs root (pg_createcluster, writing /etc). */
export const asRoot = (script: string): HostCommand => ({ user: "root", script });

/** Runs a host command on `host`; a non-zero exit or a timeout is an error naming `what`. */
export async function mustRun(
  docker: Docker,
  host: LabHost,
  what: string,
  cmd: HostCommand,
  deadlineMs = SHORT_MS,
): Promise<string> {
  const result = await runHostCommand(docker, host.container, cmd, deadlineMs);
  if (result.exitCode === 0) return result.stdout;
  throw new PostgresCommandError(
    `${what} on ${host.container} ${describeFailure(result, deadlineMs)}`,
  );
}

/** Runs a query returning one json value (one row, one column) and parses it. */
export async function queryJson<T>(docker: Docker, host: LabHost, sql: string): Promise<T> {
  const out = await mustRun(docker, host, "psql", host.commands.sql(sql));
  return JSON.parse(out.trim()) as T;
}

/** The running server's replication facts, read as the switchover reads them. */
export async function replication(docker: Docker, host: LabHost): Promise<ReplicationRow> {
  const out = await mustRun(docker, host, "replication status", host.commands.replication);
  return JSON.parse(out.trim()) as ReplicationRow;
}

/** What the files say about a node's server, in one exec (each exec costs a round trip). */
export interface DataDirFacts {
  hasData: boolean;
  /** pg_ctl status: a postmaster runs on the data directory. */
  running: boolean;
  /** standby.signal exists: the server starts (or runs) as a standby. */
  standbySignal: boolean;
  /** The host's fence is up (start.conf manual, or the pg_ctl marker): nothing may start it. */
  fenced: boolean;
  /** A postgresql-common cluster's start.conf word (auto, manual, disabled); null elsewhere. */
  startConf: string | null;
}

export async function dataDirFacts(docker: Docker, host: LabHost): Promise<DataDirFacts> {
  const data = shellQuote(host.spec.dataDir);
  const fence = fenceOf(host.spec);
  const fenceFile = shellQuote(fence.file);
  const script = [
    `test -f ${data}/PG_VERSION && echo hasData`,
    `${host.commands.status.script} >/dev/null 2>&1 && echo running`,
    `test -e ${data}/standby.signal && echo standbySignal`,
    fence.kind === "marker"
      ? `test -e ${fenceFile} && echo fenced`
      : `echo "startConf=$(${readStartConf(fenceFile)} 2>/dev/null)"`,
    "true",
  ].join("; ");
  const out = await mustRun(docker, host, "inspecting the data directory", asPostgres(script));
  const words = new Set(out.split(/\s+/));
  const startConf =
    fence.kind === "start.conf" ? (/startConf=(\S*)/.exec(out)?.[1] ?? "") || null : null;
  return {
    hasData: words.has("hasData"),
    running: words.has("running"),
    standbySignal: words.has("standbySignal"),
    fenced:
      fence.kind === "marker"
        ? words.has("fenced")
        : startConf === "manual" || startConf === "disabled",
    startConf,
  };
}

export async function startPostgres(docker: Docker, host: LabHost): Promise<void> {
  const { startWhat, start } = host.commands;
  await mustRun(docker, host, startWhat, start(START_WAIT_S), START_DEADLINE_MS);
}

/** pg_controldata, parsed (readable while the server is down). */
export async function controlData(docker: Docker, host: LabHost) {
  return parseControlData(await mustRun(docker, host, "pg_controldata", host.commands.controlData));
}

/** The installed server package's version, e.g. "15.18-0+deb12u1"; null when dpkg has none. */
export async function packageVersion(docker: Docker, host: LabHost): Promise<string | null> {
  const result = await runHostCommand(
    docker,
    host.container,
    host.commands.installedVersion,
    SHORT_MS,
  );
  return result.exitCode === 0 ? result.stdout.trim() : null;
}
