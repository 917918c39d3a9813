import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { exampleCluster } from "../cli/plan.ts";
import { productionTimeouts } from "../core/timeouts.ts";
import type { HostSpec } from "../hosts/commands.ts";
import { parsePackageFacts } from "../hosts/package-versions.ts";
import { judge, type NodeFacts, type PreflightInput } from "../hosts/preflight.ts";
import { addKnownHost, checkHostKey, knownHostName } from "../hosts/transports/known-hosts.ts";
import { remoteCommand, SshConnections } from "../hosts/transports/ssh.ts";
import { isEncrypted, KeyRing, SshKeyError } from "../hosts/transports/ssh-keys.ts";
import { initialContext, newRunId } from "../plan/context.ts";
import { reconcile } from "../plan/reconcile.ts";
import { BOOKWORM_PACKAGE_LINES } from "./support/apt-lines.ts";

/** An SSH public key blob: the key type as an SSH string, then the key bytes. */
function blob(type: string, fill: number): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.alloc(32, fill)]);
}

describe("known_hosts", () => {
  const file = join(mkdtempSync(join(tmpdir(), "pgs-kh-")), "known_hosts");
  const key = blob("ssh-ed25519", 1);
  const other = blob("ssh-ed25519", 2);

  it("an unknown host, then the same key accepted, a different one refused as changed", () => {
    expect(checkHostKey(file, "10.0.0.11", key)).toEqual({ ok: false, why: "unknown" });
    addKnownHost(file, "10.0.0.11", key);
    expect(readFileSync(file, "utf8")).toBe(`10.0.0.11 ssh-ed25519 ${key.toString("base64")}\n`);
    expect(checkHostKey(file, "10.0.0.11", key)).toEqual({ ok: true });
    expect(checkHostKey(file, "10.0.0.11", other)).toEqual({ ok: false, why: "changed" });
    expect(checkHostKey(file, "10.0.0.12", key)).toEqual({ ok: false, why: "unknown" });
  });

  it("a key accepted on first use lands on a line of its own, even after a last line without newline", () => {
    const edited = join(mkdtempSync(join(tmpdir(), "pgs-kh-")), "known_hosts");
    writeFileSync(edited, `10.0.0.12 ssh-ed25519 ${other.toString("base64")}`);
    addKnownHost(edited, "10.0.0.11", key);
    expect(checkHostKey(edited, "10.0.0.11", key)).toEqual({ ok: true });
    expect(checkHostKey(edited, "10.0.0.12", other)).toEqual({ ok: true });
  });

  it("reads hashed host names and ports other than 22 as OpenSSH writes them", () => {
    const salt = Buffer.alloc(20, 7);
    const name = knownHostName("db.example", 2222);
    expect(name).toBe("[db.example]:2222");
    const hash = createHmac("sha1", salt).update(name).digest("base64");
    const hashed = join(mkdtempSync(join(tmpdir(), "pgs-kh-")), "known_hosts");
    writeFileSync(
      hashed,
      `# comment\n|1|${salt.toString("base64")}|${hash} ssh-ed25519 ${key.toString("base64")}\n`,
    );
    expect(checkHostKey(hashed, name, key)).toEqual({ ok: true });
    expect(checkHostKey(hashed, "db.example", key)).toEqual({ ok: false, why: "unknown" });
  });
});

