import Docker from "dockerode";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { debianVersion } from "../hosts/commands.ts";
import { findArchives, parseDeb822, parseOneLine } from "../lab/apt-sources.ts";
import { labImageTags } from "../lab/image.ts";
import { labDown, labStatus, labUp } from "../lab/lifecycle.ts";
import { lsnDiff } from "../lab/status.ts";
import { LAB_LABEL, labTopology } from "../lab/topology.ts";
import { checkUpgradePath } from "../lab/versions.ts";
import { freshLab, labEnvironment } from "./support/lab-env.ts";

/**
 * Integration tests against the real lab (Docker, Debian packages, PostgreSQL 15).
 * Without a Docker engine they are skipped, loudly; in CI (CI=true) they fail instead.
 * They remove any existing lab first (`lab down`) and at the end.
 */

const MINUTE = 60_000;
const VERSIONS = { from: "15.18", to: "15.20" };
const topology = labTopology();
const progress = (line: string) => process.stderr.write(`  lab: ${line}\n`);

const { skip, problem } = await labEnvironment("lab integration tests");

describe("lab helpers (no Docker needed)", () => {
  it("reads the bookworm and bookworm-security archives from deb822 sources", () => {
    const entries = parseDeb822(
      "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\n" +
        "Types: deb\nURIs: http://mirror.example/debian-security/\nSuites: bookworm-security\n",
    );
    expect(findArchives(entries)).toEqual({
      ok: true,
      archives: {
        mirror: "http://mirror.example/debian",
        security: "http://mirror.example/debian-security",
      },
    });
  });

  it("reads one-line sources and says what is missing", () => {
    const entries = parseOneLine(
      "deb [arch=amd64] http://m.example/debian bookworm main\n# deb http://x y z\n",
    );
    expect(findArchives(entries)).toEqual({
      ok: false,
      reason: "no apt source serves suite bookworm-security",
    });
  });

  it("accepts 15.N upgrades only, and maps them to Debian versions", () => {
    expect(checkUpgradePath("15.18", "15.20")).toEqual({ ok: true });
    expect(checkUpgradePath("15.20", "15.18").ok).toBe(false);
    expect(checkUpgradePath("16.1", "16.2").ok).toBe(false);
    expect(debianVersion("15.18")).toBe("15.18-0+deb12u1");
  });

  it("measures lag in bytes between LSNs", () => {
    expect(lsnDiff("1/0", "0/FFFFFF00")).toBe(256);
  });

  it("tags each host kind's image by its own inputs: the same inputs, the same tags", () => {
    const inputs = {
      baseImage: "pg-switchover/base:bookworm",
      from: "15.18",
      to: "15.20",
      archives: { mirror: "http://m.example/debian", security: "http://m.example/debian-security" },
    };
    const tags = labImageTags(inputs);
    expect(tags.debian).toMatch(/^pg-switchover\/lab:15\.18-debian-[0-9a-f]{12}$/);
    expect(tags.pg_ctl).toMatch(/^pg-switchover\/lab:15\.18-pgctl-[0-9a-f]{12}$/);
    expect(labImageTags(inputs)).toEqual(tags);
    const later = labImageTags({ ...inputs, to: "15.21" });
    expect(later.apt).toBe(tags.apt);
    expect([later.debian, later.pg_ctl]).not.toContain(tags.debian);
  });
});

describe.skipIf(skip)("lab (real containers)", () => {
  const lab = freshLab(() => labUp(VERSIONS, progress), progress, problem);

  it("has node1 as primary, node2 as streaming standby, and the VIP on node1", () => {
    const [node1, node2] = lab().nodes;
    expect(node1).toMatchObject({
      name: "node1",
      running: true,
      postgres: "up",
      role: "primary",
      version: "15.18",
    });
    expect(node2).toMatchObject({
      name: "node2",
      running: true,
      postgres: "up",
      role: "standby",
      walReceiver: "streaming",
    });
    expect(node1?.timeline).toBe(1);
    expect(lab().vip).toMatchObject({
      address: topology.vip,
      holder: "node1",
      holders: ["node1"],
    });
  });

  it(
    "takes a write through the VIP from the host, readable on node2 once it caught up",
    async () => {
      const marker = `written-${process.pid}`;
      await withClient(lab().vip.uri, async (primary) => {
        expect((await primary.query("select pg_is_in_recovery() as r")).rows[0].r).toBe(false);
        await primary.query("create table if not exists lab_probe (note text)");
        await primary.query("insert into lab_probe values ($1)", [marker]);
      });
      const standbyUri = `postgresql://postgres@${topology.nodes.node2.address}:5432/postgres`;
      await expect(readEventually(standbyUri, marker, 30_000)).resolves.toBe(true);
    },
    MINUTE,
  );

  it(
    "gives one lab when brought up twice",
    async () => {
      await labUp(VERSIONS, progress);
      const docker = new Docker();
      const filters = { label: [`${LAB_LABEL}=1`] };
      expect(await docker.listContainers({ all: true, filters })).toHaveLength(2);
      expect(await docker.listNetworks({ filters })).toHaveLength(1);
      expect((await docker.listVolumes({ filters })).Volumes).toHaveLength(2);
      const again = await labStatus();
      expect(again.vip.holders).toEqual(["node1"]);
      expect(again.nodes.map((n) => n.role)).toEqual(["primary", "standby"]);
    },
    10 * MINUTE,
  );

  it(
    "brings the same data back after both containers were stopped",
    async () => {
      await withClient(lab().vip.uri, (c) =>
        c.query("insert into lab_probe values ('before-stop')"),
      );
      const docker = new Docker();
      await Promise.all(
        Object.values(topology.nodes).map((n) => docker.getContainer(n.container).stop()),
      );
      expect((await labStatus()).nodes.map((n) => n.running)).toEqual([false, false]);
      const back = await labUp(VERSIONS, progress);
      expect(back.vip.holder).toBe("node1");
      expect(back.nodes.map((n) => n.role)).toEqual(["primary", "standby"]);
      const notes = await withClient(lab().vip.uri, (c) => c.query("select note from lab_probe"));
      expect(notes.rows.map((r) => r.note)).toContain("before-stop");
      const standbyUri = `postgresql://postgres@${topology.nodes.node2.address}:5432/postgres`;
      await expect(readEventually(standbyUri, "before-stop", 30_000)).resolves.toBe(true);
    },
    10 * MINUTE,
  );

  it(
    "leaves no container, network or volume with the lab label after down",
    async () => {
      await labDown(progress);
      const docker = new Docker();
      const filters = { label: [`${LAB_LABEL}=1`] };
      expect(await docker.listContainers({ all: true, filters })).toHaveLength(0);
      expect(await docker.listNetworks({ filters })).toHaveLength(0);
      expect((await docker.listVolumes({ filters })).Volumes ?? []).toHaveLength(0);
    },
    5 * MINUTE,
  );
});

async function withClient<T>(uri: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: uri, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Polls the standby until it has replayed the row, or the deadline passes. */
async function readEventually(uri: string, note: string, deadlineMs: number): Promise<boolean> {
  const started = performance.now();
  while (performance.now() - started < deadlineMs) {
    const found = await withClient(uri, (c) =>
      c.query("select 1 from lab_probe where note = $1", [note]).then((r) => r.rowCount === 1),
    ).catch(() => false);
    if (found) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}
