import { describe, expect, it } from "vitest";
import { InventoryError, parseInventory } from "../hosts/inventory/load.ts";

/** A complete inventory for two hosts; each malformed case below changes one thing of it. */
const GOOD = `
nodes:
  db1:
    address: 10.0.0.11
    ssh: { user: deploy, key: keys/id_ed25519 }
  db2:
    address: 10.0.0.12
    ssh: { user: deploy, agent: true, port: 2222 }
primary: db1
standby: db2
vip: { address: 10.0.0.10, prefix: 24, interface: eth0 }
upgrade: { version: "15.20" }
ssh: { knownHosts: known_hosts }
timeouts: { stop: 90000 }
`;

function refused(text: string): string {
  try {
    parseInventory(text, "/etc/pgs/prod.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(InventoryError);
    return (e as Error).message;
  }
  throw new Error("the inventory was accepted");
}

describe("inventory", () => {
  it("resolves a good inventory into the cluster the host commands see", () => {
    const inv = parseInventory(GOOD, "/etc/pgs/prod.yaml");
    expect(inv.cluster.nodes.map((n) => [n.name, n.address, n.dataDir])).toEqual([
      ["db1", "10.0.0.11", "/var/lib/postgresql/15/main"],
      ["db2", "10.0.0.12", "/var/lib/postgresql/15/main"],
    ]);
    expect(inv.cluster.vip).toEqual({ address: "10.0.0.10", prefix: 24, device: "eth0" });
    expect(inv.ssh.db1).toMatchObject({
      host: "10.0.0.11",
      port: 22,
      keyFile: "/etc/pgs/keys/id_ed25519",
    });
    expect(inv.ssh.db2).toMatchObject({ port: 2222, keyFile: null, agent: true });
    expect(inv.knownHosts).toBe("/etc/pgs/known_hosts");
    expect(inv.timeouts.stop).toBe(90_000);
    expect(inv.timeouts.promote).toBe(60_000);
    expect(inv).toMatchObject({ primary: "db1", standby: "db2", targetVersion: "15.20" });
  });

  it("names the poolers the plan pauses (none by default), and refuses a database PAUSE could not take", () => {
    expect(parseInventory(GOOD, "/etc/pgs/prod.yaml").poolers).toEqual([]);
    const inv = parseInventory(
      `${GOOD}poolers:\n  - { host: pgb1.example.net, adminUser: pgbouncer, database: app }\n`,
      "/etc/pgs/prod.yaml",
    );
    expect(inv.poolers).toEqual([
      { host: "pgb1.example.net", port: 6432, adminUser: "pgbouncer", database: "app" },
    ]);
    expect(
      refused(`${GOOD}poolers:\n  - { host: pgb1, adminUser: pgbouncer, database: "app; KILL" }\n`),
    ).toContain("field poolers.0.database: expected a pooled database name");
  });

  it("reads hooks as a bare line or in full, with each moment's default failure policy", () => {
    const inv = parseInventory(
      `${GOOD}hooks:\n  beforeVipDown: /usr/local/bin/drain\n  afterPromote: { run: tell-apps, deadline: 5 }\n  onDone: { run: "true", onFailure: continue }\n`,
      "/etc/pgs/prod.yaml",
    );
    expect(inv.hooks).toEqual({
      beforeVipDown: { run: "/usr/local/bin/drain", deadlineMs: 30_000, onFailure: "rollback" },
      afterPromote: { run: "tell-apps", deadlineMs: 5000, onFailure: "continue" },
      onDone: { run: "true", deadlineMs: 30_000, onFailure: "continue" },
    });
    expect(parseInventory(GOOD, "/etc/pgs/prod.yaml").hooks).toEqual({});
    expect(refused(`${GOOD}hooks:\n  afterPromote: { run: x, onFailure: rollback }\n`)).toBe(
      '/etc/pgs/prod.yaml: field hooks.afterPromote.onFailure: expected "continue" (only beforeVipDown can still roll back)',
    );
    expect(refused(`${GOOD}hooks:\n  beforeVipdown: x\n`)).toMatch(
      /field hooks: Unrecognized key: "beforeVipdown"/,
    );
  });

  it("reaches nodes through a bastion: the node's own, or the one for all", () => {
    const inv = parseInventory(
      `${GOOD}`
        .replace(
          "ssh: { knownHosts: known_hosts }",
          "ssh: { knownHosts: known_hosts, jump: { host: bastion.example, user: ops, agent: true } }",
        )
        .replace(
          "ssh: { user: deploy, key: keys/id_ed25519 }",
          "ssh: { user: deploy, key: keys/id_ed25519, jump: { host: 10.0.0.5, port: 2200, user: jump, key: keys/jump } }",
        ),
      "/etc/pgs/prod.yaml",
    );
    expect(inv.ssh.db1?.jump).toEqual({
      host: "10.0.0.5",
      port: 2200,
      user: "jump",
      keyFile: "/etc/pgs/keys/jump",
      agent: false,
    });
    expect(inv.ssh.db2?.jump).toEqual({
      host: "bastion.example",
      port: 22,
      user: "ops",
      keyFile: null,
      agent: true,
    });
    expect(parseInventory(GOOD, "/etc/pgs/prod.yaml").ssh.db1?.jump).toBeNull();
    expect(
      refused(
        GOOD.replace(
          "ssh: { knownHosts: known_hosts }",
          "ssh: { knownHosts: known_hosts, jump: { host: b, user: ops } }",
        ),
      ),
    ).toMatch(/field ssh\.jump: expected a key file \(key:\) or agent: true/);
  });

  it("names the file, the field and what was expected", () => {
    expect(refused(GOOD.replace("prefix: 24", 'prefix: "24"'))).toBe(
      "/etc/pgs/prod.yaml: field vip.prefix: Invalid input: expected number, received string",
    );
    expect(refused(GOOD.replace("address: 10.0.0.10", "address: 10.0.0.300"))).toMatch(
      /^\/etc\/pgs\/prod\.yaml: field vip\.address: expected an IPv4 address$/,
    );
    expect(refused(GOOD.replace("standby: db2", "standby: db3"))).toMatch(
      /field standby: expected one of the nodes \(db1, db2\)/,
    );
    expect(refused(GOOD.replace('upgrade: { version: "15.20" }', "upgrade: {}"))).toMatch(
      /field upgrade\.version: Invalid input: expected string, received undefined/,
    );
    expect(
      refused(
        GOOD.replace("ssh: { user: deploy, agent: true, port: 2222 }", "ssh: { user: deploy }"),
      ),
    ).toMatch(/field nodes\.db2\.ssh: expected a key file \(key:\) or agent: true/);
  });

  it("a Debian host is its cluster: control systemd by default, paths from version and name", () => {
    const inv = parseInventory(
      GOOD.replace("address: 10.0.0.12", 'address: 10.0.0.12\n    cluster: "16/data"'),
      "/etc/pgs/prod.yaml",
    );
    const [db1, db2] = inv.cluster.nodes;
    expect(db1).toMatchObject({
      control: { mode: "systemd", cluster: { version: "15", name: "main" } },
      pgBin: "/usr/lib/postgresql/15/bin",
      logFile: "/var/log/postgresql/postgresql-15-main.log",
    });
    expect(db2).toMatchObject({
      control: { mode: "systemd", cluster: { version: "16", name: "data" } },
      pgBin: "/usr/lib/postgresql/16/bin",
      dataDir: "/var/lib/postgresql/16/data",
      logFile: "/var/log/postgresql/postgresql-16-data.log",
    });
    const pgCtl = parseInventory(
      GOOD.replace(
        "address: 10.0.0.12",
        "address: 10.0.0.12\n    control: pg_ctl\n    dataDir: /srv/pg\n    configFile: /etc/pg/pg.conf",
      ),
      "/etc/pgs/prod.yaml",
    ).cluster.nodes[1];
    expect(pgCtl).toMatchObject({
      dataDir: "/srv/pg",
      control: { mode: "pg_ctl", configFile: "/etc/pg/pg.conf" },
    });
    const noSystemd = GOOD.replace(
      "address: 10.0.0.12",
      "address: 10.0.0.12\n    control: pg_ctlcluster",
    );
    expect(parseInventory(noSystemd, "/x.yaml").cluster.nodes[1]?.control.mode).toBe(
      "pg_ctlcluster",
    );
  });

  it("refuses a control mode it does not know, fields of another mode, and unknown fields", () => {
    const rc = GOOD.replace("address: 10.0.0.12", "address: 10.0.0.12\n    control: rc.d");
    expect(refused(rc)).toMatch(
      /field nodes\.db2\.control: expected "systemd" .*, "pg_ctlcluster" .* or "pg_ctl"/,
    );
    const clusterOnPgCtl = GOOD.replace(
      "address: 10.0.0.12",
      'address: 10.0.0.12\n    control: pg_ctl\n    cluster: "15/main"',
    );
    expect(refused(clusterOnPgCtl)).toMatch(
      /field nodes\.db2\.cluster: a postgresql-common cluster is run by control systemd or pg_ctlcluster/,
    );
    const configOnSystemd = GOOD.replace(
      "address: 10.0.0.12",
      "address: 10.0.0.12\n    configFile: /etc/x.conf",
    );
    expect(refused(configOnSystemd)).toMatch(
      /field nodes\.db2\.configFile: control systemd reads the cluster's own/,
    );
    expect(
      refused(GOOD.replace("address: 10.0.0.12", 'address: 10.0.0.12\n    cluster: "main"')),
    ).toMatch(/field nodes\.db2\.cluster: expected a cluster such as "15\/main"/);
    expect(refused(GOOD.replace("vip:", "vips:"))).toMatch(/field \(top level\): .*\(vips\)/);
    expect(
      refused(
        GOOD.replace("/var", "").replace(
          "address: 10.0.0.11",
          "address: 10.0.0.11\n    dataDir: data",
        ),
      ),
    ).toMatch(/field nodes\.db1\.dataDir: expected an absolute path/);
  });

  it("says where YAML itself is broken", () => {
    expect(refused(`${GOOD}\nnodes: [\n`)).toMatch(
      /^\/etc\/pgs\/prod\.yaml: not valid YAML: line \d+: /,
    );
  });
});
