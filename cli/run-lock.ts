import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EnvironmentError } from "../core/errors.ts";
import type { ClusterSpec } from "../hosts/commands.ts";
import { stateDir } from "../hosts/state-dir.ts";

/** Another live run holds the pair: the CLI says which, and exits 3 without changing anything. */
export class RunLockedError extends EnvironmentError {
  override readonly name = "RunLockedError";
}

interface Holder {
  pid: number;
  journal: string;
  since: string;
}

/**
 * One run per pair on this machine: a lock file keyed by the pair's addresses and VIP, holding
 * the pid and journal of its run. A lock whose process is gone is taken over (a run killed
 * mid-way is resumed from its journal). Two operators on two machines are not stopped by it.
 */
export function lockPair(cluster: ClusterSpec, journal: string): { release(): void } {
  const key = [
    ...cluster.nodes.map((n) => `${n.address}:${n.port}`).sort(),
    cluster.vip.address,
  ].join(",");
  const dir = stateDir("locks");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${createHash("sha256").update(key).digest("hex").slice(0, 16)}.lock`);
  const me: Holder = { pid: process.pid, journal, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(me), { flag: "wx" });
      return {
        release: () => {
          if (holder(path)?.pid === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const h = holder(path);
      if (h && alive(h.pid)) {
        throw new RunLockedError(
          `another run (pid ${h.pid}, since ${h.since}, journal ${h.journal}) holds the pair ${key}: wait for it, or resume its journal once it has died`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new RunLockedError(`could not take the lock ${path}`);
}

function holder(path: string): Holder | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Holder;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
