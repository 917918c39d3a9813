import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { HostSpec } from "../hosts/commands.ts";
import type { HostCommand } from "../hosts/shell.ts";
import {
  armCommand,
  claimCommand,
  endCommand,
  REVOKED_EXIT,
  refusedOnceTakenBack,
} from "../hosts/watchdog.ts";
import { newRunId } from "../plan/context.ts";

/**
 * The watchdog's commands run by a real `sh` on this machine, in a directory of their own: its
 * take-back's start and VIP-up are stand-ins that leave a file behind, so what it did is seen.
 */
function sh(cmd: HostCommand): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("sh", ["-c", cmd.script], { timeout: 10_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function host() {
  const root = mkdtempSync(join(tmpdir(), "pgs-watchdog-"));
  const dir = join(root, "watchdog");
  // The server's stand-in: "accepts connections" (pg_isready) once the start has run.
  mkdirSync(join(root, "bin"));
  writeFileSync(join(root, "bin", "pg_isready"), `#!/bin/sh\n[ -e ${root}/started ]\n`, {
    mode: 0o755,
  });
  const spec = {
    name: "node1",
    socketDir: root,
    port: 5432,
    osUser: "postgres",
    pgBin: join(root, "bin"),
  } as HostSpec;
  const done = (what: string): HostCommand => ({ user: "root", script: `touch ${root}/${what}` });
  const arm = (runId: string, afterMs: number) =>
    sh(
      armCommand(
        runId,
        afterMs,
        { host: spec, start: done("started"), vipUp: done("vip-up"), poolers: [] },
        dir,
      ),
    );
  /** A forward command of the run: refused once the watchdog took the run back. */
  const forward = (runId: string) =>
    sh({ user: "root", script: `${refusedOnceTakenBack(runId, dir)}; echo went-on` });
  const log = (runId: string) => {
    const f = join(dir, `${runId}.log`);
    return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n") : [];
  };
  const decision = (runId: string) => {
    const f = join(dir, `${runId}.decision`);
    try {
      return readlinkSync(f);
    } catch {
      return null;
    }
  };
  const did = (what: string) => existsSync(join(root, what));
  const waitForLog = async (runId: string) => {
    for (let i = 0; i < 100 && log(runId).length === 0; i++) await sleep(50);
    for (
      let i = 0;
      i < 40 && !/took the run back|not acting|FAILED/.test(log(runId).at(-1) ?? "");
      i++
    )
      await sleep(50);
  };
  return { dir, arm, forward, log, decision, did, waitForLog };
}

describe("the run's watchdog on a host", () => {
  it("takes the run back when the promotion was not claimed in time, and refuses the run's forward commands from then on", async () => {
    const h = host();
    const run = newRunId();
    expect((await h.arm(run, 300)).code).toBe(0);
    expect((await h.forward(run)).stdout.trim()).toBe("went-on");
    await h.waitForLog(run);
    expect(h.decision(run)).toBe("watchdog");
    expect(h.did("started")).toBe(true);
    expect(h.did("vip-up")).toBe(true);
    expect(h.log(run).at(-1)).toMatch(
      /took the run back: node1 serves again, unfenced, with the VIP$/,
    );
    const refused = await h.forward(run);
    expect(refused.code).toBe(REVOKED_EXIT);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain("the watchdog took this run back on this host");
    expect(refused.stderr).toContain("took the run back: node1 serves again");
    // The claim comes too late: the run does not promote.
    expect((await sh(claimCommand(run, h.dir))).code).not.toBe(0);
  });

  it("does nothing once the run claimed the promotion: the claim and the take-back exclude each other", async () => {
    const h = host();
    const run = newRunId();
    await h.arm(run, 300);
    expect((await sh(claimCommand(run, h.dir))).code).toBe(0);
    // Claiming again (a resumed run) is the same claim.
    expect((await sh(claimCommand(run, h.dir))).code).toBe(0);
    await h.waitForLog(run);
    expect(h.decision(run)).toBe("promote");
    expect(h.log(run).at(-1)).toContain("not acting: the run decided first: promote");
    expect(h.did("started")).toBe(false);
    expect((await h.forward(run)).stdout.trim()).toBe("went-on");
  });

  it("is stopped by the run's end where it started, and made inert by a later run's arm", async () => {
    const h = host();
    const ended = newRunId();
    await h.arm(ended, 400);
    expect((await sh(endCommand(ended, h.dir))).code).toBe(0);
    expect(h.decision(ended)).toBe("ended");
    const earlier = newRunId();
    const later = newRunId();
    await h.arm(earlier, 400);
    await h.arm(later, 60_000);
    await h.waitForLog(earlier);
    expect(h.log(earlier).at(-1)).toContain("not acting: a later run armed its own watchdog");
    await sleep(300);
    // The ended run's watchdog never fired: no log, nothing started.
    expect(h.log(ended)).toEqual([]);
    expect(h.did("started")).toBe(false);
    await sh(endCommand(later, h.dir));
  });
});
