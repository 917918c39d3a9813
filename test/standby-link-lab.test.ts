import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { systemClock } from "../core/clock.ts";
import { waitFor } from "../core/wait.ts";
import { labHost } from "../lab/hosts.ts";
import { labUp } from "../lab/lifecycle.ts";
import { asRoot, mustRun } from "../lab/postgres.ts";
import { labFiles } from "../lab/ssh-access.ts";
import { labTopology, type NodeName } from "../lab/topology.ts";
import type { RealRunReport } from "../verify/run-report.ts";
import { freshLab, labEnvironment } from "./support/lab-env.ts";
import { switchoverCli } from "./support/switchover-cli.ts";

/**
 * The pair's replication link as production has it, on the lab's stock Debian hosts: the
 * standby streams through a slot with its own conninfo keywords, the primary archives and has
 * another slot. Pre-flight says what it will do with each; the run rebuilds the old primary
 * with the same keywords and a slot of its own on the new primary. Run under
 * `flock /tmp/pg-switchover-lab.lock`: the lab is shared.
 */
const MINUTE = 60_000;
const topology = labTopology("debian");
const progress = (line: string) => process.stderr.write(`  standby-link-lab: ${line}\n`);
const { skip, problem } = await labEnvironment("replication link tests against the lab");
const docker = new Docker();

const sql = (name: NodeName, statement: string) =>
  mustRun(docker, labHost(topology, name), "psql", labHost(topology, name).commands.sql(statement));
const root = (name: NodeName, script: string) =>
  mustRun(docker, labHost(topology, name), script, asRoot(script), 2 * MINUTE);
/** A restart, then until node2 streams from node1 again (pre-flight checks it does). */
const restart = async (name: NodeName) => {
  await root(name, "systemctl restart postgresql@15-main");
  await waitFor(
    async () =>
      (
        await sql("node1", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
      ).trim() === "1" || undefined,
    { clock: systemClock, everyMs: 200, deadlineMs: MINUTE },
  );
};
const KEPT = "sslmode=disable keepalives_idle=30 passfile=/var/lib/postgresql/.pgpass";

describe.skipIf(skip)("slots, conninfo keywords and archiving, over SSH as production", () => {
  freshLab(() => labUp({ from: "15.18", to: "15.20" }, progress), progress, problem);
  const inventory = () => labFiles().inventory;

  it("pre-flight: keywords kept, the slot carried, another slot named, a standby that would not archive refused", async () => {
    const node1 = topology.nodes.node1.address;
    await sql("node1", "SELECT pg_create_physical_replication_slot('node2_slot')");
    await sql("node1", "SELECT pg_create_physical_replication_slot('barman', true)");
    await sql("node2", "ALTER SYSTEM SET primary_slot_name = 'node2_slot'");
    await sql(
      "node2",
      `ALTER SYSTEM SET primary_conninfo = 'host=${node1} port=5432 user=replicator application_name=node2 ${KEPT}'`,
    );
    await sql("node2", "SELECT pg_reload_conf()");
    await sql("node1", "ALTER SYSTEM SET archive_mode = 'on'");
    await sql("node1", "ALTER SYSTEM SET archive_command = 'true'");
    await restart("node1");
    const r = await switchoverCli(["run", "--inventory", inventory(), "--dry-run"], 5 * MINUTE);
    process.stderr.write(
      r.stderr
        .split("\n")
        .filter((l) => /slot|conninfo|archiv/.test(l))
        .join("\n"),
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      "[ok]   primary_conninfo kept: sslmode=disable keepalives_idle=30 passfile=/var/lib/postgresql/.pgpass, as node2's primary_conninfo has them",
    );
    expect(r.stderr).toContain(
      "[ok]   replication slots: node2 streams through slot 'node2_slot' on node1: the rejoin moves it: slot 'node1_slot' made on node2 for node1",
    );
    expect(r.stderr).toMatch(
      /\[warn\] slots lost at the promotion: node1: 'barman' \(inactive, holds \d+ MiB of WAL\) not on node2/,
    );
    expect(r.stderr).toContain(
      "[FAIL] archiving on node2 once promoted: node2: archive_mode off while node1 archives (on)",
    );
  });

  it("the run rebuilds the old primary with the kept keywords, streaming through its slot on the new primary", async () => {
    await sql("node2", "ALTER SYSTEM SET archive_mode = 'on'");
    await sql("node2", "ALTER SYSTEM SET archive_command = 'true'");
    await restart("node2");
    const journal = join(mkdtempSync(join(tmpdir(), "pgs-link-")), "run.jsonl");
    const r = await switchoverCli(
      ["run", "--inventory", inventory(), "--yes", "--json", "--journal", journal],
      8 * MINUTE,
    );
    if (r.code !== 0) process.stderr.write(r.stderr.slice(-4000));
    expect(r.stderr).toContain(
      "[ok]   archiving on node2 once promoted: archive_mode on, archive_command 'true'",
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as RealRunReport;
    progress(
      `outage ${report.outageMs} ms, lost ${report.lostWrites}, rejoin ${JSON.stringify(report.rejoin)}, plan ${report.planMs} ms`,
    );
    expect(report).toMatchObject({ status: "done", verdict: "ok" });
    // Journaled with the run's input: a resumed run rebuilds with the same link.
    const start = readFileSync(journal, "utf8").split("\n", 1)[0] as string;
    expect(JSON.parse(start)).toMatchObject({
      kind: "start",
      input: {
        standbyLink: {
          keywords: { sslmode: "disable", keepalives_idle: "30" },
          slot: { name: "node1_slot", replaces: "node2_slot" },
        },
      },
    });
    const conninfo = (await sql("node1", "SHOW primary_conninfo")).trim();
    progress(`node1 primary_conninfo: ${conninfo}`);
    expect(conninfo).toBe(
      `host=${topology.nodes.node2.address} port=5432 user=replicator application_name=node1 ${KEPT}`,
    );
    const receiver = (
      await sql("node1", "SELECT slot_name || ' ' || status FROM pg_stat_wal_receiver")
    ).trim();
    expect(receiver).toBe("node1_slot streaming");
    const slots = await sql(
      "node2",
      "SELECT slot_name || ' ' || active FROM pg_replication_slots ORDER BY 1",
    );
    progress(
      `slots on node2: ${slots.trim().replaceAll("\n", ", ")}; on node1: ${(await sql("node1", "SELECT string_agg(slot_name || ' ' || active, ', ') FROM pg_replication_slots")).trim()}`,
    );
    expect(slots.trim()).toBe("node1_slot true");
    expect(
      (await sql("node1", "SELECT string_agg(slot_name, ', ') FROM pg_replication_slots")).trim(),
    ).toBe("barman");
  });
});
