import { execFile } from "node:child_process";
import { appendFileSync, chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatLsn, parseLsn } from "../core/lsn.ts";
import {
  type ClusterSpec,
  fenceMarker,
  type HostCommand,
  type HostSpec,
  hostCommands,
  parseControlData,
  parseStoppedControl,
  parseTimelineHistory,
  parseWalRecordEnd,
  shellQuote,
  splitOutputs,
} from "../hosts/commands.ts";
import { parseConninfo } from "../hosts/conninfo.ts";
import { readStartConf } from "../hosts/control.ts";
import { hostFactsCommand, judgeControl, parseHostFacts } from "../hosts/host-facts.ts";
import { type Hazards, hazardsSql } from "../hosts/preflight.ts";
import { resolveStandbyLink } from "../hosts/standby-link.ts";

/**
 * The host commands and their parsers against the real PostgreSQL 15 of this machine: a primary
 * and a streaming standby in a temporary directory, run as the `postgres` OS user exactly as the
 * docker and ssh executors run them (`sh -c`, as the command's user).
 */
const PG_BIN = "/usr/lib/postgresql/15/bin";
/** WAL page and segment sizes of a default initdb. */
const PAGE = 8192;
const SEGMENT = 16 * 1024 * 1024;

function environmentProblem(): string | null {
  if (!existsSync(`${PG_BIN}/postgres`)) return `no PostgreSQL 15 binaries in ${PG_BIN}`;
  if (process.getuid?.() !== 0) return "not root: cannot run the commands as the postgres user";
  return null;
}

const problem = environmentProblem();
const inCi = process.env.CI === "true";
if (problem && !inCi) {
  process.stderr.write(
    `\n*** host command tests SKIPPED: ${problem}\n*** (under CI=true this fails)\n\n`,
  );
}

interface Run {
  code: number;
  out: string;
  err: string;
}

const dir = problem ? "" : mkdtempSync(join(tmpdir(), "pgsw-"));
const port = 55432 + 2 * Math.floor(Math.random() * 2000);
const host = (name: string, p: number): HostSpec => ({
  name,
  address: "127.0.0.1",
  pgBin: PG_BIN,
  dataDir: join(dir, name),
  port: p,
  socketDir: dir,
  logFile: join(dir, `${name}.log`),
  osUser: "postgres",
  control: { mode: "pg_ctl", configFile: null },
});
const primary = host("node1", port);
const standby = host("node2", port + 1);
const cluster: ClusterSpec = {
  nodes: [primary, standby],
  vip: { address: "127.0.0.1", prefix: 32, device: "lo" },
  superuser: "postgres",
  replicationUser: "postgres",
  database: "postgres",
  packages: ["postgresql-15"],
};
const p = hostCommands(cluster, primary);
const s = hostCommands(cluster, standby);

function run(cmd: HostCommand, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  const argv = ["-u", cmd.user, "--", "sh", "-c", cmd.script];
  return new Promise((resolve) => {
    execFile("runuser", argv, { cwd: "/", env, timeout: 90_000 }, (error, out, err) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, out, err });
    });
  });
}

