import { afterAll, beforeAll } from "vitest";
import type { Progress } from "../../core/progress.ts";
import { connectDocker, DockerUnavailableError } from "../../lab/engine.ts";
import { type LabStatus, labDown } from "../../lab/lifecycle.ts";

/**
 * Whether the lab tests can run: they need a Docker engine. Without one they are skipped, loudly;
 * under CI=true they run anyway and fail, so a green CI always means the lab was exercised.
 */
export async function labEnvironment(
  what: string,
): Promise<{ skip: boolean; problem: string | null }> {
  let problem: string | null = null;
  try {
    await connectDocker();
  } catch (err) {
    if (!(err instanceof DockerUnavailableError)) throw err;
    problem = err.message;
  }
  const inCi = process.env.CI === "true";
  if (problem && !inCi) {
    process.stderr.write(`\n*** ${what} SKIPPED: ${problem}\n*** (under CI=true this fails)\n\n`);
  }
  return { skip: problem !== null && !inCi, problem };
}

/**
 * A fresh lab for one describe block: brought up from nothing before its tests (a lab left by an
 * earlier file goes first), removed after. Returns the status `lab up` gave.
 */
export function freshLab(
  up: () => Promise<LabStatus>,
  progress: Progress,
  problem: string | null,
): () => LabStatus {
  const minute = 60_000;
  let status: LabStatus | undefined;
  beforeAll(async () => {
    if (problem) throw new Error(`CI=true and ${problem}`);
    await labDown(progress);
    status = await up();
  }, 40 * minute);
  afterAll(async () => {
    if (!problem) await labDown(progress);
  }, 5 * minute);
  return () => {
    if (!status) throw new Error("the lab was not brought up");
    return status;
  };
}
