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

  it("refuses what the host commands cannot run yet, and unknown fields", () => {
    const systemd = GOOD.replace("address: 10.0.0.12", "address: 10.0.0.12\n    control: systemd");
    expect(refused(systemd)).toMatch(/field nodes\.db2\.control: "systemd" is not supported yet/);
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
