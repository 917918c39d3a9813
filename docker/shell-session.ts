import { randomBytes } from "node:crypto";
import { type Duplex, PassThrough } from "node:stream";
import type Docker from "dockerode";
import { shellQuote } from "../executors/commands.ts";
import type { ExecResult } from "./exec.ts";

/**
 * A shell kept open in a container (`docker exec -i sh`), running one command at a time: a
 * command costs a few milliseconds instead of the ~100 ms of a fresh `docker exec`, which is
 * what keeps the switchover's write outage short. Each command runs in its own `sh -c` with
 * stdin from /dev/null; a marker with a random nonce ends its output on stdout (with the exit
 * status) and on stderr.
 */
export class ShellSession {
  private out = "";
  private err = "";
  private waiter: (() => void) | null = null;
  private closed: Error | null = null;

  private constructor(private readonly stream: Duplex) {}

  static async open(docker: Docker, container: string, user: string): Promise<ShellSession> {
    const exec = await docker.getContainer(container).exec({
      Cmd: ["sh"],
      User: user,
      WorkingDir: "/tmp",
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = (await exec.start({ hijack: true, stdin: true })) as Duplex;
    const session = new ShellSession(stream);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    docker.modem.demuxStream(stream, stdout, stderr);
    stdout.setEncoding("utf8");
    stderr.setEncoding("utf8");
    stdout.on("data", (c: string) => session.received("out", c));
    stderr.on("data", (c: string) => session.received("err", c));
    const end = (why: string) => () => session.end(new Error(`shell in ${container} ${why}`));
    stream.on("end", end("ended"));
    stream.on("close", end("closed"));
    stream.on("error", (e: Error) => session.end(e));
    return session;
  }

  get usable(): boolean {
    return this.closed === null;
  }

  /** Runs `script`; resolves when it ended or its deadline passed (the session is then closed). */
  async run(script: string, deadlineMs: number): Promise<ExecResult> {
    if (this.closed) throw this.closed;
    const mark = `__pg_switchover_${randomBytes(8).toString("hex")}`;
    const ended = new RegExp(`\\n${mark} (\\d+)\\n`);
    this.stream.write(
      `sh -c ${shellQuote(script)} </dev/null; printf '\\n%s %s\\n' ${mark} "$?"; printf '\\n%s\\n' ${mark} >&2\n`,
    );
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const code = ended.exec(this.out);
      const errAt = this.err.indexOf(`\n${mark}\n`);
      if (code && errAt >= 0) {
        const result = {
          exitCode: Number(code[1]),
          timedOut: false,
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
        return { exitCode: null, timedOut: true, ...partial };
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
    this.stream.destroy();
  }

  private received(which: "out" | "err", text: string): void {
    if (which === "out") this.out += text;
    else this.err += text;
    this.wake();
  }

  private end(why: Error): void {
    this.closed ??= why;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/** Sessions per container and user, opened on demand, each running one command at a time. */
export class ShellSessions {
  private readonly idle = new Map<string, ShellSession[]>();
  private readonly all = new Set<ShellSession>();

  constructor(private readonly docker: Docker) {}

  async run(container: string, user: string, script: string, deadlineMs: number) {
    const key = `${container}\0${user}`;
    const pool = this.idle.get(key) ?? [];
    this.idle.set(key, pool);
    let session = pool.pop();
    while (session && !session.usable) session = pool.pop();
    session ??= await ShellSession.open(this.docker, container, user);
    this.all.add(session);
    try {
      return await session.run(script, deadlineMs);
    } finally {
      if (session.usable) pool.push(session);
      else this.all.delete(session);
    }
  }

  closeAll(): void {
    for (const s of this.all) s.close();
    this.all.clear();
    this.idle.clear();
  }
}