describe("known_hosts patterns and markers", () => {
  const key = blob("ssh-ed25519", 1);
  const other = blob("ssh-ed25519", 2);
  const file = (text: string) => {
    const f = join(mkdtempSync(join(tmpdir(), "pgs-kh-")), "known_hosts");
    writeFileSync(f, text);
    return f;
  };
  const k = key.toString("base64");

  it("wildcards and negations select hosts as OpenSSH reads them", () => {
    const f = file(`*.db.example,!old.db.example ssh-ed25519 ${k}\n10.0.0.? ssh-ed25519 ${k}\n`);
    expect(checkHostKey(f, "pg1.db.example", key)).toEqual({ ok: true });
    expect(checkHostKey(f, "old.db.example", key)).toEqual({ ok: false, why: "unknown" });
    expect(checkHostKey(f, "10.0.0.7", key)).toEqual({ ok: true });
    expect(checkHostKey(f, "10.0.0.17", key)).toEqual({ ok: false, why: "unknown" });
    expect(checkHostKey(f, "pg1xdb.example", key)).toEqual({ ok: false, why: "unknown" });
    expect(checkHostKey(f, "pg1.db.example", other)).toEqual({ ok: false, why: "changed" });
  });

  it("a @revoked key is refused even where a plain line accepts it", () => {
    const f = file(`@revoked * ssh-ed25519 ${k}\n10.0.0.11 ssh-ed25519 ${k}\n`);
    expect(checkHostKey(f, "10.0.0.11", key)).toEqual({ ok: false, why: "revoked" });
  });

  it("a host known only through @cert-authority is named as such, not taken as unknown", () => {
    const f = file(`@cert-authority *.db.example ssh-ed25519 ${other.toString("base64")}\n`);
    expect(checkHostKey(f, "pg1.db.example", key)).toEqual({ ok: false, why: "caOnly" });
    expect(checkHostKey(f, "10.0.0.11", key)).toEqual({ ok: false, why: "unknown" });
  });
});

describe("SSH keys", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgs-keys-"));
  const keygen = (name: string, passphrase: string, pem = false) => {
    const file = join(dir, name);
    execFileSync("ssh-keygen", [
      "-q",
      "-t",
      pem ? "ecdsa" : "ed25519",
      ...(pem ? ["-m", "PEM"] : []),
      "-N",
      passphrase,
      "-f",
      file,
    ]);
    return file;
  };
  const clear = keygen("clear", "");
  const encrypted = keygen("encrypted", "s3cret");
  const pem = keygen("pem", "s3cret", true);

  it("tells an encrypted key from a clear one by the file itself, in both formats", () => {
    expect(isEncrypted(readFileSync(clear))).toBe(false);
    expect(isEncrypted(readFileSync(encrypted))).toBe(true);
    expect(isEncrypted(readFileSync(pem))).toBe(true);
  });

  it("asks an encrypted key's passphrase once, refuses a wrong one, and says what to do without a way to ask", async () => {
    const asked: string[] = [];
    const ring = new KeyRing(async (f) => {
      asked.push(f);
      return "s3cret";
    });
    expect(await ring.load(clear)).toEqual({ privateKey: readFileSync(clear) });
    expect(await ring.load(encrypted)).toMatchObject({ passphrase: "s3cret" });
    await ring.load(encrypted);
    expect(await ring.load(pem)).toMatchObject({ passphrase: "s3cret" });
    expect(asked).toEqual([encrypted, pem]);
    await expect(new KeyRing(async () => "wrong").load(encrypted)).rejects.toThrow(
      `${encrypted}: wrong passphrase for the SSH key`,
    );
    await expect(new KeyRing(null).load(encrypted)).rejects.toThrow(
      /the key is encrypted and there is no terminal to ask its passphrase: load it into ssh-agent \(agent: true\), or set SWITCHOVER_SSH_PASSPHRASE/,
    );
    await expect(new KeyRing(null).load(join(dir, "missing"))).rejects.toThrow(SshKeyError);
  });
});

describe("an unreachable host", () => {
  it("fails its command as ssh does (exit 255, nothing sent), so a step may try again", async () => {
    // A loopback port nothing listens on: the connection is refused at once.
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const connections = new SshConnections({
      targets: {
        db1: { host: "127.0.0.1", port, user: "deploy", keyFile: null, agent: false, jump: null },
      },
      knownHosts: join(mkdtempSync(join(tmpdir(), "pgs-kh-")), "known_hosts"),
      acceptNewHostKeys: false,
      connectTimeoutMs: 2000,
    });
    const r = await connections.run(
      { name: "db1" } as HostSpec,
      { user: "root", script: "true" },
      5000,
    );
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/^db1: ssh deploy@\[127\.0\.0\.1\]:\d+: connect ECONNREFUSED/);
    connections.close();
  });
});

