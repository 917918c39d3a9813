import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test as fcTest } from "@fast-check/vitest";
import { afterAll, describe, expect, it } from "vitest";
import { debianVersion, type HostCommand, type HostSpec, hostCommands } from "../hosts/commands.ts";
import { hostFactsCommand } from "../hosts/host-facts.ts";
import { type Inventory, InventoryError, parseInventory } from "../hosts/inventory/load.ts";
import { shellQuote } from "../hosts/shell.ts";
import { remoteCommand } from "../hosts/transports/ssh.ts";

/**
 * No inventory value escapes its argument. Arbitrary strings (unicode, shell metacharacters,
 * quotes, `$()`, backticks, newlines) go into each inventory field that reaches a host command:
 * either validation refuses the inventory with a one-line error naming the file and the field,
 * or every command rendered from it is parsed and run by a real shell (`sh -n`, then `sh` with
 * every program replaced by a stub that logs its argv NUL-separated), and each argv is the one a
 * plain sentinel value gives, with the sentinel replaced by the value: same commands, same number
 * of arguments, the value intact inside its own. Path values run under a scratch directory
 * (validation refuses `..`), so a shell's redirections land there.
 */

const SB = mkdtempSync(join(tmpdir(), "pgs-inject-"));
const STUBS = join(SB, "stubs");
const LOG = join(SB, "argv.log");
const FILE = "/etc/pgs/prop.yaml";
/** How many values validation refused, and how many ran through a shell (INJECTION_STATS=1). */
const tally = { refused: 0, ran: 0 };
afterAll(() => {
  rmSync(SB, { recursive: true, force: true });
  if (process.env.INJECTION_STATS) process.stderr.write(`injection: ${JSON.stringify(tally)}\n`);
});

const PROGRAMS = [
  "apt-cache apt-get arping awk basename cat chmod chown cp cut date df dpkg dpkg-query du env",
  "flock grep head id ip kill ls mkdir mv pg_ctlcluster pg_lsclusters pgrep rm sed setsid sh",
  "sleep sort sudo systemctl tail tee timeout touch wc",
]
  .join(" ")
  .split(" ");
const PG_TOOLS = [
  "pg_basebackup",
  "pg_controldata",
  "pg_ctl",
  "pg_rewind",
  "pg_verifybackup",
  "pg_waldump",
  "psql",
];
/** One write per record (programs of a pipeline log at once): argv, NUL each, then \u0001. */
const STUB = `#!/bin/sh\nprintf '%s\\0' "$0" "$@" '\u0001' >> "$ARGV_LOG"\n`;

function stub(dir: string, names: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const n of names) {
    writeFileSync(join(dir, n), STUB);
    chmodSync(join(dir, n), 0o755);
  }
}
stub(STUBS, PROGRAMS);

/** Sentinels: plain values no command holds otherwise, replaced by the value under test. */
const S = {
  path: `${SB}/zqxpath`,
  word: "zqxword",
  host: "zqxhost",
  version: "9.87",
};

type Doc = Record<string, unknown> & { nodes: Record<string, Record<string, unknown>> };

/** Two nodes, one of each control mode family, every path spelled out under the scratch dir. */
function baseDoc(db2Control: "systemd" | "pg_ctlcluster"): Doc {
  const node = (n: string) => ({
    address: `${n}.example`,
    ssh: { user: "deploy", agent: true },
    pgBin: `${SB}/${n}/bin`,
    dataDir: `${SB}/${n}/data`,
    socketDir: `${SB}/${n}/run`,
    logFile: `${SB}/${n}/log`,
    osUser: "postgres",
  });
  return {
    nodes: {
      db1: { ...node("db1"), control: "pg_ctl", configFile: `${SB}/db1/pg.conf` },
      db2: { ...node("db2"), control: db2Control, cluster: "15/main" },
    },
    primary: "db1",
    standby: "db2",
    vip: { address: "10.0.0.10", prefix: 24, interface: "eth0" },
    postgres: {
      superuser: "postgres",
      replicationUser: "replicator",
      database: "app",
      packages: ["postgresql-15", "postgresql-client-15"],
    },
    upgrade: { version: "15.20" },
  };
}

