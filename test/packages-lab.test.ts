import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { describe, expect, it } from "vitest";
import type { HostCommand } from "../hosts/commands.ts";
import { describeFailure, runHostCommand } from "../hosts/transports/docker-exec.ts";
import { labUp } from "../lab/lifecycle.ts";
import { labFiles } from "../lab/ssh-access.ts";
import { labTopology, type NodeName } from "../lab/topology.ts";
import type { JournalEntry } from "../plan/journal.ts";
import type { RealRunReport } from "../verify/run-report.ts";
import { freshLab, labEnvironment } from "./support/lab-env.ts";
import { switchoverCli } from "./support/switchover-cli.ts";

/**
 * The target version and the packages as production hosts have them, on the lab's stock Debian
 * hosts: a held package refused before anything changes (and `--unhold` upgrading it and holding
 * it again), and a bare `15.20` resolved on each host to Debian's build. Run under
 * `flock /tmp/pg-switchover-lab.lock`: the lab is shared.
 */
const MINUTE = 60_000;
const VERSIONS = { from: "15.18", to: "15.20" };
const topology = labTopology("debian");
const progress = (line: string) => process.stderr.write(`  packages-lab: ${line}\n`);
const { skip, problem } = await labEnvironment("package tests against the lab");
const docker = new Docker();

async function root(name: NodeName, script: string): Promise<string> {
  const cmd: HostCommand = { user: "root", script };
  const r = await runHostCommand(docker, topology.nodes[name].container, cmd, MINUTE);
  if (r.exitCode !== 0) throw new Error(`${name}: ${script}: ${describeFailure(r, MINUTE)}`);
  return r.stdout;
}

const switchover = (args: string[], timeout = 10 * MINUTE) => switchoverCli(args, timeout);

const installed = (name: NodeName, pkg = "postgresql-15") =>
  root(name, `dpkg-query -W -f='\${Version}' ${pkg}`).then((v) => v.trim());
const journalOf = (path: string) =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalEntry);
const journalStart = (path: string) => journalOf(path).find((e) => e.kind === "start");

