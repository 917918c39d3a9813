import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import type { HostCommand } from "../commands.ts";

/** What a command printed and how it ended. A non-zero exit code is data, not an error. */
export interface ExecResult {
  /** null when the deadline passed before the command ended (its outcome is unknown). */
  exitCode: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** "postgres" for Postgres commands, "root" (the default) for ip, arping, apt-get. */
  user?: string;
  deadlineMs: number;
  env?: string[];
  workingDir?: string;
}

/**
 * Runs `cmd` (argv, no shell) inside a running container, like `docker exec`.
 * Rejects only when the transport breaks (engine gone, container missing or stopped).
 * On a timeout the command may still run inside the container: Docker cannot kill an exec.
 */
export async function execInContainer(
  docker: Docker,
  container: string,
  cmd: string[],
  options: ExecOptions,
): Promise<ExecResult> {
  const exec = await docker.getContainer(container).exec({
    Cmd: cmd,
    User: options.user ?? "root",
    Env: options.env,
    WorkingDir: options.workingDir,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const stdout = collect();
  const stderr = collect();
  docker.modem.demuxStream(stream, stdout.sink, stderr.sink);
  const ended = new Promise<"ended">((resolve, reject) => {
    stream.on("end", () => resolve("ended"));
    stream.on("close", () => resolve("ended"));
    stream.on("error", reject);
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), options.deadlineMs);
  });
  const how = await Promise.race([ended, deadline]).finally(() => clearTimeout(timer));
  if (how === "timeout") {
    (stream as unknown as { destroy?: () => void }).destroy?.();
    return { exitCode: null, timedOut: true, stdout: stdout.text(), stderr: stderr.text() };
  }
  const info = await exec.inspect();
  return {
    exitCode: info.ExitCode ?? null,
    timedOut: false,
    stdout: stdout.text(),
    stderr: stderr.text(),
  };
}

/** Runs a host command (hosts/commands.ts) in a container, as the command's user. */
export function runHostCommand(
  docker: Docker,
  container: string,
  cmd: HostCommand,
  deadlineMs: number,
): Promise<ExecResult> {
  return execInContainer(docker, container, ["sh", "-c", cmd.script], {
    user: cmd.user,
    deadlineMs,
  });
}

/** How a command that had to succeed ended instead, with the end of what it printed. */
export function describeFailure(result: ExecResult, deadlineMs: number): string {
  if (result.timedOut) return `did not finish within ${deadlineMs / 1000}s`;
  const said = (result.stderr || result.stdout).trim().slice(-1500);
  return `exited ${result.exitCode}${said ? `: ${said}` : ""}`;
}

function collect(): { sink: PassThrough; text: () => string } {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (chunk: Buffer) => chunks.push(chunk));
  return { sink, text: () => Buffer.concat(chunks).toString("utf8") };
}

/** Runs `cmd` in a throwaway container of `image` and returns its output (for image probes). */
export async function runInImage(
  docker: Docker,
  image: string,
  cmd: string[],
  deadlineMs: number,
): Promise<ExecResult> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: [],
    Cmd: cmd,
    Labels: { "pg-switchover.probe": "1" },
    HostConfig: { AutoRemove: false },
  });
  try {
    await container.start();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), deadlineMs);
    });
    const waited = await Promise.race([container.wait(), deadline]).finally(() =>
      clearTimeout(timer),
    );
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    const { stdout, stderr } = demuxBuffer(logs);
    const exitCode = waited === null ? null : (waited as { StatusCode: number }).StatusCode;
    return { exitCode, timedOut: waited === null, stdout, stderr };
  } finally {
    await container.remove({ force: true });
  }
}

/** Docker's multiplexed log format: frames of [stream, 0, 0, 0, size (4 bytes BE)] + payload. */
function demuxBuffer(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(at + 4);
    const payload = buffer.subarray(at + 8, at + 8 + size);
    (buffer[at] === 2 ? err : out).push(payload);
    at += 8 + size;
  }
  return {
    stdout: Buffer.concat(out).toString("utf8"),
    stderr: Buffer.concat(err).toString("utf8"),
  };
}