async function ok(cmd: HostCommand): Promise<string> {
  const r = await run(cmd);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${cmd.script}\n${r.err}`);
  return r.out;
}

const sql = (h: HostSpec, query: string) =>
  ok({
    user: "postgres",
    script: `psql -X -q -At -h ${h.socketDir} -p ${h.port} -U postgres -d postgres -c ${shellQuote(query)}`,
  });

async function replication(h: HostSpec) {
  const row = JSON.parse(await ok(hostCommands(cluster, h).replication));
  return { ...row, lsn: parseLsn(row.lsn), replayLsn: row.replayLsn && parseLsn(row.replayLsn) };
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    const v = await read();
    if (done(v) || i === 150) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const waldump = (range: string): HostCommand => ({
  user: "postgres",
  script: `${PG_BIN}/pg_waldump -p ${primary.dataDir}/pg_wal -t 1 ${range}`,
});

const controlData = async (h: HostSpec) =>
  parseControlData(await ok(hostCommands(cluster, h).controlData));

describe.skipIf(problem !== null && !inCi)("host commands on real PostgreSQL 15", () => {
  beforeAll(async () => {
    if (problem) throw new Error(`host command tests need PostgreSQL 15 and root: ${problem}`);
    chownSync(dir, Number(await ok({ user: "root", script: "id -u postgres" })), 0);
    await ok({
      user: "postgres",
      script: `${PG_BIN}/initdb -D ${primary.dataDir} -U postgres --auth=trust -N`,
    });
    const conf = (h: HostSpec) =>
      `\nport = ${h.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\n`;
    appendFileSync(join(primary.dataDir, "postgresql.conf"), conf(primary));
    await ok(p.start(30));
    await sql(primary, "CREATE TABLE t(id int)");
    await ok({
      user: "postgres",
      script: `${PG_BIN}/pg_basebackup -D ${standby.dataDir} -h 127.0.0.1 -p ${port} -U postgres -X stream -c fast`,
    });
    appendFileSync(join(standby.dataDir, "postgresql.conf"), conf(standby));
    await ok(s.configureStandby(primary));
    await ok(s.start(30));
    await until(
      () => replication(standby),
      (r) => r.streaming === true,
    );
  });

  afterAll(async () => {
    if (!dir) return;
    for (const h of [standby, primary])
      await run(hostCommands(cluster, h).stop({ mode: "immediate", fence: false }, 30));
    rmSync(dir, { recursive: true, force: true });
  });

  it("parseLsn and formatLsn agree with PostgreSQL's own pg_lsn arithmetic", async () => {
    const [text, bytes] = (
      await sql(primary, "SELECT pg_current_wal_lsn(), pg_current_wal_lsn() - '0/0'")
    )
      .trim()
      .split("|");
    expect(parseLsn(text as string)).toBe(Number(bytes));
    expect(formatLsn(parseLsn(text as string))).toBe(text);
    const far = 0xab_cdef0123;
    expect((await sql(primary, `SELECT '0/0'::pg_lsn + ${far}`)).trim()).toBe(formatLsn(far));
  });

  // A PAUSE deadline of 3 s (an inventory's timeouts.pause): the threshold follows it.
  const LONG_S = 3;
  it(`pre-flight's hazards list a transaction open for over the PAUSE deadline: its age, pid, application and state`, async () => {
    const holder = new pg.Client({
      host: "127.0.0.1",
      port,
      user: "postgres",
      database: "postgres",
      application_name: "nightly-report",
    });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      const { rows } = await holder.query("SELECT pg_backend_pid() AS pid");
      const hazards = async () => JSON.parse(await ok(p.sql(hazardsSql(LONG_S)))) as Hazards;
      expect((await hazards()).longTransactions).toEqual([]);
      await new Promise((r) => setTimeout(r, LONG_S * 1000 + 1200));
      const [long, ...more] = (await hazards()).longTransactions;
      expect(more).toEqual([]);
      expect(long).toEqual({
        pid: rows[0].pid,
        ageS: expect.any(Number),
        application: "nightly-report",
        state: "idle in transaction",
      });
      expect(long?.ageS).toBeGreaterThanOrEqual(LONG_S);
    } finally {
      await holder.end();
    }
  }, 30_000);

  it("status exits 0 while the server runs", async () => {
    expect((await run(p.status)).code).toBe(0);
  });

  it("CHECKPOINT moves pg_control's latest checkpoint; pg_control says in production", async () => {
    const before = await controlData(primary);
    await sql(primary, "INSERT INTO t SELECT generate_series(1, 1000)");
    await ok(p.checkpoint);
    const after = await controlData(primary);
    expect(after).toMatchObject({ state: "in production", timeline: 1 });
    expect(after.checkpointLsn).toBeGreaterThan(before.checkpointLsn);
    // What confirmStopped reads in one command says the postmaster still runs.
    const [printed] = splitOutputs(await ok(p.controlDataAndRecord));
    expect(parseStoppedControl(printed)).toMatchObject({ running: true, state: "in production" });
  });

  it("replication: the primary lists its standby, which streams on timeline 1", async () => {
    const onPrimary = await replication(primary);
    expect(onPrimary).toMatchObject({ inRecovery: false, timeline: 1, streaming: false });
    expect(onPrimary.standbys).toEqual([
      expect.objectContaining({ client: "node2", state: "streaming" }),
    ]);
    const onStandby = await replication(standby);
    expect(onStandby).toMatchObject({ inRecovery: true, streaming: true, receiverTimeline: 1 });
    expect(onStandby.lsn).toBe(onStandby.replayLsn);
  });

  it("configureStandby keeps the pair's conninfo keywords, quoted as written, streams through a slot it makes on the upstream, and drops the one it replaces", async () => {
    const keywords = { sslmode: "disable", connect_timeout: "7", passfile: `${dir}/it's here` };
    const slot = { name: "node2_slot", replaces: "node1_slot" };
    const linked = { ...cluster, standbyLink: { keywords, slot } };
    // The slot it replaces, as the old primary's data directory has it.
    await sql(standby, "SELECT pg_create_physical_replication_slot('node1_slot', true)");
    await ok(s.stop({ mode: "fast", fence: false }, 30));
    const configure = hostCommands(linked, standby).configureStandby(primary);
    await ok(configure);
    // Again, as a resumed run does: the slot already there is the one.
    await ok(configure);
    await ok(s.start(30));
    const receiver = await until(
      () => sql(standby, "SELECT slot_name || ' ' || status FROM pg_stat_wal_receiver"),
      (r) => r.trim() === "node2_slot streaming",
    );
    expect(receiver.trim()).toBe("node2_slot streaming");
    expect((await sql(primary, "SELECT active FROM pg_replication_slots")).trim()).toBe("t");
    expect((await sql(standby, "SELECT count(*) FROM pg_replication_slots")).trim()).toBe("0");
    // What pre-flight reads there (hazardsSql), and the link it resolves from it.
    const hazards = async (h: HostSpec) =>
      JSON.parse(await ok(hostCommands(cluster, h).sql(hazardsSql(5))));
    const [onPrimary, onStandby] = [await hazards(primary), await hazards(standby)];
    expect(parseConninfo(onStandby.primaryConninfo)).toEqual({
      ok: true,
      keywords: {
        host: "127.0.0.1",
        port: String(port),
        user: "postgres",
        application_name: "node2",
        ...keywords,
      },
    });
    const link = resolveStandbyLink({
      primary: "node1",
      standby: "node2",
      replicationUser: "postgres",
      conninfo: onStandby.primaryConninfo,
      slotName: onStandby.primarySlotName,
      slotsOnPrimary: onPrimary.physicalSlots,
    });
    expect(link).toMatchObject({
      ok: true,
      link: { keywords, slot: { name: "node1_slot", replaces: "node2_slot" } },
    });
    expect(onPrimary.physicalSlots).toEqual([
      { name: "node2_slot", active: true, address: "127.0.0.1", heldBytes: expect.any(Number) },
    ]);
  });

  it("a fast stop: pg_control shut down, and the standby replays exactly to the end parseWalRecordEnd computes", async () => {
    await sql(primary, "INSERT INTO t SELECT generate_series(1, 500)");
    expect((await run(p.stop({ mode: "fast", fence: false }, 30))).code).toBe(0);
    expect((await run(p.status)).code).toBe(3);
    const control = await controlData(primary);
    expect(control).toMatchObject({ state: "shut down", timeline: 1 });
    // The gate's call: pg_waldump at the checkpoint pg_controldata names, in the same script.
    const [printed, record] = splitOutputs(await ok(p.controlDataAndRecord));
    expect(parseStoppedControl(printed)).toMatchObject({
      running: false,
      checkpointLsn: control.checkpointLsn,
    });
    // pg_ctl status exits 1 on a pid file it cannot read: neither running nor stopped.
    expect(() => parseStoppedControl(printed.replace(/exit: 3/, "exit: 1"))).toThrow(
      "pg_ctl status exited 1: whether a postmaster runs is unknown",
    );
    expect(record).toContain("CHECKPOINT_SHUTDOWN");
    const end = parseWalRecordEnd(record);
    // Oracle 1: a standby's replay position once it has the record (what the gate waits for).
    const replayed = await until(
      () => replication(standby),
      (r) => r.replayLsn >= end,
    );
    expect(formatLsn(replayed.replayLsn)).toBe(formatLsn(end));
    // Oracle 2: pg_waldump read on from the checkpoint to the end of valid WAL. It lists only
    // the checkpoint, then reports the zeroed space where the next record would have begun.
    const rest = await run(waldump(`-s ${formatLsn(control.checkpointLsn)}`));
    expect(rest.out.trim().split("\n")).toHaveLength(1);
    expect(rest.err).toMatch(new RegExp(`invalid record length at ${formatLsn(end)}:`));
    expect((await run(p.start(30))).code).toBe(0);
  });

  it("an immediate stop leaves pg_control in production; start recovers with a new checkpoint", async () => {
    const before = await controlData(primary);
    expect((await run(p.stop({ mode: "immediate", fence: false }, 30))).code).toBe(0);
    expect((await run(p.status)).code).toBe(3);
    expect(existsSync(fenceMarker(primary))).toBe(false);
    expect(await controlData(primary)).toMatchObject({
      state: "in production",
      checkpointLsn: before.checkpointLsn,
    });
    expect((await run(p.start(30))).code).toBe(0);
    expect((await controlData(primary)).checkpointLsn).toBeGreaterThan(before.checkpointLsn);
  });

  it("a fenced stop leaves the fence marker, already stopped or not; the next start clears it", async () => {
    expect((await run(p.stop({ mode: "fast", fence: true }, 30))).code).toBe(0);
    expect((await run(p.status)).code).toBe(3);
    expect(existsSync(fenceMarker(primary))).toBe(true);
    expect((await run(p.stop({ mode: "fast", fence: true }, 30))).code).toBe(0);
    expect(existsSync(fenceMarker(primary))).toBe(true);
    expect((await run(p.start(30))).code).toBe(0);
    expect(existsSync(fenceMarker(primary))).toBe(false);
    expect((await run(p.status)).code).toBe(0);
  });

  it("the fence alone leaves a running server up, marked; the fast stop after it keeps the mark", async () => {
    expect((await run(p.status)).code).toBe(0);
    expect((await run(p.fence)).code).toBe(0);
    expect((await run(p.status)).code).toBe(0);
    expect(existsSync(fenceMarker(primary))).toBe(true);
    expect((await run(p.stop({ mode: "fast", fence: false }, 30))).code).toBe(0);
    expect(existsSync(fenceMarker(primary))).toBe(true);
    expect((await run(p.start(30))).code).toBe(0);
    expect(existsSync(fenceMarker(primary))).toBe(false);
  });

  it("controlData still parses on a host whose locale is not English", async () => {
    const german = { ...process.env, LC_ALL: "C.UTF-8", LANGUAGE: "de" };
    const r = await run(p.controlData, german);
    expect(r.code).toBe(0);
    expect(parseControlData(r.out)).toMatchObject({ state: "in production" });
  });

  it("promote returns once the standby accepts writes, then prints the next timeline's history, as latestTimelineHistory does", async () => {
    const promoted = splitOutputs(await ok(s.promote(30)))[1];
    expect((await sql(standby, "SELECT pg_is_in_recovery()")).trim()).toBe("f");
    const fork = parseTimelineHistory(await ok(s.latestTimelineHistory));
    expect(fork.timeline).toBe(2);
    expect(parseTimelineHistory(promoted)).toEqual(fork);
    expect((await run(s.stop({ mode: "fast", fence: false }, 30))).code).toBe(0);
    expect(existsSync(join(standby.dataDir, "postmaster.pid"))).toBe(false);
    expect((await run(s.status)).code).toBe(3);
    expect((await run(s.stop({ mode: "fast", fence: false }, 30))).code).toBe(0);
  });

  it("parseWalRecordEnd gives where the record ends, also across WAL page boundaries", async () => {
    const from = (await sql(primary, "SELECT pg_current_wal_lsn()")).trim();
    await sql(primary, "INSERT INTO t SELECT generate_series(1, 3000)");
    const to = (await sql(primary, "SELECT pg_current_wal_lsn()")).trim();
    const dump = await run(waldump(`-s ${from} -e ${to}`));
    const records = dump.out.split("\n").filter((l) => l.startsWith("rmgr:"));
    const starts = records.map((l) => /lsn: (\S+),/.exec(l)?.[1]);
    // Oracle: the next record's start, which pg_waldump read where its reader found it. A record
    // ending exactly on a page boundary ends there, and the next one starts past the 24-byte page
    // header (40 at a segment start): the end is that start less the header.
    const endFromNext = (next: number) =>
      next % SEGMENT === 40 ? next - 40 : next % PAGE === 24 ? next - 24 : next;
    const pages = (lsn: number) => Math.floor(lsn / PAGE);
    const pairs = records.slice(1).map((_, i) => ({
      line: records[i] as string,
      start: parseLsn(starts[i] as string),
      end: endFromNext(parseLsn(starts[i + 1] as string)),
    }));
    expect(pairs.filter((r) => pages(r.start) !== pages(r.end - 1)).length).toBeGreaterThan(0);
    const wrong = pairs.filter((r) => parseWalRecordEnd(r.line) !== r.end);
    expect(wrong.map((r) => `${r.line.slice(0, 90)} ends at ${formatLsn(r.end)}`)).toEqual([]);
  });
});