describe("remote command", () => {
  const host = { osUser: "postgres" } as HostSpec;
  it("sudo -n to the command's user unless it is the login; postgres's tools run from /", () => {
    expect(remoteCommand("deploy", host, { user: "root", script: "ip addr" })).toBe(
      "cd / && sudo -n sh -c 'ip addr'",
    );
    expect(remoteCommand("deploy", host, { user: "postgres", script: "psql -c 'x'" })).toBe(
      `cd / && sudo -n -u postgres sh -c 'psql -c '"'"'x'"'"''`,
    );
    // A word with nothing a shell reads specially stays bare (shellQuote).
    expect(remoteCommand("root", host, { user: "root", script: "true" })).toBe(
      "cd / && sh -c true",
    );
    expect(remoteCommand("postgres", host, { user: "postgres", script: "true" })).toBe(
      "cd / && sh -c true",
    );
  });
});

describe("resume reconciliation", () => {
  const c = initialContext({
    primary: "node1",
    standby: "node2",
    targetVersion: "15.20",
    timeouts: productionTimeouts,
    runId: newRunId(),
    maxLagBytes: 0,
  });
  it("carries on at the journal's step when the cluster is where it left it", () => {
    expect(reconcile("stopPrimary", c, { primaries: [], vipHolders: [] })).toEqual({
      resumeAt: "stopPrimary",
      note: null,
    });
    expect(
      reconcile(
        "upgradeOldPrimary",
        { ...c, promoted: true },
        { primaries: ["node2"], vipHolders: ["node2"] },
      ),
    ).toMatchObject({
      resumeAt: "upgradeOldPrimary",
    });
  });
  it("a promotion that happened before the process died is looked at, not redone", () => {
    expect(reconcile("promoteStandby", c, { primaries: ["node2"], vipHolders: [] })).toMatchObject({
      resumeAt: "checkPromotion",
    });
  });
  it("stops on what the journal cannot explain", () => {
    expect(
      reconcile("stopPrimary", c, { primaries: ["node1", "node2"], vipHolders: ["node1"] }),
    ).toEqual({
      stop: "both node1 and node2 accept writes: fence one by hand first",
    });
    expect(
      reconcile("checkpointPrimary", c, { primaries: ["node2"], vipHolders: ["node2"] }),
    ).toMatchObject({
      stop: expect.stringMatching(/someone else changed the cluster/),
    });
    expect(
      reconcile(
        "upgradeOldPrimary",
        { ...c, promoted: true },
        { primaries: ["node1"], vipHolders: [] },
      ),
    ).toMatchObject({
      stop: expect.stringMatching(/must stay fenced/),
    });
  });
});

