import Docker from "dockerode";
import { EnvironmentError } from "../core/errors.ts";

/** The Docker engine cannot be reached: the CLI maps this to exit code 3. */
export class DockerUnavailableError extends EnvironmentError {
  override readonly name = "DockerUnavailableError";
}

const PING_DEADLINE_MS = 5_000;

/** Where dockerode will connect, the way a person would write it (DOCKER_HOST or the socket). */
export function engineAddress(): string {
  return process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
}

/**
 * Connects to the local Docker engine and checks that it answers.
 * @throws DockerUnavailableError with a message that says how to start it.
 */
export async function connectDocker(): Promise<Docker> {
  const docker = new Docker();
  try {
    await withDeadline(docker.ping(), PING_DEADLINE_MS, "no answer to ping");
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err);
    throw new DockerUnavailableError(
      `Docker engine not reachable at ${engineAddress()} (${cause.trim()}): ` +
        "start it with `sudo scripts/ensure-docker.sh` (installs docker.io and debootstrap " +
        "when missing, then starts dockerd).",
      { cause: err },
    );
  }
  return docker;
}

/** Rejects with `reason` if `promise` has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, reason: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${reason} within ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
