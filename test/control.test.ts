import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { exampleCluster } from "../cli/plan.ts";
import type { HostSpec } from "../hosts/commands.ts";
import { hostCommands } from "../hosts/commands.ts";
import { lifecycle, readStartConf, setStartConf } from "../hosts/control.ts";
import { type HostFacts, judgeControl, parseHostFacts } from "../hosts/host-facts.ts";

/**
 * The control modes' commands as text (their order is what the fence relies on), start.conf's
 * edit run for real with sh and sed, and pre-flight's judgement of what runs a host's server.
 * Running the commands against PostgreSQL is test/commands.test.ts's (pg_ctl, pg_ctlcluster)
 * and test/debian-host.test.ts's (systemd, package scripts, reboots).
 */
const [systemdHost] = exampleCluster("systemd").nodes as [HostSpec];
const [clusterHost] = exampleCluster("pg_ctlcluster").nodes as [HostSpec];
const [pgCtlHost] = exampleCluster("pg_ctl").nodes as [HostSpec];
const fast = { mode: "fast", fence: false } as const;
const fencedFast = { mode: "fast", fence: true } as const;

/** Where each piece starts in a script: their order, as numbers. */
const at = (script: string, ...pieces: string[]) =>
  pieces.map((p) => {
    const i = script.indexOf(p);
    expect(i, `${p} in ${script}`).toBeGreaterThanOrEqual(0);
    return i;
  });

