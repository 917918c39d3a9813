import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hostDeadline } from "../core/timeouts.ts";
import { STILL_RUNS_EXIT, underDeadline } from "../hosts/shell.ts";

/**
 * The wrapper every host command runs in (shell.ts underDeadline), run by this machine's own
 * sh and coreutils `timeout`: what the lab and production hosts run it with.
 */
const dir = mkdtempSync(join(tmpdir(), "pgs-deadline-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const own = join(dir, "root");
const other = join(dir, "postgres");

function run(script: string, termMs: number, exclusive = true) {
  const cmd = underDeadline(
    { user: "root", script },
    { termMs, killAfterMs: 500, exclusive: exclusive ? { own, others: [other] } : null },
  );
  const started = Date.now();
  const r = spawnSync("/bin/sh", ["-c", cmd.script], { encoding: "utf8", timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}
/** Whether any process's command line holds `marker`. */
const running = (marker: string) =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .some((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    });

describe("a host command under its deadline", () => {
  it("derives TERM and KILL from the step's deadline, both before it passes", () => {
    for (const ms of [2_000, 30_000, 60_000, 600_000, 3_600_000]) {
      const d = hostDeadline(ms);
      expect(d.termMs + d.killAfterMs).toBeLessThan(ms);
      expect(d.termMs).toBeGreaterThan(ms * 0.8);
    }
  });

  it("passes output and exit code through", () => {
    const r = run("echo out; echo err >&2; exit 3", 5_000);
    expect(r).toMatchObject({ code: 3, stdout: "out\n", stderr: "err\n" });
    expect(run("echo fine", 5_000, false)).toMatchObject({ code: 0, stdout: "fine\n" });
  });

  it("stops the whole process group at the deadline, KILL for what ignores TERM", () => {
    const r = run("trap '' TERM; sleep 61.5 & sleep 61.5; wait", 1_000);
    expect(r.code).toBe(137);
    expect(r.stderr).toMatch(/stopped on the host at its deadline/);
    expect(r.ms).toBeLessThan(1_000 + 1_000 + 500);
    expect(running("sleep 61.5")).toBe(false);
  });

  it("a change waits for an earlier one still running, or refuses naming it", async () => {
    const cmd = underDeadline(
      { user: "root", script: "sleep 62.5" },
      { termMs: 2_000, killAfterMs: 500, exclusive: { own: other, others: [own] } },
    );
    const { spawn } = await import("node:child_process");
    const earlier = spawn("/bin/sh", ["-c", cmd.script], { stdio: "ignore" });
    const ended = new Promise((r) => earlier.on("exit", r));
    // Until the earlier one has written its pid file (a fixed 300 ms was too little on a busy CI
    // machine: the second then found nothing running), with a deadline.
    const pidFile = join(other, "command.pid");
    for (const giveUp = Date.now() + 10_000; !existsSync(pidFile); ) {
      if (Date.now() > giveUp) throw new Error(`${pidFile} never appeared`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Half of 1 s is too little to wait for the 2 s one: refused.
    const refused = run("echo second", 1_000);
    expect(refused.code).toBe(STILL_RUNS_EXIT);
    expect(refused.stderr).toMatch(/an earlier command \(process group \d+\) still runs/);
    expect(refused.stdout).toBe("");
    // Half of 10 s is enough: it starts once the earlier one is gone, not before (it looks for
    // it as it starts; a time measured here flaked on a busy CI machine).
    const after = run(
      "if pgrep -f '^sleep 62.5$' >/dev/null; then echo overlapped; else echo third; fi",
      10_000,
    );
    expect(after).toMatchObject({ code: 0, stdout: "third\n" });
    expect(running("sleep 62.5")).toBe(false);
    await ended;
  });
});
