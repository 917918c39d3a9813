import pg from "pg";

/**
 * A PgBouncer's admin console (the virtual database "pgbouncer"), for the plan's pooler steps:
 * PAUSE before the VIP goes down, RECONNECT (or KILL) once the new primary serves, RESUME, and
 * what a pooler is doing (SHOW DATABASES, SHOW POOLS). Every command opens its own connection and
 * has a deadline; its outcome is data. Works with Debian bookworm's pgbouncer 1.18.
 *
 * Always per pooled database: 1.18 has no SHOW STATE, and a global PAUSE shows nowhere (SHOW
 * DATABASES' `paused` is a database's own), so only a per-database pause can be read back, and
 * RESUME made safe to repeat without reading an error's message.
 */
export interface PoolerConsole {
  host: string;
  port: number;
  /** A user in the pooler's admin_users. */
  adminUser: string;
}

export type AdminOutcome<T = Record<never, never>> =
  | ({ ok: true } & T)
  | {
      ok: false;
      /** unreachable: no connection to the console; refused: the console answered an error;
       * timeout: no answer before the deadline (the command may still be in effect). */
      reason: "unreachable" | "refused" | "timeout";
      detail: string;
    };

export interface AdminOptions {
  /** The pooled database to act on (as [databases] names it). */
  database: string;
  deadlineMs: number;
  signal?: AbortSignal;
}

/** One row of SHOW POOLS: a pool (database, user) and its clients and server connections. */
export interface PoolRow {
  database: string;
  user: string;
  /** Clients linked to a server connection, and clients waiting for one (a paused pool's). */
  clientsActive: number;
  clientsWaiting: number;
  serversActive: number;
  serversIdle: number;
  serversUsed: number;
  /** How long the oldest waiting client has waited (ms). */
  maxWaitMs: number;
  mode: string;
}

/** A command's outcome without its rows: what PAUSE, RESUME, RECONNECT and KILL answer. */
async function done(answer: Promise<AdminOutcome<{ rows: Row[] }>>): Promise<AdminOutcome> {
  const a = await answer;
  return a.ok ? { ok: true } : a;
}

/** The console's own database name. */
const CONSOLE_DB = "pgbouncer";

/** An identifier the console accepts after PAUSE, RESUME, RECONNECT, KILL. */
const DB_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * PAUSE: PgBouncer lets every server connection finish its transaction, closes it, and holds
 * new queries until RESUME. The command returns once no server connection is left, so a long
 * transaction holds it: past the deadline the pause is undone (RESUME) and the outcome says so.
 */
export async function pausePooler(c: PoolerConsole, o: AdminOptions): Promise<AdminOutcome> {
  // Paused already (the run resumed after its process died there): PgBouncer refuses a second
  // PAUSE, so the pause is undone first and taken again, waiting for the transactions as before.
  const resumed = await resumePooler(c, o);
  if (!resumed.ok) return resumed;
  const paused = await done(adminCommand(c, consoleStatements(o.database).pause, o));
  if (paused.ok || paused.reason !== "timeout") return paused;
  // The operator's signal may be what ended the wait: the pause is undone all the same.
  const undone = await resumePooler(c, { database: o.database, deadlineMs: o.deadlineMs });
  return {
    ok: false,
    reason: "timeout",
    detail: `PAUSE did not return within ${o.deadlineMs} ms (a transaction held it open); ${
      undone.ok ? "resumed" : `RESUME failed too: ${undone.detail}`
    }`,
  };
}

/**
 * RESUME: queries flow again (to whatever the pooled databases' host now is). Resuming a pooler
 * that is not paused is a success, so it can be repeated on every rollback and abort path.
 */
export async function resumePooler(c: PoolerConsole, o: AdminOptions): Promise<AdminOutcome> {
  const state = await poolerPaused(c, o);
  if (!state.ok) return state;
  if (!state.paused) return { ok: true };
  return done(adminCommand(c, consoleStatements(o.database).resume, o));
}

/**
 * RECONNECT: each server connection is closed once its client releases it, so the next
 * transaction connects afresh (through the VIP: to the new primary). Does not wait for them.
 */
export function reconnectPooler(c: PoolerConsole, o: AdminOptions): Promise<AdminOutcome> {
  return done(adminCommand(c, consoleStatements(o.database).reconnect, o));
}

/**
 * KILL: every client and server connection of one database dropped at once. The database is
 * paused afterwards, as PgBouncer does: RESUME lets new clients in.
 */