/** A field that reaches a command: how to put a value in, and what in the output stands for it. */
interface Field {
  name: string;
  kind: "path" | "word" | "host" | "version" | "number";
  set(doc: Doc, v: string | number): void;
  /** [sentinel text, value text] pairs as they appear in the commands. */
  pairs(sentinel: string, v: string): [string, string][];
}

const same = (s: string, v: string): [string, string][] => [[s, v]];
const nodeField = (node: "db1" | "db2", key: string, kind: Field["kind"], pairs = same): Field => ({
  name: `nodes.${node}.${key}`,
  kind,
  set: (d, v) => {
    (d.nodes[node] as Record<string, unknown>)[key] = v;
  },
  pairs,
});
const at =
  (path: string[]) =>
  (d: Doc, v: string | number): void => {
    let o = d as Record<string, unknown>;
    for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    o[path.at(-1) as string] = v;
  };

const FIELDS: Field[] = [
  ...(["db1", "db2"] as const).flatMap((n) => [
    nodeField(n, "pgBin", "path"),
    nodeField(n, "dataDir", "path"),
    nodeField(n, "socketDir", "path"),
    nodeField(n, "logFile", "path"),
    nodeField(n, "address", "host"),
    nodeField(n, "osUser", "word"),
    nodeField(n, "port", "number"),
  ]),
  nodeField("db1", "configFile", "path"),
  // The cluster's name goes into paths, the unit and pg_ctlcluster's arguments.
  {
    name: "nodes.db2.cluster",
    kind: "word",
    set: (d, v) => {
      (d.nodes.db2 as Record<string, unknown>).cluster = `15/${v}`;
    },
    pairs: same,
  },
  { name: "vip.interface", kind: "word", set: at(["vip", "interface"]), pairs: same },
  { name: "vip.address", kind: "host", set: at(["vip", "address"]), pairs: same },
  {
    name: "postgres.superuser",
    kind: "word",
    set: at(["postgres", "superuser"]),
    pairs: same,
  },
  {
    name: "postgres.replicationUser",
    kind: "word",
    set: at(["postgres", "replicationUser"]),
    pairs: same,
  },
  { name: "postgres.database", kind: "word", set: at(["postgres", "database"]), pairs: same },
  {
    name: "postgres.packages.0",
    kind: "word",
    set: (d, v) => {
      (d.postgres as { packages: unknown[] }).packages[0] = v;
    },
    pairs: same,
  },
  {
    name: "upgrade.version",
    kind: "version",
    set: at(["upgrade", "version"]),
    pairs: (s, v) => [[debianVersion(s), debianVersion(v)]],
  },
];

/** The issue's example: it passed validation and ran `touch /tmp/pwned` (a shell's text, not JS's). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: shell text
const ISSUE_DATA_DIR = "/var/lib/pg;touch${IFS}/tmp/pwned;#";

const METACHARS = [
  ..." ;|&$`'\"\\(){}<>*?[]#~!=%^\n\t\r",
  "$(",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text
  "${IFS}",
  "$(id)",
  "`id`",
  "'$(touch /tmp/pwned)'",
  "a",
  "z",
  "0",
  "/",
  ".",
  "..",
  "-",
  "é",
  "😀",
];
const anyText = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ unit: fc.constantFrom(...METACHARS), maxLength: 10 }),
  fc.constantFrom(
    ISSUE_DATA_DIR,
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "x' ; touch /tmp/pwned ; '",
    'x" ; touch /tmp/pwned ; "',
    "x\ntouch /tmp/pwned",
    "--help",
    "-o",
  ),
);
/** What a path may hold that a shell reads: spaces, quotes, ; | & ( ) { } < > * ? [ ] # ~ … */
const pathSegment = fc.string({
  unit: fc.constantFrom(..." ;|&'(){}<>*?[]#~!=%^:,@+-.", "a", "é", "😀", "\u00a0"),
  minLength: 1,
  maxLength: 8,
});
/** Path values: many a valid path full of metacharacters, the rest anything. */
const pathText = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .array(pathSegment, { minLength: 1, maxLength: 3 })
      .map((segs) => `/${segs.join("/")}`),
  },
  anyText,
  anyText.map((t) => `/${t}`),
  fc.tuple(anyText, anyText).map(([a, b]) => `/${a}/${b}`),
);

