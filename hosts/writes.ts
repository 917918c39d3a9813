import pg from "pg";
import type { NodeName } from "../core/executor.ts";

/**
 * The rows clients and the plan's probes write, each with a unique id, so that the checkers can
 * look for every acknowledged one afterwards. The node that committed a row answers with its
 * `cluster_name`, which each host sets to its node name (a write through the VIP cannot tell
 * otherwise: the server's own address is the VIP).
 */
export const WRITES_TABLE = "switchover_writes";

/** A probe's or a client's write: `$1` is its id. */
export const INSERT_WRITE_SQL = `INSERT INTO ${WRITES_TABLE} (id) VALUES ($1) RETURNING current_setting('cluster_name') AS node`;
export const CREATE_WRITES_SQL = `CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`;

/** SQLSTATE of a missing table: the first write on a fresh cluster creates it. */
const UNDEFINED_TABLE = "42P01";

export async function insertWrite(client: pg.ClientBase, id: string): Promise<NodeName> {
  try {
    return (await client.query<{ node: string }>(INSERT_WRITE_SQL, [id])).rows[0]?.node ?? "";
  } catch (e) {
    if ((e as { code?: string }).code !== UNDEFINED_TABLE) throw e;
    await client.query(CREATE_WRITES_SQL);
    return (await client.query<{ node: string }>(INSERT_WRITE_SQL, [id])).rows[0]?.node ?? "";
  }
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
export async function writeOnce(
  endpoint: Endpoint,
  id: string,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<NodeName> {
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
    return await insertWrite(client, id);
  } finally {
    signal?.removeEventListener("abort", abort);
    await client.end().catch(() => {});
  }
}
