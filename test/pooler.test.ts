import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import {
  killPool,
  pausePooler,
  poolerPaused,
  reconnectPooler,
  resumePooler,
  showPools,
} from "../hosts/pooler-admin.ts";
import { connectDocker } from "../lab/engine.ts";
import { labDown, labStatus, labUp } from "../lab/lifecycle.ts";
import { poolerConsole } from "../lab/pooler.ts";
import { LAB_LABEL, labTopology, PG } from "../lab/topology.ts";
import type { RealRunReport } from "../verify/run-report.ts";
import { freshLab, labEnvironment } from "./support/lab-env.ts";
import { switchoverCli } from "./support/switchover-cli.ts";

/**
 * The lab's PgBouncer (`lab up --pooler`: Debian's pgbouncer 1.18) and the admin-console
 * operations the plan's pooler steps will use (hosts/pooler-admin.ts), against the real thing.
 */
const MINUTE = 60_000;
const topology = labTopology();
const admin = poolerConsole(topology);
const DB = PG.database;
const progress = (line: string) => process.stderr.write(`  lab: ${line}\n`);

const { skip, problem } = await labEnvironment("pooler integration tests");

/** A client of the application's database through the pooler. */
async function pooled(): Promise<pg.Client> {
  const client = new pg.Client({
    host: topology.pooler.address,
    port: topology.pooler.port,
    user: PG.superuser,
    database: DB,
    connectionTimeoutMillis: 5000,
    // A paused pool holds a query: no test waits on one longer than this.
    query_timeout: 5000,
  });
  client.on("error", () => {});
  await client.connect();
  return client;
}

const switchover = (args: string[]) => switchoverCli(args, 15 * MINUTE);

const nodeOf = async (c: pg.Client) =>
  (await c.query<{ node: string }>("select current_setting('cluster_name') as node")).rows[0]?.node;

