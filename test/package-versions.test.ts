import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { exampleCluster } from "../cli/plan.ts";
import { parseReplication } from "../hosts/host-executor.ts";
import { parseInventory } from "../hosts/inventory/load.ts";
import {
  heldProblem,
  missingToolsProblem,
  packageFactsCommand,
  parsePackageFacts,
  resolveOnHost,
  resolveOnPair,
} from "../hosts/package-versions.ts";
import { BOOKWORM_PACKAGE_LINES } from "./support/apt-lines.ts";

const cluster = exampleCluster();

const DEBIAN = BOOKWORM_PACKAGE_LINES;
/** The same host with apt.postgresql.org's bookworm-pgdg added. */
const WITH_PGDG = [
  ...DEBIAN,
  "candidate postgresql-15 15.20-1.pgdg120+1 bookworm-pgdg",
  "candidate postgresql-15 15.18-1.pgdg120+1 bookworm-pgdg",
  "candidate postgresql-client-15 15.20-1.pgdg120+1 bookworm-pgdg",
  "candidate postgresql-client-15 15.18-1.pgdg120+1 bookworm-pgdg",
];
const facts = (lines: string[]) => parsePackageFacts(cluster, lines.join("\n"));

describe("the target version, resolved on each host", () => {
  it("a bare release is the one build apt-cache madison has of it", () => {
    expect(resolveOnHost(cluster, "node1", facts(DEBIAN), "15.20")).toEqual({
      ok: true,
      version: "15.20-0+deb12u1",
    });
  });

  it("a bare release with Debian's and PGDG's builds is ambiguous: both named, and the way out", () => {
    expect(resolveOnHost(cluster, "node1", facts(WITH_PGDG), "15.20")).toEqual({
      ok: false,
      reason:
        "node1: 15.20 is ambiguous, apt-cache madison postgresql-15 lists 15.20-0+deb12u1 and 15.20-1.pgdg120+1: give upgrade.version the full one",
    });
    expect(resolveOnHost(cluster, "node1", facts(WITH_PGDG), "15.20-1.pgdg120+1")).toEqual({
      ok: true,
      version: "15.20-1.pgdg120+1",
    });
  });

  it("a release or a build apt does not have is refused, naming the host and what it lists", () => {
    expect(resolveOnHost(cluster, "node2", facts(DEBIAN), "15.21")).toEqual({
      ok: false,
      reason:
        "node2: apt-cache madison postgresql-15 has no 15.21 (it lists 15.20-0+deb12u1 (bookworm-security), 15.18-0+deb12u1 (bookworm); are the host's apt lists current?)",
    });
    const noClient = DEBIAN.filter((l) => !l.includes("client-15 15.20"));
    expect(resolveOnHost(cluster, "node2", facts(noClient), "15.20")).toMatchObject({
      ok: false,
      reason:
        "node2: apt-cache madison postgresql-client-15 has no 15.20-0+deb12u1 (it lists 15.18-0+deb12u1 (bookworm))",
    });
  });

  it("the host's whole upgrade set must have the build: a libpq5 of the server's source without it is refused", () => {
    const withLibpq = [
      ...DEBIAN,
      "installed libpq5 15.18-0+deb12u1",
      "candidate libpq5 15.18-0+deb12u1 bookworm",
    ];
    expect(facts(withLibpq).set).toEqual(["libpq5", "postgresql-15", "postgresql-client-15"]);
    expect(resolveOnHost(cluster, "node1", facts(withLibpq), "15.20")).toEqual({
      ok: false,
      reason:
        "node1: apt-cache madison libpq5 has no 15.20-0+deb12u1 (it lists 15.18-0+deb12u1 (bookworm))",
    });
    const complete = [...withLibpq, "candidate libpq5 15.20-0+deb12u1 bookworm-security"];
    expect(resolveOnHost(cluster, "node1", facts(complete), "15.20")).toMatchObject({ ok: true });
  });

  it("a pair whose hosts would install two builds of the release is refused", () => {
    const pgdgOnly = WITH_PGDG.filter((l) => !l.includes("15.20-0+deb12u1"));
    expect(
      resolveOnPair(cluster, "15.20", [
        { node: "node1", facts: facts(DEBIAN) },
        { node: "node2", facts: facts(pgdgOnly) },
      ]),
    ).toEqual({
      ok: false,
      reason:
        "15.20 is 15.20-0+deb12u1 on node1 but 15.20-1.pgdg120+1 on node2: give upgrade.version the one build both should run",
    });
  });

  it("a held package of the upgrade names the command that unholds it; arping missing names its package", () => {
    const held = facts([...DEBIAN, "held postgresql-15", "held linux-image-amd64"]);
    expect(heldProblem("node1", held)).toBe(
      "node1: postgresql-15 held (apt-mark showhold): `sudo apt-mark unhold postgresql-15`, or run with --unhold (held again after the upgrade)",
    );
    expect(heldProblem("node1", facts(DEBIAN))).toBeNull();
    const noArping = facts(DEBIAN.map((l) => (l === "tool arping yes" ? "tool arping no" : l)));
    expect(missingToolsProblem("node2", noArping)).toBe(
      "node2: arping not found (the VIP steps run them as root): `sudo apt-get install iputils-arping`",
    );
  });

  it("the look reads this machine's dpkg and apt as apt-cache madison lists them", () => {
    const out = execFileSync("sh", ["-c", packageFactsCommand(cluster).script], {
      encoding: "utf8",
    });
    const seen = parsePackageFacts(cluster, out);
    const madison = execFileSync("apt-cache", ["madison", "postgresql-15"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.trim().endsWith(" Packages"))
      .map((l) => l.split("|")[1]?.trim());
    expect(seen.candidates["postgresql-15"]?.map((c) => c.version)).toEqual(madison);
    expect(seen.candidates["postgresql-15"]?.every((c) => /^bookworm/.test(c.from))).toBe(true);
    expect(seen.tools.ip).toBe(true);
    // The set, asked of dpkg package by package: every installed package whose source is the
    // server package's (libpq5 among them on Debian), and the configured ones.
    const dpkg = (format: string, ...pkgs: string[]) =>
      execFileSync("dpkg-query", ["-W", `-f=${format}`, ...pkgs], { encoding: "utf8" });
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format
    const source = dpkg("${source:Package}", "postgresql-15");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format
    const sameSource = dpkg("${Package} ${source:Package} ${db:Status-Abbrev}\\n")
      .split("\n")
      .map((l) => l.split(" "))
      .filter(([, src, status]) => src === source && /^[ih]i/.test(status ?? ""))
      .map(([name]) => name as string);
    expect(seen.set).toEqual([...new Set([...sameSource, ...cluster.packages])].sort());
    expect(seen.set).toEqual(expect.arrayContaining(cluster.packages));
    for (const p of seen.set) expect(seen.installed[p]).toMatch(/^15\./);
  });
});

describe("the inventory's upgrade.version", () => {
  const inventory = (version: string) => `
nodes:
  db1: { address: 10.0.0.11, ssh: { user: deploy, agent: true } }
  db2: { address: 10.0.0.12, ssh: { user: deploy, agent: true } }
primary: db1
standby: db2
vip: { address: 10.0.0.10, prefix: 24, interface: eth0 }
upgrade: { version: "${version}" }
`;
  it.each(["15.20", "15.20-0+deb12u1", "15.20-1.pgdg120+1", "1:15.20-1"])("accepts %s", (v) => {
    expect(parseInventory(inventory(v), "pair.yaml").targetVersion).toBe(v);
  });
  it("refuses a version that is neither, naming the field and the shapes", () => {
    expect(() => parseInventory(inventory("15.20 latest"), "pair.yaml")).toThrow(
      /pair\.yaml: field upgrade\.version: expected a release such as "15\.20" or a full Debian version/,
    );
    expect(() => parseInventory(inventory("15"), "pair.yaml")).toThrow(/upgrade\.version/);
  });
});

describe("the standby in the primary's pg_stat_replication", () => {
  /** REPLICATION_SQL's row on node1 (192.0.2.11) with Barman's pg_receivewal listed first. */
  const row = (standbys: object[]) =>
    JSON.stringify({
      inRecovery: false,
      timeline: 1,
      lsn: "0/5000000",
      receiveLsn: null,
      replayLsn: null,
      streaming: false,
      receiverTimeline: null,
      standbys,
    });
  const barman = {
    client: "barman_receive_wal",
    address: "192.0.2.50",
    state: "streaming",
    sentLsn: "0/5000000",
    replayLsn: null,
  };
  const standby = (client: string) => ({
    client,
    address: "192.0.2.12",
    state: "streaming",
    sentLsn: "0/5000000",
    replayLsn: "0/4FFF000",
  });

  it("is found by its address when its application_name is Debian's cluster_name, never by position", () => {
    const r = parseReplication(cluster, "node1", row([barman, standby("15/main")]));
    expect(r.standbys.map((s) => s.client)).toEqual(["barman_receive_wal", "node2"]);
  });

  it("is the row its application_name names, even when another client connects from its address", () => {
    const backup = { ...standby("pg_basebackup"), replayLsn: null };
    const r = parseReplication(cluster, "node1", row([backup, standby("node2")]));
    expect(r.standbys.map((s) => s.client)).toEqual(["pg_basebackup", "node2"]);
    // Two unnamed clients from the standby's address: neither is taken for it.
    const two = parseReplication(cluster, "node1", row([backup, standby("walreceiver")]));
    expect(two.standbys.map((s) => s.client)).toEqual(["pg_basebackup", "walreceiver"]);
  });
});