describe("systemd control (stock Debian)", () => {
  const c = lifecycle(systemdHost);
  it("stops fast as root: SIGINT to the pid file's postmaster only while it is in the unit's cgroup (else through systemd), then waits until it is gone", () => {
    const stop = c.stop(fast, 60);
    expect(stop.user).toBe("root");
    const pidFile = "/var/lib/postgresql/15/main/postmaster.pid";
    const order = [
      `if test -e ${pidFile}; then p=$(head -n 1 ${pidFile});`,
      `if grep -q '/postgresql@15-main.service$' "/proc/$p/cgroup" 2>/dev/null; then kill -INT "$p"`,
      "else systemctl kill --kill-whom=main --signal=SIGINT postgresql@15-main; fi; fi && ",
      `{ n=0; until test ! -e ${pidFile};`,
    ];
    const where = at(stop.script, ...order);
    expect([...where].sort((a, b) => a - b)).toEqual(where);
    expect(stop.script).not.toContain("start.conf");
  });

  it("fences: start.conf manual read back, a hand-enabled unit refused, a reload, no longer wanted at boot; a fenced stop does all that before it stops", () => {
    const order = [
      "-e '$a manual'",
      "= manual; }",
      "in enabled)",
      "systemctl daemon-reload",
      "in enabled*)",
    ];
    const fence = c.fence;
    expect(fence.user).toBe("root");
    const alone = at(fence.script, ...order);
    expect([...alone].sort((a, b) => a - b)).toEqual(alone);
    expect(fence.script).not.toContain("systemctl stop");
    const s = c.stop(fencedFast, 60).script;
    const fenced = at(
      s,
      ...order,
      "systemctl kill --kill-whom=main --signal=SIGINT postgresql@15-main",
      "until test ! -e /var/lib/postgresql/15/main/postmaster.pid",
    );
    expect([...fenced].sort((a, b) => a - b)).toEqual(fenced);
  });

  it("an immediate stop bypasses pg_ctlcluster's redirect to systemctl (which stops fast)", () => {
    const s = c.stop({ mode: "immediate", fence: false }, 60).script;
    expect(s).toContain("pg_ctlcluster --skip-systemctl-redirect 15 main stop -m immediate");
    expect(s).toContain("systemctl reset-failed postgresql@15-main");
    expect(s).not.toContain("systemctl stop");
  });

  it("starts by setting start.conf back to auto, reloading, then systemctl start", () => {
    const s = c.start(60).script;
    at(s, "-e '$a auto'", "systemctl daemon-reload", "systemctl start postgresql@15-main");
    expect(c.startWhat).toBe("systemctl start postgresql@15-main");
  });

  it("reads status and promotes with pg_ctl on the cluster's data directory; rewinds with its config", () => {
    const cmds = hostCommands(exampleCluster("systemd"), systemdHost);
    expect(cmds.status).toEqual({
      user: "postgres",
      script: "/usr/lib/postgresql/15/bin/pg_ctl status -D /var/lib/postgresql/15/main",
    });
    expect(cmds.promote(60).script).toMatch(/^{ \/usr\/lib\/postgresql\/15\/bin\/pg_ctl promote /);
    expect(cmds.rewind(systemdHost).script).toContain(
      " --config-file=/etc/postgresql/15/main/postgresql.conf ",
    );
  });
});

describe("pg_ctlcluster and pg_ctl control", () => {
  it("pg_ctlcluster: as postgres, start.conf as the fence", () => {
    const c = lifecycle(clusterHost);
    const stop = c.stop(fencedFast, 60);
    expect(stop.user).toBe("postgres");
    at(stop.script, "-e '$a manual'", "pg_ctlcluster 15 main stop -m fast");
    at(c.start(60).script, "-e '$a auto'", "pg_ctlcluster 15 main start");
    expect(c.fence).toEqual({ user: "postgres", script: expect.stringMatching(/-e '\$a manual'/) });
    expect(c.fence.script).not.toContain("pg_ctlcluster");
  });

  it("pg_ctl: the marker as the fence; a config file outside the data directory goes with -o", () => {
    const c = lifecycle(pgCtlHost);
    expect(c.stop(fencedFast, 60).script).toMatch(
      /^touch \/var\/lib\/postgresql\/15\/main\.fenced && /,
    );
    expect(c.fence).toEqual({
      user: "postgres",
      script: "touch /var/lib/postgresql/15/main.fenced",
    });
    const withConfig = lifecycle({
      ...pgCtlHost,
      control: { mode: "pg_ctl", configFile: "/etc/pg/main.conf" },
    });
    expect(withConfig.start(30).script).toContain(
      `pg_ctl start -D /var/lib/postgresql/15/main -o '-c config_file=/etc/pg/main.conf' -l `,
    );
  });
});

describe("start.conf, edited and read as postgresql-common's generator reads it", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgsw-startconf-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const STOCK = `# Automatic startup configuration
#   auto: automatically start the cluster
#   manual: manual startup with pg_ctlcluster/postgresql@.service only
#   disabled: refuse to start cluster

auto
`;
  const edit = (before: string, word: "auto" | "manual") => {
    const file = join(dir, "start.conf");
    writeFileSync(file, before);
    let code = 0;
    try {
      execFileSync("sh", ["-c", setStartConf(file, word)], { stdio: "pipe" });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    const read = execFileSync("sh", ["-c", readStartConf(file)])
      .toString()
      .trim();
    return { code, read, text: readFileSync(file, "utf8") };
  };

  it("turns the stock file's auto into manual, keeping its comments, and back", () => {
    const manual = edit(STOCK, "manual");
    expect(manual).toMatchObject({ code: 0, read: "manual" });
    expect(manual.text).toBe(STOCK.replace(/auto\n$/, "manual\n"));
    expect(edit(manual.text, "auto")).toMatchObject({ code: 0, read: "auto", text: STOCK });
  });

  it("replaces a word anywhere (with a trailing comment, or disabled) and adds one that is missing", () => {
    expect(edit("auto  # started at boot\n# a note\n", "manual")).toMatchObject({
      code: 0,
      read: "manual",
      text: "# a note\nmanual\n",
    });
    expect(edit("# only comments\n", "manual")).toMatchObject({ code: 0, read: "manual" });
    expect(edit("disabled\n", "auto")).toMatchObject({ code: 0, read: "auto" });
  });

  it("fails, saying so, where it cannot confirm the word (an empty file reads as auto)", () => {
    expect(edit("", "manual")).toMatchObject({ code: 1, read: "" });
  });
});

describe("pre-flight: what runs the server agrees with the inventory", () => {
  const facts = (over: Partial<HostFacts["clusters"][number]> = {}, systemd = true) =>
    parseHostFacts(
      [
        `systemd ${systemd ? "yes" : "no"}`,
        "cluster 15 main 5432 online postgres /var/lib/postgresql/15/main",
        `startconf 15 main ${over.startConf ?? "auto"}`,
        systemd
          ? `unit 15 main ${over.unitEnabled ?? "enabled-runtime"} ${over.unitActive ?? "active"}`
          : "",
      ].join("\n"),
    );
  const judged = (h: HostSpec, f: HostFacts) =>
    judgeControl(h, f).map((c) => `${c.status} ${c.detail}`);

  it("a stock Debian host passes as systemd", () => {
    expect(judged(systemdHost, facts())).toEqual([
      "ok 15/main, online; fenced by start.conf manual (package scripts and boot start only auto clusters)",
    ]);
  });

  it("refuses, naming the field, an inventory that disagrees with the host", () => {
    expect(judged(clusterHost, facts())[0]).toMatch(
      /^fail field nodes\.node1\.control: pg_ctlcluster, but systemd runs/,
    );
    expect(judged(systemdHost, facts({}, false))[0]).toMatch(
      /^fail field nodes\.node1\.control: systemd, but systemd does not run/,
    );
    expect(judged({ ...systemdHost, port: 5433 }, facts())[0]).toMatch(
      /^fail field nodes\.node1\.port: 5433, but 15\/main listens on 5432/,
    );
    expect(judged({ ...systemdHost, dataDir: "/srv/pg" }, facts())[0]).toMatch(
      /^fail field nodes\.node1\.dataDir: /,
    );
    const other = {
      ...systemdHost,
      control: { mode: "systemd" as const, cluster: { version: "15", name: "data" } },
    };
    expect(judged(other, facts())[0]).toBe(
      "fail field nodes.node1.cluster: pg_lsclusters has no 15/data (it lists: 15/main)",
    );
    expect(judged(pgCtlHost, facts())[0]).toMatch(
      /^fail field nodes\.node1\.control: \/var\/lib\/postgresql\/15\/main is the postgresql-common cluster 15\/main \(start\.conf auto\)/,
    );
  });

  it("refuses a unit enabled by hand (boot ignores start.conf then) and a server outside its unit", () => {
    expect(judged(systemdHost, facts({ unitEnabled: "enabled" }))[0]).toMatch(
      /^fail postgresql@15-main is enabled by hand/,
    );
    expect(judged(systemdHost, facts({ unitActive: "inactive" }))[0]).toMatch(
      /^fail 15\/main runs outside postgresql@15-main/,
    );
    expect(judged(systemdHost, facts({ startConf: "disabled" }))[0]).toMatch(
      /^fail .*start\.conf says disabled/,
    );
    expect(judged(systemdHost, facts({ startConf: "manual" }))[0]).toMatch(
      /^warn 15\/main: start\.conf says manual/,
    );
  });

  it("a pg_ctl host is warned that its marker holds only if its boot checks it", () => {
    expect(judged(pgCtlHost, parseHostFacts("systemd no\n"))).toEqual([
      expect.stringMatching(
        /^warn the fence is \/var\/lib\/postgresql\/15\/main\.fenced: .*ConditionPathExists=!/,
      ),
    ]);
  });
});