export function killPool(c: PoolerConsole, o: AdminOptions): Promise<AdminOutcome> {
  return done(adminCommand(c, command("KILL", o.database), o));
}

/** Whether pooled databases are paused: `database`'s row of SHOW DATABASES, or any when absent. */
export async function poolerPaused(
  c: PoolerConsole,
  o: Omit<AdminOptions, "database"> & { database?: string },
): Promise<AdminOutcome<{ paused: boolean }>> {
  const databases = await adminCommand(c, SHOW_DATABASES, o);
  if (!databases.ok) return databases;
  const rows = databases.rows.filter((r) =>
    o.database === undefined ? r.name !== CONSOLE_DB : r.name === o.database,
  );
  if (o.database !== undefined && rows.length === 0) {
    return { ok: false, reason: "refused", detail: `the pooler has no database "${o.database}"` };
  }
  return { ok: true, paused: rows.some((r) => Number(r.paused) === 1) };
}

/** SHOW POOLS, the console's own pool excluded. */
export async function showPools(
  c: PoolerConsole,
  o: Omit<AdminOptions, "database"> & { database?: string },
): Promise<AdminOutcome<{ pools: PoolRow[] }>> {
  const result = await adminCommand(c, "SHOW POOLS", o);
  if (!result.ok) return result;
  const pools = result.rows
    .filter((r) => r.database !== CONSOLE_DB)
    .filter((r) => o.database === undefined || r.database === o.database)
    .map((r) => ({
      database: String(r.database),
      user: String(r.user),
      clientsActive: Number(r.cl_active),
      clientsWaiting: Number(r.cl_waiting),
      serversActive: Number(r.sv_active),
      serversIdle: Number(r.sv_idle),
      serversUsed: Number(r.sv_used),
      maxWaitMs: Number(r.maxwait) * 1000 + Math.floor(Number(r.maxwait_us ?? 0) / 1000),
      mode: String(r.pool_mode),
    }));
  return { ok: true, pools };
}

const SHOW_DATABASES = "SHOW DATABASES";

/** The console statements of the plan's pooler steps, as they are sent (`switchover plan` lists them). */
export function consoleStatements(database: string) {
  return {
    show: SHOW_DATABASES,
    pause: command("PAUSE", database),
    resume: command("RESUME", database),
    reconnect: command("RECONNECT", database),
  };
}

function command(verb: "PAUSE" | "RESUME" | "RECONNECT" | "KILL", database: string): string {
  if (!DB_NAME.test(database)) throw new Error(`not a pooled database name: "${database}"`);
  return `${verb} ${database}`;
}

type Row = Record<string, unknown>;

/**
 * One console command on a connection of its own. The console speaks only the simple query
 * protocol, which `pg` uses for a query without parameters.
 */
async function adminCommand(
  c: PoolerConsole,
  sql: string,
  o: { deadlineMs: number; signal?: AbortSignal | undefined },
): Promise<AdminOutcome<{ rows: Row[] }>> {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.adminUser,
    database: CONSOLE_DB,
    application_name: "pg-switchover",
  });
  client.on("error", () => {});
  const deadline = AbortSignal.timeout(o.deadlineMs);
  const stop = o.signal ? AbortSignal.any([deadline, o.signal]) : deadline;
  const timedOut = new Promise<"timeout">((resolve) => {
    if (stop.aborted) resolve("timeout");
    stop.addEventListener("abort", () => resolve("timeout"), { once: true });
  });
  const late = (what: string) => ({
    ok: false as const,
    reason: "timeout" as const,
    detail: `${what} ${c.host}:${c.port} gave no answer within ${o.deadlineMs} ms`,
  });
  try {
    const connected = await Promise.race([
      client.connect().then(
        () => "ok" as const,
        (e: Error) => e,
      ),
      timedOut,
    ]);
    if (connected === "timeout") return late("connecting to the pooler console at");
    if (connected instanceof Error) {
      return {
        ok: false,
        reason: "unreachable",
        detail: `pooler console ${c.host}:${c.port}: ${connected.message}`,
      };
    }
    const answer = await Promise.race([
      client.query(sql).then(
        (r) => r,
        (e: Error) => e,
      ),
      timedOut,
    ]);
    if (answer === "timeout") return late(`${sql} on`);
    if (answer instanceof Error) {
      return { ok: false, reason: "refused", detail: `${sql}: ${answer.message}` };
    }
    return { ok: true, rows: answer.rows as Row[] };
  } finally {
    void client.end().catch(() => {});
  }
}