describe.skipIf(skip)("the lab's pooler", () => {
  const lab = freshLab(
    () => labUp({ from: "15.18", to: "15.20", pooler: true }, progress),
    progress,
    problem,
  );
  // Whatever a test did, the next one starts with the pool serving.
  afterEach(() => resumePooler(admin, { database: DB, deadlineMs: 2000 }).then(() => {}));

  it("is in lab status, serving, and its writes reach the primary through the VIP", async () => {
    const status = lab();
    expect(status.pooler).toEqual({
      address: topology.pooler.address,
      port: 6432,
      uri: `postgresql://postgres@${topology.pooler.address}:6432/app`,
      running: true,
      paused: false,
    });
    const client = await pooled();
    try {
      expect(await nodeOf(client)).toBe(status.vip.holder);
      // Transaction pooling: a session's settings do not outlive its transaction's server.
      const mode = await showPools(admin, { deadlineMs: 2000, database: DB });
      expect(mode.ok && mode.pools[0]?.mode).toBe("transaction");
    } finally {
      await client.end();
    }
  });

  it("PAUSE holds new queries, RESUME lets them run, and lab status shows which", async () => {
    const client = await pooled();
    try {
      expect(await pausePooler(admin, { database: DB, deadlineMs: 5000 })).toEqual({ ok: true });
      expect((await labStatus()).pooler?.paused).toBe(true);
      const started = Date.now();
      const held = nodeOf(client);
      const early = await Promise.race([
        held,
        new Promise((r) => setTimeout(() => r("held"), 500)),
      ]);
      expect(early).toBe("held");
      const pools = await showPools(admin, { database: DB, deadlineMs: 2000 });
      expect(pools.ok && pools.pools[0]?.clientsWaiting).toBe(1);
      expect(await resumePooler(admin, { database: DB, deadlineMs: 2000 })).toEqual({ ok: true });
      expect(await held).toBe(lab().vip.holder);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      expect((await labStatus()).pooler?.paused).toBe(false);
      // Again on a pooler that serves: nothing to do, and no error.
      expect(await resumePooler(admin, { database: DB, deadlineMs: 2000 })).toEqual({ ok: true });
    } finally {
      await client.end();
    }
  });

  it("a transaction left open holds PAUSE past its deadline: the pause is undone", async () => {
    const client = await pooled();
    try {
      await client.query("BEGIN");
      await client.query("select 1");
      const started = Date.now();
      const paused = await pausePooler(admin, { database: DB, deadlineMs: 700 });
      expect(paused).toMatchObject({ ok: false, reason: "timeout" });
      expect(paused.ok ? "" : paused.detail).toContain("resumed");
      expect(Date.now() - started).toBeLessThan(700 + 3000);
      expect(await poolerPaused(admin, { database: DB, deadlineMs: 2000 })).toEqual({
        ok: true,
        paused: false,
      });
      // The transaction was never broken, and other clients are served meanwhile.
      await client.query("COMMIT");
      const other = await pooled();
      expect(await nodeOf(other)).toBe(lab().vip.holder);
      await other.end();
    } finally {
      await client.end();
    }
  });

  it("RECONNECT keeps clients; KILL drops them and pauses until RESUME", async () => {
    const client = await pooled();
    try {
      await nodeOf(client);
      expect(await reconnectPooler(admin, { database: DB, deadlineMs: 2000 })).toEqual({
        ok: true,
      });
      expect(await nodeOf(client)).toBe(lab().vip.holder);
      expect(await killPool(admin, { database: DB, deadlineMs: 2000 })).toEqual({ ok: true });
      await expect(nodeOf(client)).rejects.toThrow();
      expect(await poolerPaused(admin, { database: DB, deadlineMs: 2000 })).toEqual({
        ok: true,
        paused: true,
      });
      expect(await resumePooler(admin, { database: DB, deadlineMs: 2000 })).toEqual({ ok: true });
      const fresh = await pooled();
      expect(await nodeOf(fresh)).toBe(lab().vip.holder);
      await fresh.end();
    } finally {
      await client.end().catch(() => {});
    }
  });

  it("a console nobody answers on is an outcome, within the deadline", async () => {
    const nobody = { ...admin, port: 6439 };
    expect(await resumePooler(nobody, { database: DB, deadlineMs: 1000 })).toMatchObject({
      ok: false,
      reason: "unreachable",
    });
    expect(await pausePooler(admin, { database: "nosuchdb", deadlineMs: 1000 })).toMatchObject({
      ok: false,
      reason: "refused",
    });
  });

  it(
    "rehearse --pooler: the plan pauses it, the client writing through it sees no error, nothing is lost, and afterwards it serves the new primary",
    async () => {
      const run = await switchover(["rehearse", "--pooler", "--rate", "100", "--json", "--keep"]);
      if (run.code !== 0) process.stderr.write(run.stderr.slice(-4000));
      expect(run.code).toBe(0);
      const r = JSON.parse(run.stdout) as RealRunReport;
      expect(r).toMatchObject({ through: "pooler", status: "done", verdict: "ok", lostWrites: 0 });
      expect(r.steps.map((s) => s.name)).toEqual(
        expect.arrayContaining(["pausePoolers", "resumePoolers"]),
      );
      // Held, not refused: none fails, and none is held past the client's own 1 s deadline
      // (indeterminate): the pause spans only the VIP's move, the fence's reload is before it.
      expect(r.failed).toBe(0);
      expect(r.indeterminate).toBe(0);
      expect((await labStatus()).pooler?.paused).toBe(false);
      expect(r.acked).toBeGreaterThan(1000);
      expect(r.outage.resumed).toBe(true);
      expect(r.latencyMs?.max).toBeGreaterThan(0);
      expect(r.switchover?.window.to).toBeGreaterThan(r.switchover?.window.from ?? Infinity);
      const client = await pooled();
      try {
        expect(await nodeOf(client)).toBe("node2");
      } finally {
        await client.end();
      }
    },
    15 * MINUTE,
  );

  it(
    "lab down removes the pooler with the rest",
    async () => {
      await labDown(progress);
      const docker = await connectDocker();
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`${LAB_LABEL}=1`] },
      });
      expect(left).toEqual([]);
      expect((await labStatus()).pooler).toBeNull();
    },
    5 * MINUTE,
  );
});
