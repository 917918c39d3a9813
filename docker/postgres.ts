import type Docker from "dockerode";
import { type ExecResult, execInContainer } from "./exec.ts";
import { PG } from "./topology.ts";

/**
 * Postgres inside one lab host, driven the way a person on the host would: pg_ctl, initdb,
 * pg_basebackup and psql over the local socket, all as the OS user `postgres`.
 */
export class PostgresCommandError extends Error {
  override readonly name = "PostgresCommandError";
}

const SHORT_MS = 30_000;

/** Runs a shell script as `postgres` in the container. */
export function asPostgres(
  docker: Docker,
  container: string,
  script: string,
  deadlineMs = SHORT_MS,
): Promise<ExecResult> {
  return execInContainer(docker, container, ["sh", "-c", script], {
    user: PG.osUser,
    deadlineMs,
    workingDir: "/var/lib/postgresql",
  });
}

/** Like asPostgres, but a non-zero exit or a timeout is an error naming `what`. */
export async function mustAsPostgres(
  docker: Docker,
  container: string,
  what: string,
  script: string,
  deadlineMs = SHORT_MS,
): Promise<string> {
  const result = await asPostgres(docker, container, script, deadlineMs);
  if (result.exitCode === 0) return result.stdout;
  const how = result.timedOut
    ? `did not finish within ${deadlineMs / 1000}s`
    : `exited ${result.exitCode}`;
  throw new PostgresCommandError(
    `${what} on ${container} ${how}: ${(result.stderr || result.stdout).trim().slice(-1500)}`,
  );
}

/** One psql command against the local server; output unaligned, tuples only. */
export function psqlScript(sql: string, database = "postgres"): string {
  return `psql -X -q -At -v ON_ERROR_STOP=1 -h ${PG.socketDir} -p ${PG.port} -U ${PG.superuser} -d ${database} -c ${shellQuote(sql)}`;
}

/** Runs a query returning one json value (one row, one column) and parses it. */
export async function queryJson<T>(docker: Docker, container: string, sql: string): Promise<T> {
  const out = await mustAsPostgres(docker, container, "psql", psqlScript(sql));
  return JSON.parse(out.trim()) as T;
}

export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

/** What the files say about a node's server, in one exec (each exec costs a round trip). */
export interface DataDirFacts {
  hasData: boolean;
  /** pg_ctl status: a postmaster runs on the data directory. */
  running: boolean;
  /** standby.signal exists: the server starts (or runs) as a standby. */
  standbySignal: boolean;
  /** PG.fenceMarker exists: nothing may start this server. */
  fenced: boolean;
}

export async function dataDirFacts(docker: Docker, container: string): Promise<DataDirFacts> {
  const script = [
    `test -f ${PG.data}/PG_VERSION && echo hasData`,
    `${PG.pgCtl} -D ${PG.data} status >/dev/null 2>&1 && echo running`,
    `test -e ${PG.data}/standby.signal && echo standbySignal`,
    `test -e ${PG.fenceMarker} && echo fenced`,
    "true",
  ].join("; ");
  const out = await mustAsPostgres(docker, container, "inspecting the data directory", script);
  const words = new Set(out.split(/\s+/));
  return {
    hasData: words.has("hasData"),
    running: words.has("running"),
    standbySignal: words.has("standbySignal"),
    fenced: words.has("fenced"),
  };
}

export async function startPostgres(docker: Docker, container: string): Promise<void> {
  await mustAsPostgres(
    docker,
    container,
    "pg_ctl start",
    `${PG.pgCtl} -D ${PG.data} -l ${PG.log} -w -t 120 start || { tail -n 20 ${PG.log} >&2; exit 1; }`,
    150_000,
  );
}

/** pg_controldata as a field → value map (readable while the server is down). */
export async function controlData(
  docker: Docker,
  container: string,
): Promise<Record<string, string>> {
  const out = await mustAsPostgres(
    docker,
    container,
    "pg_controldata",
    `${PG.bin}/pg_controldata -D ${PG.data}`,
  );
  const fields: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) fields[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return fields;
}

/** The installed postgresql-15 package version, e.g. "15.18-0+deb12u1". */
export async function packageVersion(docker: Docker, container: string): Promise<string | null> {
  const format = ["$", "{Version}"].join(""); // dpkg-query's field syntax, not a JS placeholder
  const result = await asPostgres(docker, container, `dpkg-query -W -f='${format}' postgresql-15`);
  return result.exitCode === 0 ? result.stdout.trim() : null;
}
