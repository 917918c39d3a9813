import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { EnvironmentError } from "../core/errors.ts";
import type { Progress } from "../core/progress.ts";
import { readHostArchives } from "./apt-sources.ts";
import { followDockerStream } from "./docker-stream.ts";
import { runLocal } from "./run-local.ts";

/**
 * The lab's Debian bookworm base image. No container registry is reachable, so it is bootstrapped
 * from Debian's archive with debootstrap and imported once; the tag is the cache.
 */
export const BASE_IMAGE = "pg-switchover/base:bookworm";

const DEBOOTSTRAP_DEADLINE_MS = 20 * 60_000;
const IMPORT_DEADLINE_MS = 10 * 60_000;

export class BaseImageError extends EnvironmentError {
  override readonly name = "BaseImageError";
}

export async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** Returns the base image tag, bootstrapping and importing it first when it is missing. */
export async function ensureBaseImage(docker: Docker, progress: Progress): Promise<string> {
  if (await imageExists(docker, BASE_IMAGE)) {
    progress(`base image ${BASE_IMAGE} present`);
    return BASE_IMAGE;
  }
  const sources = readHostArchives();
  if (!sources.ok) throw new BaseImageError(`cannot bootstrap ${BASE_IMAGE}: ${sources.reason}`);
  const root = await mkdtemp(join(tmpdir(), "pg-switchover-base-"));
  try {
    await debootstrap(root, sources.archives.mirror, progress);
    await importFolder(docker, root, progress);
  } finally {
    progress(`removing ${root}`);
    await rm(root, { recursive: true, force: true });
  }
  return BASE_IMAGE;
}

async function debootstrap(root: string, mirror: string, progress: Progress): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new BaseImageError(
      `bootstrapping ${BASE_IMAGE} needs root (debootstrap): run as root once, the image is cached`,
    );
  }
  progress(`bootstrapping Debian bookworm (minbase) from ${mirror} into ${root}`);
  const started = performance.now();
  const outcome = await runLocal(
    ["debootstrap", "--variant=minbase", "bookworm", root, mirror],
    DEBOOTSTRAP_DEADLINE_MS,
    phaseChanges(progress),
  );
  if (outcome.timedOut || outcome.exitCode !== 0) {
    const why = outcome.timedOut ? "did not finish in time" : `exited with ${outcome.exitCode}`;
    throw new BaseImageError(`debootstrap ${why}:\n  ${outcome.tail.join("\n  ")}`);
  }
  progress(`debootstrap done in ${seconds(started)}s`);
}

/** debootstrap prints lines per package; forward the first line of each activity and problems. */
function phaseChanges(progress: Progress): Progress {
  const seen = new Set<string>();
  return (line) => {
    const match = /^([IWE]): (\S+)/.exec(line);
    if (!match?.[2]) return;
    if (match[1] === "I" && seen.has(match[2])) return;
    seen.add(match[2]);
    progress(`debootstrap: ${line}`);
  };
}

async function importFolder(docker: Docker, root: string, progress: Progress): Promise<void> {
  progress(`importing ${root} as ${BASE_IMAGE}`);
  const started = performance.now();
  const [repo, tag] = BASE_IMAGE.split(":");
  const tar = spawn("tar", ["-C", root, "--numeric-owner", "-c", "."], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const abort = AbortSignal.timeout(IMPORT_DEADLINE_MS);
  const stream = await docker.importImage(tar.stdout, {
    repo,
    tag,
    changes: ['CMD ["/bin/bash"]'],
    abortSignal: abort,
  } as object);
  const outcome = await followDockerStream(docker, stream, () => {});
  const tarCode = await new Promise<number | null>((resolve) => {
    if (tar.exitCode !== null) resolve(tar.exitCode);
    else tar.on("close", resolve);
  });
  if (!outcome.ok || tarCode !== 0) {
    throw new BaseImageError(`docker import failed (tar exit ${tarCode}): ${outcome.error ?? ""}`);
  }
  progress(`imported ${BASE_IMAGE} in ${seconds(started)}s`);
}

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);
