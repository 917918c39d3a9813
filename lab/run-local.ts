import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Progress } from "../core/progress.ts";

export interface LocalRunOutcome {
  exitCode: number | null;
  timedOut: boolean;
  /** The last lines of output, to explain a failure. */
  tail: string[];
}

/**
 * Runs a program on this machine with a deadline, passing each output line to `onLine`.
 * A non-zero exit code is data; only a program that cannot be started rejects.
 */
export function runLocal(
  argv: string[],
  deadlineMs: number,
  onLine: Progress,
): Promise<LocalRunOutcome> {
  const [program, ...args] = argv;
  if (!program) throw new Error("runLocal: empty command");
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  const collect = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    onLine(line);
  };
  createInterface({ input: child.stdout }).on("line", collect);
  createInterface({ input: child.stderr }).on("line", collect);
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
    }, deadlineMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, timedOut, tail });
    });
  });
}
