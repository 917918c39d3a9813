import pg from "pg";
import type { NodeName } from "../core/executor.ts";
import type { History } from "../core/history.ts";
import { type Endpoint, insertWrite } from "./writes.ts";

export interface WorkloadOptions {
  endpoint: Endpoint;
  /** Where the writes go, as the history records it. */
  target: NodeName | "vip";
  ratePerSec: number;
  /** Makes ids unique across runs on the same cluster (the table keeps earlier runs' rows). */
  idPrefix: string;
  history: History;
  /** Time origin of the history (ms, Date.now() scale): the run's start. */
  origin: number;
  /** Connections writing side by side, like an application's pool (default 4). */
  connections?: number;
  /** Deadline of one connect and of one write (ms, default 1000). */
  deadlineMs?: number;
}

export interface Workload {
  /** Stops issuing writes and waits for those in flight (each has a deadline). */
  stop(): Promise<void>;
}

/** SQLSTATE classes after which the write surely did not commit. */
const NOT_APPLIED = [
  "25", // read-only transaction: a standby, or a primary going down
  "23", // integrity (a duplicate id would be a workload bug, and was not applied)
  "42", // syntax or missing object
  "53", // out of resources
];

/**
 * A client writing unique ids at a steady rate through `endpoint`, recording each write as
 * invoke, then ok (acknowledged, with the node that committed it), fail (surely not applied)
 * or info (unknown: sent, then the connection broke or the deadline passed). Like an
 * application pool, each connection reconnects after an error, and a late connection skips
 * the writes it missed rather than bursting.
 */
export function startWorkload(o: WorkloadOptions): Workload {
  const connections = o.connections ?? 4;
  const deadline = o.deadlineMs ?? 1000;
  const period = (1000 * connections) / o.ratePerSec;
  const now = () => Date.now() - o.origin;
  let running = true;
  let next = 0;
  const record = (type: "invoke" | "ok" | "fail" | "info", id: string, extra = {}) =>
    o.history.add({ type, id, target: o.target, t: now(), ...extra });

  async function connection(offset: number): Promise<void> {
    let client: pg.Client | null = null;
    let due = Date.now() + offset;
    while (running) {
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (!running) break;
      due = Math.max(due + period, Date.now());
      const id = `${o.idPrefix}w${next++}`;
      record("invoke", id);
      if (!client) {
        const fresh = new pg.Client({
          ...o.endpoint,
          connectionTimeoutMillis: deadline,
          query_timeout: deadline,
          application_name: "pg-switchover workload",
        });
        fresh.on("error", () => {});
        try {
          await fresh.connect();
          client = fresh;
        } catch (e) {
          void fresh.end().catch(() => {});
          record("fail", id, { reason: `connect: ${(e as Error).message}` });
          continue;
        }
      }
      try {
        record("ok", id, { node: await insertWrite(client, id) });
      } catch (e) {
        const code = (e as { code?: string }).code;
        const applied = code && NOT_APPLIED.some((c) => code.startsWith(c)) ? "fail" : "info";
        record(applied, id, { reason: (e as Error).message });
        void client.end().catch(() => {});
        client = null;
      }
    }
    await client?.end().catch(() => {});
  }

  const all = Array.from({ length: connections }, (_, i) => connection((i * period) / connections));
  return {
    async stop() {
      running = false;
      await Promise.all(all);
    },
  };
}