describe.skipIf(skip)("held packages, over SSH as production", () => {
  freshLab(() => labUp(VERSIONS, progress), progress, problem);
  const dir = mkdtempSync(join(tmpdir(), "pgs-packages-"));

  it("pre-flight refuses a held postgresql-15, naming the host and the command that unholds it; nothing changes", async () => {
    await root("node2", "apt-mark hold postgresql-15");
    const r = await switchover(["run", "--inventory", labFiles().inventory, "--dry-run"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      "[FAIL] held packages on node2: node2: postgresql-15 held (apt-mark showhold): `sudo apt-mark unhold postgresql-15`, or run with --unhold (held again after the upgrade)",
    );
    expect(r.stderr).toContain("[ok]   held packages on node1");
    expect(r.stderr).toContain(
      "[ok]   target version 15.20: 15.20-0+deb12u1 on node1 and node2, for the upgrade set of each (node1: libpq5, postgresql-15, postgresql-client-15; node2: libpq5, postgresql-15, postgresql-client-15)",
    );
    expect(r.stderr).toMatch(
      /pre-flight failed \([^)]*held packages on node2[^)]*\): nothing changed/,
    );
    expect(r.stderr).toContain("[ok]   node1 connects to node2 for replication: as replicator to");
    expect(await installed("node2")).toBe("15.18-0+deb12u1");
    // libpq5 as on a host installed at 15.18: its own build, part of the upgrade set.
    expect(await installed("node2", "libpq5")).toBe("15.18-0+deb12u1");
    expect(await root("node2", "apt-mark showhold")).toBe("postgresql-15\n");
  });

  it("pre-flight refuses a standby whose pg_hba.conf would keep the old primary from streaming back", async () => {
    const hba = "/etc/postgresql/15/main/pg_hba.conf";
    const reload = "systemctl reload postgresql@15-main";
    const from = topology.nodes.node1.address;
    await root("node2", `sed -i '1i host replication all ${from}/32 reject' ${hba} && ${reload}`);
    try {
      const r = await switchover(["run", "--inventory", labFiles().inventory, "--dry-run"]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        /\[FAIL\] node1 connects to node2 for replication: node1: .*pg_hba\.conf rejects replication connection.*: after the switchover it could not stream from node2/,
      );
    } finally {
      await root("node2", `sed -i '1d' ${hba} && ${reload}`);
    }
  });

  it("--unhold: the bare 15.20 resolved to 15.20-0+deb12u1, the held package upgraded and held again", async () => {
    const journal = join(dir, "unhold.jsonl");
    const r = await switchover([
      "run",
      "--inventory",
      labFiles().inventory,
      "--unhold",
      "--yes",
      "--json",
      "--journal",
      journal,
    ]);
    if (r.code !== 0) process.stderr.write(r.stderr.slice(-4000));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      "[warn] held packages on node2: node2: postgresql-15 held: --unhold unholds them",
    );
    const report = JSON.parse(r.stdout) as RealRunReport;
    progress(
      `outage ${report.outageMs} ms, lost ${report.lostWrites}, rejoin ${JSON.stringify(report.rejoin)}, plan ${report.planMs} ms`,
    );
    expect(report).toMatchObject({ status: "done", verdict: "ok" });
    expect(journalStart(journal)).toMatchObject({
      input: { targetVersion: "15.20-0+deb12u1" },
    });
    // The whole upgrade set moved: libpq5 with the server and client, still marked as
    // installed automatically (apt-get install of a named package marks it manual).
    for (const n of ["node1", "node2"] as const) {
      for (const pkg of ["postgresql-15", "postgresql-client-15", "libpq5"])
        expect(await installed(n, pkg)).toBe("15.20-0+deb12u1");
      expect(await root(n, "apt-mark showauto libpq5 postgresql-15")).toBe("libpq5\n");
    }
    expect(await root("node2", "apt-mark showhold")).toBe("postgresql-15\n");
    expect(await root("node1", "apt-mark showhold")).toBe("");
    // The journal says what --unhold did, per host.
    const upgrades = journalOf(journal).flatMap((e) =>
      e.kind === "call" && e.op === "upgradePackages" ? [e] : [],
    );
    expect(upgrades.map((e) => [e.args[0], e.ok, e.said])).toEqual([
      ["node2", true, "unheld postgresql-15; held again postgresql-15"],
      ["node1", true, undefined],
    ]);
    const said = await switchover(["report", journal]);
    expect(said.stdout).toContain(
      'upgradePackages("node2", "15.20-0+deb12u1"): unheld postgresql-15; held again postgresql-15',
    );
  });
});

describe.skipIf(skip)("rehearse with a bare --to", () => {
  freshLab(() => labUp(VERSIONS, progress), progress, problem);

  it("rehearse --to 15.20 installs 15.20-0+deb12u1, resolved on each host with apt-cache madison", async () => {
    const journal = join(mkdtempSync(join(tmpdir(), "pgs-packages-")), "rehearse.jsonl");
    const r = await switchover([
      "rehearse",
      "--to",
      "15.20",
      "--rate",
      "50",
      "--json",
      "--journal",
      journal,
    ]);
    if (r.code !== 0) process.stderr.write(r.stderr.slice(-4000));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/node1 → node2, to 15\.20-0\+deb12u1, journal/);
    expect(journalStart(journal)).toMatchObject({ input: { targetVersion: "15.20-0+deb12u1" } });
    const report = JSON.parse(r.stdout) as RealRunReport;
    progress(
      `outage ${report.outageMs} ms, lost ${report.lostWrites}, rejoin ${JSON.stringify(report.rejoin)}, plan ${report.planMs} ms`,
    );
    expect(report).toMatchObject({
      status: "done",
      verdict: "ok",
      lostWrites: 0,
      versions: { node1: "15.20", node2: "15.20" },
    });
  });
});
