import { randomBytes } from "node:crypto";
import type { Writable } from "node:stream";
import { shellQuote } from "./commands.ts";
import type { CommandResult } from "./host-executor.ts";

/**
 * A shell kept open on a host (`docker exec -i sh`, or `sh` on an SSH channel), running one
 * command at a time: a command costs a few milliseconds instead of the ~100 ms of a fresh
 * `docker exec` or SSH channel with sudo, which is what keeps the switchover's write outage short.
 * Each command runs in its own `sh -c` with stdin from /dev/null; a marker with a random nonce
 * ends its output on stdout (with the exit status) and on stderr. Whoever opens the shell feeds
 * it its output (`received`) and tells it when the transport ended (`end`).
 */
export class ShellSession {
  private out = "";
  private err = "";
  private waiter: (() => void) | null = null;
  private closed: Error | null = null;

  constructor(
    private readonly stdin: Writable,
    private readonly destroy: () => void,
  ) {}

  get usable(): boolean {
    return this.closed === null;
  }

  /** Runs `script`; resolves when it ended or its deadline passed (the session is then closed). */
  async run(script: string, deadlineMs: number): Promise<CommandResult> {
    if (this.closed) throw this.closed;
    const mark = `__pg_switchover_${randomBytes(8).toString("hex")}`;
    const ended = new RegExp(`\\n${mark} (\\d+)\\n`);
    this.stdin.write(
      `sh -c ${shellQuote(script)} </dev/null; printf '\\n%s %s\\n' ${mark} "$?"; printf '\\n%s\\n' ${mark} >&2\n`,
    );
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const code = ended.exec(this.out);
      const errAt = this.err.indexOf(`\n${mark}\n`);
      if (code && errAt >= 0) {
        const result = {
          code: Number(code[1]),
          stdout: this.out.slice(0, code.index),
          stderr: this.err.slice(0, errAt),
        };
        this.out = this.out.slice(code.index + code[0].length);
        this.err = this.err.slice(errAt + mark.length + 2);
        return result;
      }
      if (this.closed) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0) {
        const partial = { stdout: this.out, stderr: this.err };
        this.close();
        return { code: null, ...partial };
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.end(new Error("shell session closed"));
    this.destroy();
  }

  /** Output of the shell, as it arrives. */
  received(which: "out" | "err", text: string): void {
    if (which === "out") this.out += text;
    else this.err += text;
    this.wake();
  }

  /** The transport ended: the command running, if any, and every later one fail with `why`. */
  end(why: Error): void {
    this.closed ??= why;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/**
 * Sessions per host and user, opened on demand (with `open`, when none is idle), each running one
 * command at a time. At most `maxIdle` idle ones are kept per host and user (the rest are
 * closed), so that the open sessions stay near the number of commands running at once.
 */
export class ShellSessions {
  private readonly idle = new Map<string, ShellSession[]>();
  private readonly all = new Set<ShellSession>();

  constructor(private readonly maxIdle = 2) {}

  async run(
    host: string,
    user: string,
    script: string,
    deadlineMs: number,
    open: () => Promise<ShellSession>,
    signal?: AbortSignal,
  ): Promise<CommandResult> {
    const key = `${host}\0${user}`;
    const pool = this.idle.get(key) ?? [];
    this.idle.set(key, pool);
    let session = pool.pop();
    while (session && !session.usable) session = pool.pop();
    session ??= await open();
    this.all.add(session);
    try {
      // Abandoned while it waited for a shell: never sent, so it cannot run after a retry.
      if (signal?.aborted)
        return { code: null, stdout: "", stderr: "not sent: its call was abandoned" };
      return await session.run(script, deadlineMs);
    } finally {
      if (session.usable && pool.length < this.maxIdle) pool.push(session);
      else {
        if (session.usable) session.close();
        this.all.delete(session);
      }
    }
  }

  closeAll(): void {
    for (const s of this.all) s.close();
    this.all.clear();
    this.idle.clear();
  }
}
