import { randomBytes } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { EnvironmentError } from "../core/errors.ts";
import type { HostSpec } from "./commands.ts";
import type { CommandRunner } from "./host-executor.ts";
import { type HostCommand, shellQuote } from "./shell.ts";

/**
 * Another operator's run holds the pair (or a host's lock could not be read): the CLI names the
 * holder and exits 3, nothing changed.
 */
export class HostLockedError extends EnvironmentError {
  override readonly name = "HostLockedError";
}

/** Who holds a pair: written into the lock file on both hosts. */
export interface LockHolder {
  /** `user@machine` of the operator's process. */
  operator: string;
  machine: string;
  pid: number;
  since: string;
  journal: string;
  /** Random per run: only the run that wrote it releases or replaces it. */
  token: string;
}

/**
 * On the hosts, not on the operator's machine: two operators on two machines see the same lock.
 * Under /run (a tmpfs), so a host's reboot clears it there; the other host's copy still holds,
 * and a lock is taken on both hosts in the same order.
 */
export const HOST_LOCK_DIR = "/run/pg-switchover";

/** This process as a lock holder, for a run journaled at `journal`. */
export function thisOperator(journal: string, now: Date): LockHolder {
  const machine = hostname();
  return {
    operator: `${userInfo().username}@${machine}`,
    machine,
    pid: process.pid,
    since: now.toISOString(),
    journal,
    token: randomBytes(12).toString("hex"),
  };
}

/** How an error and `--take-over` name a holder. */
export function holderName(h: LockHolder): string {
  return `${h.operator} pid ${h.pid}`;
}

/**
 * The lock file and its guard: every change to the lock runs under `flock` on the guard (util-linux,
 * Essential on Debian), so reading who holds it and writing ourselves in are one step.
 */
function lockFiles(dir: string) {
  const file = `${dir}/run.lock`;
  const guarded = (body: string) =>
    `mkdir -p ${shellQuote(dir)} && exec 9>>${shellQuote(`${dir}/.guard`)} && flock -w 10 9 && { ${body}; }`;
  return { file: shellQuote(file), temp: shellQuote(`${file}.new`), guarded };
}

/** Prints the lock file's holder, or nothing when the pair is free. */
export function readLockCommand(dir = HOST_LOCK_DIR): HostCommand {
  const { file } = lockFiles(dir);
  return { user: "root", script: `if [ -s ${file} ]; then cat ${file}; fi` };
}

/**
 * Writes `me` into the lock when it is free, or held by the holder with token `replacing` (our own
 * earlier run, or one proven gone). Otherwise exits 3 printing the holder.
 */
export function takeLockCommand(
  me: LockHolder,
  replacing: string | null,
  dir = HOST_LOCK_DIR,
): HostCommand {
  const { file, temp, guarded } = lockFiles(dir);
  const ours = replacing ? ` && ! grep -qF ${shellQuote(`"token":"${replacing}"`)} ${file}` : "";
  return {
    user: "root",
    script: guarded(
      `if [ -s ${file} ]${ours}; then cat ${file}; exit 3; fi; printf '%s\\n' ${shellQuote(JSON.stringify(me))} > ${temp} && mv -f ${temp} ${file}`,
    ),
  };
}

/** Removes the lock if it is still ours (a holder that took it over keeps it). */
export function releaseLockCommand(token: string, dir = HOST_LOCK_DIR): HostCommand {
  const { file, guarded } = lockFiles(dir);
  return {
    user: "root",
    script: `if [ -e ${file} ]; then ${guarded(`if grep -qF ${shellQuote(`"token":"${token}"`)} ${file}; then rm -f ${file}; fi`)}; fi`,
  };
}

export type LockSeen = { free: true } | { free: false; holder: LockHolder };