/** A server of its own in a directory of its own, for the other control modes' tests. */
function scratch(prefix: string) {
  const where = problem ? "" : mkdtempSync(join(tmpdir(), prefix));
  return {
    where,
    async own() {
      chownSync(where, Number(await ok({ user: "root", script: "id -u postgres" })), 0);
    },
    remove: () => where && rmSync(where, { recursive: true, force: true }),
  };
}

describe.skipIf(problem !== null && !inCi)(
  "pg_ctl control with a postgresql.conf outside the data directory",
  () => {
    const s3 = scratch("pgsw-conf-");
    const h: HostSpec = {
      ...host("node3", port + 2),
      dataDir: join(s3.where, "data"),
      socketDir: s3.where,
      logFile: join(s3.where, "node3.log"),
      control: { mode: "pg_ctl", configFile: join(s3.where, "etc", "postgresql.conf") },
    };
    const c = hostCommands({ ...cluster, nodes: [h] }, h);
    beforeAll(async () => {
      if (problem) throw new Error(`host command tests need PostgreSQL 15 and root: ${problem}`);
      await s3.own();
      await ok({
        user: "postgres",
        script: `${PG_BIN}/initdb -D ${h.dataDir} -U postgres --auth=trust -N >/dev/null && mkdir ${s3.where}/etc && mv ${h.dataDir}/postgresql.conf ${s3.where}/etc/ && printf '%s\\n' "port = ${h.port}" "listen_addresses = ''" "unix_socket_directories = '${s3.where}'" >> ${s3.where}/etc/postgresql.conf`,
      });
    });
    afterAll(async () => {
      await run(c.stop({ mode: "immediate", fence: false }, 30));
      s3.remove();
    });

    it("starts the server on that file, idempotently, and stops it", async () => {
      expect((await run(c.start(30))).code).toBe(0);
      expect((await run(c.start(30))).code).toBe(0);
      expect((await sql(h, "SHOW config_file")).trim()).toBe(
        join(s3.where, "etc", "postgresql.conf"),
      );
      expect((await run(c.stop({ mode: "fast", fence: true }, 30))).code).toBe(0);
      expect(existsSync(fenceMarker(h))).toBe(true);
      expect((await run(c.status)).code).toBe(3);
    });
  },
);