/** Every host command an inventory renders: each node's, pre-flight's, and the SSH lines. */
function everyCommand(inv: Inventory): { what: string; cmd: HostCommand }[] {
  const out: { what: string; cmd: HostCommand }[] = [
    { what: "host facts", cmd: hostFactsCommand() },
  ];
  const nodes = inv.cluster.nodes;
  for (const h of nodes) {
    const other = nodes.find((n) => n !== h) as HostSpec;
    const args: Record<string, unknown[][]> = {
      stop: [
        [{ mode: "fast", fence: true }, 30],
        [{ mode: "immediate", fence: false }, 30],
      ],
      start: [[30]],
      upgrade: [[inv.targetVersion]],
      sql: [["SELECT 1"]],
      walRecord: [
        [0x1000028, 1],
        ["<checkpoint-lsn>", "<timeline>"],
      ],
      promote: [[30]],
      vipUp: [[true], [false]],
      configureStandby: [[other]],
      rewind: [[other]],
      baseBackup: [[other]],
      replicationProbe: [[other]],
      stopWhat: [],
    };
    for (const [key, value] of Object.entries(hostCommands(inv.cluster, h))) {
      if (typeof value === "string") continue;
      if (typeof value === "function") {
        const calls = args[key];
        if (!calls) throw new Error(`add the arguments of hostCommands().${key} to this test`);
        for (const a of calls) {
          const r = (value as (...x: unknown[]) => unknown)(...a);
          if (typeof r === "object")
            out.push({ what: `${h.name} ${key}(${a.length})`, cmd: r as HostCommand });
        }
      } else out.push({ what: `${h.name} ${key}`, cmd: value as HostCommand });
    }
    // --unhold wraps the upgrade in apt-mark's unhold and hold.
    const unholding = hostCommands({ ...inv.cluster, unhold: true }, h);
    out.push({ what: `${h.name} upgrade --unhold`, cmd: unholding.upgrade(inv.targetVersion) });
  }
  return out;
}

/** `sh -n` on the scripts (at once; one by one to name a command that fails). */
function syntaxOk(cmds: { what: string; cmd: HostCommand }[]): void {
  try {
    execFileSync("/bin/sh", ["-n", "-c", cmds.map((c) => `( ${c.cmd.script}\n)`).join("\n")], {
      stdio: "pipe",
    });
    return;
  } catch {}
  for (const { what, cmd } of cmds) {
    try {
      execFileSync("/bin/sh", ["-n", "-c", cmd.script], { stdio: "pipe" });
    } catch (e) {
      throw new Error(`${what}: sh -n: ${(e as { stderr?: Buffer }).stderr?.toString()}`);
    }
  }
}

/**
 * Runs every script once, each in a subshell, programs stubbed: per script, the argv of each
 * program it ran, in order. Paths under the scratch dir get their directories and pg tools.
 */
function argvsOf(inv: Inventory, cmds: { cmd: HostCommand }[]): string[][][] {
  for (const h of inv.cluster.nodes) {
    stub(h.pgBin, PG_TOOLS);
    mkdirSync(h.dataDir, { recursive: true });
    mkdirSync(`${h.dataDir}.new`, { recursive: true });
  }
  writeFileSync(LOG, "");
  const driver = cmds
    // The EXIT trap waits for what a script left in the background (arping) before the next.
    .map(
      ({ cmd }) =>
        `( trap wait EXIT; ${cmd.script}\n) </dev/null >/dev/null 2>&1; printf '\\002' >> "$ARGV_LOG"`,
    )
    .join("\n");
  execFileSync("/bin/sh", ["-c", driver], {
    env: { PATH: STUBS, ARGV_LOG: LOG },
    stdio: "pipe",
    timeout: 20_000,
  });
  const text = execFileSync("cat", [LOG]).toString("utf8");
  for (const h of inv.cluster.nodes) {
    rmSync(h.pgBin, { recursive: true, force: true });
    rmSync(h.dataDir, { recursive: true, force: true });
    rmSync(`${h.dataDir}.new`, { recursive: true, force: true });
  }
  const perScript = text.split("\u0002").slice(0, cmds.length);
  return perScript.map((s) =>
    s
      .split("\u0001\u0000")
      .filter((r) => r.length > 0)
      .map((r) => r.split("\u0000").slice(0, -1))
      // A pipeline's programs run at once: their order in the log is not the script's.
      .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
  );
}