export function parseHolder(node: string, text: string): LockSeen {
  if (text.trim() === "") return { free: true };
  try {
    const h = JSON.parse(text) as LockHolder;
    if (typeof h.token === "string" && typeof h.operator === "string")
      return { free: false, holder: h };
  } catch {}
  throw new HostLockedError(
    `${node}: ${HOST_LOCK_DIR}/run.lock holds something that is not a run's lock (${JSON.stringify(text.slice(0, 200))}): look at it, and remove it by hand if no run is going on`,
  );
}

/**
 * A holder is provably gone when it ran on this machine and its process is no more (a run killed
 * mid-way: its journal resumes). One on another machine is gone only when the operator says so,
 * naming it (`--take-over`).
 */
export function holderGone(h: LockHolder, me: LockHolder, takeOver: string | null): boolean {
  if (takeOver !== null && takeOver === holderName(h)) return true;
  return h.machine === me.machine && !processAlive(h.pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface HostLockOptions {
  run: CommandRunner;
  hosts: readonly HostSpec[];
  me: LockHolder;
  takeOver: string | null;
  deadlineMs: number;
  /** Where the lock lives on the hosts (tests use a temporary one). */
  dir?: string;
}

/** Each host's lock as it is now: pre-flight's check, read-only. */
export async function readHostLocks(
  o: Pick<HostLockOptions, "run" | "hosts" | "deadlineMs" | "dir">,
): Promise<{ node: string; seen: LockSeen }[]> {
  return Promise.all(
    o.hosts.map(async (h) => {
      const r = await o.run(h, readLockCommand(o.dir), o.deadlineMs);
      if (r.code !== 0)
        throw new HostLockedError(
          `${h.name}: cannot read the run lock: ${r.stderr.trim() || `exit ${r.code}`}`,
        );
      return { node: h.name, seen: parseHolder(h.name, r.stdout) };
    }),
  );
}

/**
 * Takes the pair's lock on every host, in the order of their names (two operators starting at
 * once both go for the same host first: one gets it, the other is refused before holding any).
 * A holder proven gone is replaced; a live one is named in the refusal, and what was taken is
 * given back.
 */
export async function takeHostLocks(o: HostLockOptions): Promise<{ release(): Promise<void> }> {
  const hosts = [...o.hosts].sort((a, b) => a.name.localeCompare(b.name));
  const taken: HostSpec[] = [];
  const release = async () => {
    await Promise.allSettled(
      taken.map((h) => o.run(h, releaseLockCommand(o.me.token, o.dir), o.deadlineMs)),
    );
  };
  try {
    for (const h of hosts) {
      const [first] = await readHostLocks({ ...o, hosts: [h] });
      const seen = first?.seen ?? { free: true };
      let replacing: string | null = null;
      if (!seen.free) {
        if (!holderGone(seen.holder, o.me, o.takeOver)) throw lockedBy(h.name, seen.holder);
        replacing = seen.holder.token;
      }
      const r = await o.run(h, takeLockCommand(o.me, replacing, o.dir), o.deadlineMs);
      if (r.code === 3) {
        const now = parseHolder(h.name, r.stdout);
        throw now.free
          ? new HostLockedError(`${h.name}: the run lock changed hands`)
          : lockedBy(h.name, now.holder);
      }
      if (r.code !== 0)
        throw new HostLockedError(
          `${h.name}: cannot take the run lock: ${r.stderr.trim() || `exit ${r.code}`}`,
        );
      taken.push(h);
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { release };
}

export function lockedBy(node: string, h: LockHolder): HostLockedError {
  return new HostLockedError(`${node}: another run holds the pair: ${heldBy(h)}`);
}

/** Who holds the lock and what the operator can do about it: the refusal's and pre-flight's words. */
export function heldBy(h: LockHolder): string {
  return `held by ${holderName(h)} since ${h.since} (journal ${h.journal} on ${h.machine}): wait for it, resume its journal there, or, if it is gone, --take-over ${JSON.stringify(holderName(h))}`;
}
