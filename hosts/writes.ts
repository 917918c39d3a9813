import pg from "pg";
import type { NodeName } from "../core/executor.ts";

/**
 * The rows clients and the plan's probes write, each with a unique id, so that the checkers can
 * look for every acknowledged one afterwards. The server that committed a row answers with its
 * `cluster_name` (the lab sets it to the node's name; a client's history shows it) and with
 * when its postmaster started: through the VIP the server's own address is the VIP, and Debian
 * sets cluster_name to "15/main" on both nodes, so the plan's probe tells the node by asking
 * each node, at its own address, when its postmaster started (SERVER_IDENTITY_SQL).
 */
export const WRITES_TABLE = "switchover_writes";

/** A running postmaster, told apart from any other: when it started, to the microsecond. */
const SERVER_STARTED = "extract(epoch FROM pg_postmaster_start_time())::text";
export const SERVER_IDENTITY_SQL = `SELECT ${SERVER_STARTED} AS server`;

/** A probe's or a client's write: `$1` is its id. */
export const INSERT_WRITE_SQL = `INSERT INTO ${WRITES_TABLE} (id) VALUES ($1) RETURNING current_setting('cluster_name') AS node, ${SERVER_STARTED} AS server`;
export const CREATE_WRITES_SQL = `CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`;

/** SQLSTATE of a missing table: the first write on a fresh cluster creates it. */
const UNDEFINED_TABLE = "42P01";

/** What the server that committed a write says of itself: its cluster_name, its postmaster's start. */
export interface WriteAnswer {
  node: string;
  server: string;
}

async function insertRow(client: pg.ClientBase, id: string): Promise<WriteAnswer> {
  const once = async () =>
    (await client.query<WriteAnswer>(INSERT_WRITE_SQL, [id])).rows[0] ?? { node: "", server: "" };
  try {
    return await once();
  } catch (e) {
    if ((e as { code?: string }).code !== UNDEFINED_TABLE) throw e;
    await client.query(CREATE_WRITES_SQL);
    return await once();
  }
}

export async function insertWrite(client: pg.ClientBase, id: string): Promise<NodeName> {
  return (await insertRow(client, id)).node;
}

/** Every id a node holds, as one JSON array (a hot standby answers too). */
export const SELECT_WRITES_SQL = `SELECT COALESCE(json_agg(id), '[]') FROM ${WRITES_TABLE}`;

export async function ensureWritesTable(client: pg.ClientBase): Promise<void> {
  await client.query(CREATE_WRITES_SQL);
}

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  database: string;
}

/** One connection per write attempt, with a deadline on connecting and on the statement. */
export function writeOnce(
  endpoint: Endpoint,
  id: string,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<WriteAnswer> {
  return onNewConnection(endpoint, deadlineMs, signal, (client) => insertRow(client, id));
}

/** SERVER_IDENTITY_SQL on a new connection: which postmaster serves at `endpoint`. */
export function serverIdentity(
  endpoint: Endpoint,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<string> {
  return onNewConnection(endpoint, deadlineMs, signal, async (client) => {
    const row = (await client.query<{ server: string }>(SERVER_IDENTITY_SQL)).rows[0];
    return row?.server ?? "";
  });
}

async function onNewConnection<T>(
  endpoint: Endpoint,
  deadlineMs: number,
  signal: AbortSignal | undefined,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    ...endpoint,
    connectionTimeoutMillis: deadlineMs,
    query_timeout: deadlineMs,
    statement_timeout: deadlineMs,
    application_name: "pg-switchover probe",
  });
  const abort = () => void client.end().catch(() => {});
  signal?.addEventListener("abort", abort, { once: true });
  client.on("error", () => {});
  try {
    await client.connect();
    return await use(client);
  } finally {
    signal?.removeEventListener("abort", abort);
    await client.end().catch(() => {});
  }
}
