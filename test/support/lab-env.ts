import { connectDocker, DockerUnavailableError } from "../../lab/engine.ts";

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