function parse(doc: Doc): Inventory {
  return parseInventory(JSON.stringify(doc), FILE);
}

const baselines = new Map<
  string,
  { cmds: { what: string; cmd: HostCommand }[]; argv: string[][][] }
>();
function baseline(field: Field, control: "systemd" | "pg_ctlcluster") {
  const key = `${field.name} ${control}`;
  const known = baselines.get(key);
  if (known) return known;
  const doc = baseDoc(control);
  field.set(doc, sentinelOf(field));
  const inv = parse(doc);
  const cmds = everyCommand(inv);
  const b = { cmds, argv: argvsOf(inv, cmds) };
  baselines.set(key, b);
  return b;
}
function sentinelOf(f: Field): string | number {
  if (f.kind === "number") return 5433;
  return f.kind === "path"
    ? S.path
    : f.kind === "host"
      ? S.host
      : f.kind === "version"
        ? S.version
        : S.word;
}

/** Either refused (one line naming file and field), or every argv is the baseline's, value in. */
function holds(field: Field, control: "systemd" | "pg_ctlcluster", raw: string): void {
  const doc = baseDoc(control);
  field.set(doc, raw);
  let inv: Inventory;
  try {
    inv = parse(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(InventoryError);
    const message = (e as Error).message;
    expect(message).not.toContain("\n");
    expect(message.startsWith(`${FILE}: `)).toBe(true);
    expect(message).toContain(`field ${field.name}`);
    tally.refused++;
    return;
  }
  // Accepted: the same value again, with paths under the scratch dir.
  const value = field.kind === "path" ? `${SB}/v${raw}` : raw;
  const runDoc = baseDoc(control);
  field.set(runDoc, value);
  inv = parse(runDoc);
  const cmds = everyCommand(inv);
  syntaxOk(cmds);
  const base = baseline(field, control);
  expect(cmds.map((c) => c.what)).toEqual(base.cmds.map((c) => c.what));
  const pairs = field.pairs(String(sentinelOf(field)), value);
  const expected = base.argv.map((script) =>
    script
      .map((argv) => argv.map((a) => pairs.reduce((x, [s, v]) => x.replaceAll(s, v), a)))
      .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
  );
  const got = argvsOf(inv, cmds);
  tally.ran++;
  for (const [i, c] of cmds.entries()) expect([c.what, got[i]]).toEqual([c.what, expected[i]]);
  // And over SSH: sudo gets the script as one argument, the user as another.
  const h = inv.cluster.nodes[0] as HostSpec;
  const lines = cmds.map(({ cmd }) => ({
    cmd: { user: "root" as const, script: remoteCommand("deploy", h, cmd) },
  }));
  const sudo = argvsOf(inv, lines).map((script) => script.at(-1)?.slice(1));
  expect(sudo).toEqual(
    cmds.map(({ cmd }) => [
      "-n",
      ...(cmd.user === "postgres" ? ["-u", h.osUser] : []),
      "sh",
      "-c",
      cmd.script,
    ]),
  );
}

/** Per field; INJECTION_RUNS=… for a longer hunt. */
const RUNS = Number(process.env.INJECTION_RUNS ?? 20);

describe("no inventory value escapes its argument", () => {
  it("the issue's dataDir is refused, naming the file and the field", () => {
    const doc = baseDoc("systemd");
    (doc.nodes.db1 as Record<string, unknown>).dataDir = ISSUE_DATA_DIR;
    expect(() => parse(doc)).toThrow(
      `${FILE}: field nodes.db1.dataDir: expected an absolute path (no ".", ".." or empty segment, no trailing /, no control character, none of " $ \` \\)`,
    );
  });

  it("the issue's dataDir, were it let through, stays one argument and runs nothing", () => {
    const inv = parse(baseDoc("systemd"));
    const h = { ...(inv.cluster.nodes[0] as HostSpec), dataDir: ISSUE_DATA_DIR };
    const c = hostCommands(inv.cluster, h);
    const [status, data, rm] = argvsOf(inv, [
      { cmd: c.status },
      { cmd: c.controlData },
      { cmd: c.removeSetAside },
    ]);
    expect(status).toEqual([[`${h.pgBin}/pg_ctl`, "status", "-D", ISSUE_DATA_DIR]]);
    expect(data).toEqual([[`${h.pgBin}/pg_controldata`, "-D", ISSUE_DATA_DIR]]);
    expect(rm).toEqual([[`${STUBS}/rm`, "-Rf", `${ISSUE_DATA_DIR}.old`]]);
  });

  it("refuses what a value cannot mean, naming the field", () => {
    const refusal = (field: Field, v: string) => {
      const doc = baseDoc("systemd");
      field.set(doc, v);
      try {
        parse(doc);
      } catch (e) {
        return (e as Error).message.replace(`${FILE}: `, "");
      }
      return "accepted";
    };
    const f = (name: string) => FIELDS.find((x) => x.name === name) as Field;
    // A trailing / would put <data>.new inside the data directory; .. leaves it.
    expect(refusal(f("nodes.db1.dataDir"), "/srv/pg/")).toMatch(/^field nodes\.db1\.dataDir: /);
    expect(refusal(f("nodes.db1.dataDir"), "/srv/../etc")).toMatch(/^field nodes\.db1\.dataDir: /);
    expect(refusal(f("nodes.db1.dataDir"), "/srv/my data/15")).toBe("accepted");
    expect(refusal(f("nodes.db2.cluster"), "..")).toMatch(
      /^field nodes\.db2\.cluster: expected a cluster such as "15\/main"/,
    );
    expect(refusal(f("vip.interface"), "-foo")).toMatch(/^field vip\.interface: /);
    expect(refusal(f("vip.interface"), "a-very-long-name0")).toMatch(/at most 15/);
    expect(refusal(f("nodes.db1.address"), "db..example")).toMatch(/^field nodes\.db1\.address: /);
  });

  it("the check catches a value left unquoted", () => {
    const inv = parse(baseDoc("systemd"));
    const h = inv.cluster.nodes[0] as HostSpec;
    const raw = `${SB}/a b`;
    const [argv] = argvsOf(inv, [
      { cmd: { user: "postgres", script: `${h.pgBin}/pg_ctl status -D ${raw}` } },
    ]);
    expect(argv).not.toEqual([[`${h.pgBin}/pg_ctl`, "status", "-D", raw]]);
    const [quoted] = argvsOf(inv, [
      { cmd: { user: "postgres", script: `${h.pgBin}/pg_ctl status -D ${shellQuote(raw)}` } },
    ]);
    expect(quoted).toEqual([[`${h.pgBin}/pg_ctl`, "status", "-D", raw]]);
  });

  for (const field of FIELDS) {
    const arb = field.kind === "path" ? pathText : anyText;
    fcTest.prop([arb, fc.constantFrom("systemd" as const, "pg_ctlcluster" as const)], {
      numRuns: RUNS,
      seed: 13,
    })(`${field.name}`, (raw, control) => {
      holds(field, control, raw);
    });
  }

  fcTest.prop([fc.string({ unit: "binary", maxLength: 40 })], { numRuns: 200, seed: 13 })(
    "shellQuote gives the text back, one argument",
    (text) => {
      fc.pre(!text.includes("\u0000"));
      const out = execFileSync("/bin/sh", ["-c", `printf '%s\\0' ${shellQuote(text)}`]);
      expect(out.toString("utf8")).toBe(`${Buffer.from(text, "utf8").toString("utf8")}\u0000`);
    },
  );
});
