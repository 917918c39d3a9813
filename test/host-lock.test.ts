import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { HostSpec } from "../hosts/commands.ts";
import type { CommandRunner } from "../hosts/host-executor.ts";
import {
  HostLockedError,
  holderName,
  type LockHolder,
  takeHostLocks,
  thisOperator,
} from "../hosts/host-lock.ts";

/**
 * The run lock's commands run by a real `sh` (with util-linux's flock), each "host" a directory
 * of this machine: what two operators see when they go for the same pair.
 */
const local: CommandRunner = (_host, cmd, deadlineMs) =>
  new Promise((resolve) => {
    execFile("sh", ["-c", cmd.script], { timeout: deadlineMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });

const node = (name: string) => ({ name }) as HostSpec;

/**
 * One lock directory per host, as /run/pg-switchover is one per host: each "host" runs the
 * commands with its own directory in place of the one they name.
 */
function pair() {
  const root = mkdtempSync(join(tmpdir(), "pgs-hostlock-"));
  const dirs: Record<string, string> = { node1: join(root, "node1"), node2: join(root, "node2") };
  const SAME = "/pgs-lock-dir";
  const run: CommandRunner = (host, cmd, ms) =>
    local(host, { ...cmd, script: cmd.script.replaceAll(SAME, dirs[host.name] as string) }, ms);
  const lockOf = (n: string): LockHolder | null => {
    const f = join(dirs[n] as string, "run.lock");
    return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as LockHolder) : null;
  };
  const take = (me: LockHolder, takeOver: string | null = null, order = ["node2", "node1"]) =>
    takeHostLocks({
      run,
      hosts: order.map(node),
      me,
      takeOver,
      deadlineMs: 10_000,
      dir: SAME,
    });
  return { dirs, lockOf, take };
}

/** A pid that was a process of this machine and is no more. */
function deadPid(): number {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

describe("the run lock on the hosts", () => {
  it("a second operator is refused, naming the first, and holds nothing after", async () => {
    const p = pair();
    const first = thisOperator("/runs/a.jsonl", new Date());
    const second = { ...thisOperator("/runs/b.jsonl", new Date()), operator: "bob@laptop2" };
    const lock = await p.take(first);
    expect(p.lockOf("node1")?.token).toBe(first.token);
    expect(p.lockOf("node2")?.token).toBe(first.token);
    const refused = await p.take(second).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HostLockedError);
    expect((refused as Error).message).toContain(holderName(first));
    expect((refused as Error).message).toContain("/runs/a.jsonl");
    expect(p.lockOf("node1")?.token).toBe(first.token);
    await lock.release();
    expect(p.lockOf("node1")).toBeNull();
    expect(p.lockOf("node2")).toBeNull();
    const then = await p.take(second);
    expect(p.lockOf("node2")?.operator).toBe("bob@laptop2");
    await then.release();
  });

  it("of two operators going for a free pair at once (inventories in either order), exactly one gets it", async () => {
    for (let i = 0; i < 5; i++) {
      const p = pair();
      const a = thisOperator("/runs/a.jsonl", new Date());
      const b = thisOperator("/runs/b.jsonl", new Date());
      const results = await Promise.allSettled([
        p.take(a, null, ["node1", "node2"]),
        p.take(b, null, ["node2", "node1"]),
      ]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const winner = results[0]?.status === "fulfilled" ? a : b;
      expect(p.lockOf("node1")?.token).toBe(winner.token);
      expect(p.lockOf("node2")?.token).toBe(winner.token);
    }
  });

  it("a holder of this machine whose process died is taken over; another machine's only by name", async () => {
    const p = pair();
    const dead = { ...thisOperator("/runs/dead.jsonl", new Date()), pid: deadPid() };
    await p.take(dead);
    const me = thisOperator("/runs/me.jsonl", new Date());
    const mine = await p.take(me);
    expect(p.lockOf("node1")?.token).toBe(me.token);
    await mine.release();

    const elsewhere = { ...dead, machine: "other-laptop", operator: "carol@other-laptop" };
    await p.take(elsewhere);
    await expect(p.take(me)).rejects.toThrow(/--take-over "carol@other-laptop pid \d+"/);
    await expect(p.take(me, "someone else")).rejects.toThrow(HostLockedError);
    const forced = await p.take(me, holderName(elsewhere));
    expect(p.lockOf("node2")?.token).toBe(me.token);
    await forced.release();
  });

  it("a release leaves a lock that is no longer ours, and a garbled lock file is named, not taken", async () => {
    const p = pair();
    const me = thisOperator("/runs/me.jsonl", new Date());
    const lock = await p.take(me);
    const other = thisOperator("/runs/other.jsonl", new Date());
    writeFileSync(join(p.dirs.node1 as string, "run.lock"), `${JSON.stringify(other)}\n`);
    await lock.release();
    expect(p.lockOf("node1")?.token).toBe(other.token);
    expect(p.lockOf("node2")).toBeNull();
    rmSync(join(p.dirs.node1 as string, "run.lock"));
    writeFileSync(join(p.dirs.node2 as string, "run.lock"), "not json\n");
    await expect(p.take(me)).rejects.toThrow(/run\.lock holds something that is not a run's lock/);
    expect(p.lockOf("node1")).toBeNull();
  });
});
