import { describe, expect, it } from "vitest";
import { carriedSlotName, formatConninfo, keptKeywords, parseConninfo } from "../hosts/conninfo.ts";
import { type LinkFacts, resolveStandbyLink } from "../hosts/standby-link.ts";

/**
 * How the old primary, rebuilt as a standby, connects to the new one: the pair's primary_conninfo
 * keywords kept as the operator wrote them, and a slot for it where the standby had one.
 */
describe("primary_conninfo, as libpq reads it", () => {
  it("parses words and quoted values with their escapes, keywords case-insensitive", () => {
    expect(
      parseConninfo(
        "host=10.0.0.1 Port = 5432 sslmode=verify-full sslrootcert='/etc/ssl/our ca.pem' passfile=/var/lib/postgresql/it\\'s options='-c x=\\\\y'",
      ),
    ).toEqual({
      ok: true,
      keywords: {
        host: "10.0.0.1",
        port: "5432",
        sslmode: "verify-full",
        sslrootcert: "/etc/ssl/our ca.pem",
        passfile: "/var/lib/postgresql/it's",
        options: "-c x=\\y",
      },
    });
    expect(parseConninfo("")).toEqual({ ok: true, keywords: {} });
  });

  it("formats what it parses back to the same keywords", () => {
    const keywords = { sslrootcert: "/etc/ssl/our ca.pem", passfile: "/it's\\here", empty: "" };
    const text = formatConninfo(keywords);
    expect(text).toBe("sslrootcert='/etc/ssl/our ca.pem' passfile='/it\\'s\\\\here' empty=''");
    expect(parseConninfo(text)).toEqual({ ok: true, keywords });
  });

  it("refuses a URI and what it cannot parse, saying where", () => {
    expect(parseConninfo("postgresql://replicator@10.0.0.1/")).toEqual({
      ok: false,
      reason: "it is a URI: write it as keyword=value pairs",
    });
    expect(parseConninfo("host=a sslmode='open")).toEqual({
      ok: false,
      reason: `cannot parse it from "sslmode='open"`,
    });
  });

  it("keeps every keyword but those the rebuild sets for the new upstream", () => {
    expect(
      keptKeywords(
        "host=10.0.0.1 hostaddr=10.0.0.1 port=5432 user=replicator application_name=b sslmode=require passfile=/var/lib/postgresql/.pgpass keepalives_idle=30",
        "replicator",
      ),
    ).toEqual({
      ok: true,
      keywords: {
        sslmode: "require",
        passfile: "/var/lib/postgresql/.pgpass",
        keepalives_idle: "30",
      },
    });
  });

  it("refuses a password in it, and another user than the inventory's", () => {
    expect(keptKeywords("host=a user=replicator password=s3cret", "replicator")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^it holds a password, .*move it to a password file/),
    });
    expect(keptKeywords("host=a user=repl2", "replicator")).toEqual({
      ok: false,
      reason: "it connects as repl2, the inventory's replicationUser is replicator",
    });
  });
});

describe("the old primary's slot on the new primary", () => {
  it("is named as the standby's is, with the old primary's name in it", () => {
    expect(carriedSlotName("node2_slot", "node2", "node1")).toBe("node1_slot");
    expect(carriedSlotName("slot_db_b", "db-b", "db-a")).toBe("slot_db_a");
    expect(carriedSlotName("standby", "node2", "node1")).toBe("node1");
    expect(carriedSlotName("phys", "db-b", "DB-A")).toBe("db_a");
  });

  const facts: LinkFacts = {
    primary: "node1",
    standby: "node2",
    replicationUser: "replicator",
    conninfo: "host=192.0.2.11 user=replicator sslmode=require",
    slotName: "node2_slot",
    slotsOnPrimary: [{ name: "node2_slot", active: true, address: "192.0.2.12", heldBytes: 0 }],
  };

  it("is made when the standby streams through one; none when it does not", () => {
    expect(resolveStandbyLink(facts)).toMatchObject({
      ok: true,
      link: {
        keywords: { sslmode: "require" },
        slot: { name: "node1_slot", replaces: "node2_slot" },
      },
      conninfo: "sslmode=require, as node2's primary_conninfo has them",
    });
    expect(resolveStandbyLink({ ...facts, slotName: "" })).toMatchObject({
      ok: true,
      link: { slot: null },
      slot: "node2 streams without a slot; so will node1",
    });
  });

  it("refuses a primary_slot_name that is no slot on the primary, and a conninfo it cannot keep", () => {
    expect(resolveStandbyLink({ ...facts, slotsOnPrimary: [] })).toEqual({
      ok: false,
      check: "replication slots",
      reason: "node2's primary_slot_name 'node2_slot' is not a slot on node1",
    });
    expect(resolveStandbyLink({ ...facts, conninfo: "postgres://x" })).toEqual({
      ok: false,
      check: "primary_conninfo kept",
      reason: "node2's primary_conninfo: it is a URI: write it as keyword=value pairs",
    });
  });

  it("names the primary's other slots, which the promotion leaves behind", () => {
    expect(resolveStandbyLink(facts)).toMatchObject({ leftBehind: null });
    const barman = { name: "barman", active: false, address: null, heldBytes: 48 * 1024 ** 2 };
    const withBarman = { ...facts, slotsOnPrimary: [...facts.slotsOnPrimary, barman] };
    expect(resolveStandbyLink(withBarman)).toMatchObject({
      leftBehind:
        "node1: 'barman' (inactive, holds 48 MiB of WAL) not on node2: the promotion does not copy slots; create them on node2 and point their consumers there",
    });
  });
});