describe.skipIf(problem !== null && !inCi)(
  "pg_ctlcluster control on a postgresql-common cluster of this machine (no systemd)",
  () => {
    const s4 = scratch("pgsw-cluster-");
    const name = `pgsw_test_${process.pid}`;
    const h: HostSpec = {
      ...host("node4", port + 3),
      dataDir: join(s4.where, "data"),
      socketDir: s4.where,
      logFile: join(s4.where, "node4.log"),
      control: { mode: "pg_ctlcluster", cluster: { version: "15", name } },
    };
    const c = hostCommands({ ...cluster, nodes: [h] }, h);
    const startConf = `/etc/postgresql/15/${name}/start.conf`;
    const word = async () => (await ok({ user: "root", script: readStartConf(startConf) })).trim();
    let created = false;
    beforeAll(async () => {
      if (problem) throw new Error(`host command tests need PostgreSQL 15 and root: ${problem}`);
      if (existsSync("/run/systemd/system"))
        throw new Error("this machine runs systemd: pg_ctlcluster would hand the cluster to it");
      await s4.own();
      await ok({
        user: "root",
        script: `pg_createcluster 15 ${name} -d ${h.dataDir} -p ${h.port} -s ${s4.where} -l ${h.logFile} --start-conf=auto -- --auth=trust -N >/dev/null`,
      });
      created = true;
    });
    afterAll(async () => {
      if (created) await run({ user: "root", script: `pg_dropcluster --stop 15 ${name}` });
      s4.remove();
    });

    it("starts with pg_ctlcluster; a fenced stop sets start.conf manual first; the next start sets auto", async () => {
      expect((await run(c.start(30))).code).toBe(0);
      expect((await run(c.start(30))).code).toBe(0);
      expect((await run(c.status)).code).toBe(0);
      expect(await word()).toBe("auto");
      expect((await run(c.stop({ mode: "fast", fence: true }, 30))).code).toBe(0);
      expect((await run(c.status)).code).toBe(3);
      expect(await word()).toBe("manual");
      expect(await controlDataOf(h)).toMatchObject({ state: "shut down" });
      expect((await run(c.stop({ mode: "fast", fence: true }, 30))).code).toBe(0);
      expect((await run(c.start(30))).code).toBe(0);
      expect(await word()).toBe("auto");
    });

    it("an immediate stop is one (pg_control still in production)", async () => {
      expect((await run(c.stop({ mode: "immediate", fence: false }, 30))).code).toBe(0);
      expect((await run(c.status)).code).toBe(3);
      expect(await controlDataOf(h)).toMatchObject({ state: "in production" });
    });

    it("pre-flight's look finds the cluster as pg_lsclusters lists it, and agrees with the inventory", async () => {
      const facts = parseHostFacts(await ok(hostFactsCommand()));
      expect(facts.systemd).toBe(false);
      expect(facts.clusters.find((x) => x.name === name)).toMatchObject({
        version: "15",
        port: h.port,
        owner: "postgres",
        dataDir: h.dataDir,
        startConf: "auto",
      });
      expect(judgeControl(h, facts).map((x) => x.status)).toEqual(["ok"]);
      expect(judgeControl({ ...h, port: h.port + 100 }, facts)[0]?.detail).toMatch(
        /^field nodes\.node4\.port: /,
      );
    });
  },
);

async function controlDataOf(h: HostSpec) {
  return parseControlData(await ok(hostCommands({ ...cluster, nodes: [h] }, h).controlData));
}