describe("pre-flight checklist", () => {
  const input: PreflightInput = {
    cluster: exampleCluster(),
    primary: "node1",
    standby: "node2",
    targetVersion: "15.20",
    maxLagBytes: 1000,
    minFreeBytes: 1024,
    timeouts: { pause: 5000 },
  };
  const hazards = {
    longTransactions: [],
    prepared: 0,
    logicalSlots: 0,
    archiveMode: "off",
    archiveReady: 0,
    archiveCommand: "",
    archiveLibrary: "",
    primaryConninfo: "",
    primarySlotName: "",
    physicalSlots: [],
    walLogHints: "off",
    dataChecksums: "on",
    syncStandbyNames: "",
    replicas: [{ name: "15/main", address: "192.0.2.12" }],
  };
  const replication = { timeline: 1, receiveLsn: null, replayLsn: null, streaming: false };
  const primaryReplication = {
    ...replication,
    inRecovery: false,
    lsn: 5000,
    standbys: [{ client: "node2", state: "streaming", sentLsn: 5000, replayLsn: 4500 }],
  };
  const primary: NodeFacts = {
    name: "node1",
    status: { running: true, version: "15.18", vipBound: true },
    replication: primaryReplication,
    hazards,
    freeBytes: 1 << 20,
    packages: parsePackageFacts(exampleCluster(), BOOKWORM_PACKAGE_LINES.join("\n")),
    // A stock Debian host: systemd, the cluster 15/main online under its unit, start.conf auto.
    host: {
      systemd: true,
      clusters: [
        {
          version: "15",
          name: "main",
          port: 5432,
          status: "online",
          owner: "postgres",
          dataDir: "/var/lib/postgresql/15/main",
          startConf: "auto",
          unitEnabled: "enabled-runtime",
          unitActive: "active",
        },
      ],
    },
  };
  const standby: NodeFacts = {
    ...primary,
    name: "node2",
    status: { running: true, version: "15.18", vipBound: false },
    hazards: {
      ...hazards,
      primaryConninfo: "host=192.0.2.11 port=5432 user=replicator application_name=node2",
    },
    replication: {
      ...replication,
      inRecovery: true,
      lsn: 4500,
      replayLsn: 4500,
      streaming: true,
      standbys: [],
    },
  };
  const failed = (p: NodeFacts, s: NodeFacts) =>
    judge(input, p, s)
      .filter((i) => i.status !== "ok")
      .map((i) => `${i.status} ${i.check}: ${i.detail}`);

  it("a healthy pair passes every check", () => {
    expect(failed(primary, standby)).toEqual([]);
  });
  it("fails on lag, a missing VIP, prepared transactions, logical slots; warns when a rewind is impossible", () => {
    const p = {
      ...primary,
      status: { running: true, version: "15.18", vipBound: false },
      hazards: { ...hazards, prepared: 2, logicalSlots: 1, dataChecksums: "off" },
      replication: { ...primaryReplication, lsn: 9000 },
    };
    expect(failed(p, standby)).toEqual([
      "fail standby lag: 4500 bytes (bound 1000)",
      "fail VIP 192.0.2.10 on node1 only: bound on: none",
      "fail prepared transactions: 2: commit or roll them back first (they hold locks across the switchover)",
      "fail logical replication slots: 1 on node1: PostgreSQL 15 loses them at the promotion",
      "warn pg_rewind possible: data_checksums off, wal_log_hints off: a rejoin that needs a rewind falls back to a full base backup",
    ]);
  });
  it("fails when a package of a host's upgrade set is already past the target (apt-get would have to downgrade it)", () => {
    const packages = {
      set: ["libpq5", "postgresql-15", "postgresql-client-15"],
      installed: {
        libpq5: "16.4-0+deb12u1",
        "postgresql-15": "15.18-0+deb12u1",
        "postgresql-client-15": "15.18-0+deb12u1",
      },
      candidates: Object.fromEntries(
        ["libpq5", "postgresql-15", "postgresql-client-15"].map((p) => [
          p,
          [{ version: "15.20-0+deb12u1", from: "bookworm-security" }],
        ]),
      ),
      held: [],
      tools: { ip: true, arping: true },
    };
    expect(failed({ ...primary, packages }, standby)).toContainEqual(
      expect.stringMatching(
        /^fail versions: .*; node1: libpq5 16\.4-0\+deb12u1 is newer than the target$/,
      ),
    );
  });
  it("warns about transactions open longer than PAUSE may wait, naming the oldest's age and holder", () => {
    const long = (pid: number, ageS: number) => ({
      pid,
      ageS,
      application: "nightly-report",
      state: "idle in transaction",
    });
    const p = {
      ...primary,
      hazards: { ...hazards, longTransactions: [long(41, 912), long(77, 8)] },
    };
    expect(failed(p, standby)).toEqual([
      "warn long-running transactions: 2 open for over 5 s, the oldest for 912 s (pid 41, application nightly-report, idle in transaction): one still open when the poolers are paused holds PAUSE past its 5 s deadline and the plan rolls back; the fast stop rolls it back",
    ]);
    // The inventory's own PAUSE deadline is the one named.
    const shorter = judge({ ...input, timeouts: { pause: 2000 } }, p, standby).find(
      (i) => i.check === "long-running transactions",
    );
    expect(shorter?.detail).toMatch(/^2 open for over 2 s, .* past its 2 s deadline/);
  });
  it("fails when synchronous replication needs the standby the upgrade stops, by any name it goes by", () => {
    const sync = (setting: string) =>
      failed({ ...primary, hazards: { ...hazards, syncStandbyNames: setting } }, standby);
    // Debian's standby connects as application_name "15/main".
    expect(sync('FIRST 1 ("15/main")')).toEqual([
      `fail synchronous replication: node1: synchronous_standby_names = 'FIRST 1 ("15/main")' needs 1 of (15/main), and stopping the standby leaves 0: every commit would wait for the whole upgrade (set it to '' for the window, or add another synchronous standby)`,
    ]);
    expect(sync("*")).toHaveLength(1);
    expect(sync("node2")).toHaveLength(1);
    expect(sync("ANY 1 (node2, node3)")).toEqual([]);
    expect(sync("barman")).toEqual([]);
  });
  it("fails when the promoted standby would not archive as the primary does, naming the host", () => {
    const archiving = (p: Partial<typeof hazards>, sb: Partial<typeof hazards>) =>
      judge(
        input,
        { ...primary, hazards: { ...hazards, ...p } },
        { ...standby, hazards: { ...(standby.hazards as typeof hazards), ...sb } },
      ).find((i) => i.check === "archiving on node2 once promoted");
    const cmd = "test ! -f /archive/%f && cp %p /archive/%f";
    expect(archiving({}, {})).toMatchObject({
      status: "ok",
      detail: "archive_mode off on node1 and node2",
    });
    expect(archiving({ archiveMode: "on", archiveCommand: cmd }, {})).toEqual({
      status: "fail",
      check: "archiving on node2 once promoted",
      detail:
        "node2: archive_mode off while node1 archives (on): the archive would miss every WAL file from the promotion on (set archive_mode = on there, with node1's archive_command, and restart it)",
    });
    expect(archiving({ archiveMode: "on" }, { archiveMode: "on", archiveReady: 3 })).toMatchObject({
      status: "fail",
      detail:
        "node2: archive_mode on with an empty archive_command: once promoted, WAL piles up in pg_wal as .ready files (3 WAL file(s) waiting there)",
    });
    expect(archiving({ archiveMode: "on" }, { archiveMode: "on", archiveCommand: cmd })).toEqual({
      status: "ok",
      check: "archiving on node2 once promoted",
      detail: `archive_mode on, archive_command '${cmd}', 0 WAL file(s) waiting there`,
    });
    expect(
      archiving(
        { archiveMode: "on" },
        { archiveMode: "always", archiveLibrary: "basic_archive", archiveReady: 40 },
      ),
    ).toMatchObject({
      status: "warn",
      detail: "archive_mode always, archive_library 'basic_archive', 40 WAL file(s) waiting there",
    });
  });
  it("says which conninfo keywords and which slot the rebuilt old primary gets; refuses a password", () => {
    const slot = { name: "node2_slot", active: true, address: "192.0.2.12", heldBytes: 0 };
    const items = (sb: Partial<typeof hazards>, slots = [slot]) =>
      judge(
        input,
        { ...primary, hazards: { ...hazards, physicalSlots: slots } },
        { ...standby, hazards: { ...(standby.hazards as typeof hazards), ...sb } },
      )
        .filter((i) => /conninfo|^replication slots|slots lost/.test(i.check))
        .map((i) => `${i.status} ${i.check}: ${i.detail}`);
    expect(
      items({
        primaryConninfo:
          "host=192.0.2.11 user=replicator sslmode=verify-full passfile=/var/lib/postgresql/.pgpass",
        primarySlotName: "node2_slot",
      }),
    ).toEqual([
      "ok primary_conninfo kept: sslmode=verify-full passfile=/var/lib/postgresql/.pgpass, as node2's primary_conninfo has them",
      "ok replication slots: node2 streams through slot 'node2_slot' on node1: the rejoin moves it: slot 'node1_slot' made on node2 for node1 (its primary_slot_name), 'node2_slot' removed from node1, where it would keep WAL for nobody",
    ]);
    expect(
      items({ primaryConninfo: "host=192.0.2.11 password=x" }, [
        slot,
        { name: "barman", active: true, address: "192.0.2.30", heldBytes: 0 },
      ]),
    ).toEqual([
      "fail primary_conninfo kept: node2's primary_conninfo: it holds a password, which rebuilding the old primary would write into the journal and its command line: move it to a password file (passfile)",
    ]);
    expect(
      items({}, [slot, { name: "barman", active: true, address: "192.0.2.30", heldBytes: 0 }]),
    ).toContain(
      "warn slots lost at the promotion: node1: 'node2_slot' (active, from 192.0.2.12), 'barman' (active, from 192.0.2.30) not on node2: the promotion does not copy slots; create them on node2 and point their consumers there",
    );
  });
  it("fails when the standby does not stream or the roles are not as the inventory says", () => {
    expect(failed(standby, primary).filter((l) => l.startsWith("fail node"))).toEqual([
      "fail node2 is the primary: it is in recovery (a standby)",
      "fail node1 is a standby streaming from node2: it is not in recovery (a primary?)",
    ]);
  });
});
