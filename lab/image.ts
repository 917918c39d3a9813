import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type Docker from "dockerode";
import { EnvironmentError } from "../core/errors.ts";
import type { Progress } from "../core/progress.ts";
import { debianVersion } from "../hosts/commands.ts";
import { runInImage } from "../hosts/transports/docker-exec.ts";
import { type DebianArchives, readHostArchives } from "./apt-sources.ts";
import { imageExists } from "./base-image.ts";
import { followDockerStream } from "./docker-stream.ts";
import type { HostKind } from "./topology.ts";
import { missingVersions } from "./versions.ts";

/** The lab images' build context: the Dockerfile (one target per host kind) and what it copies. */
export const LAB_CONTEXT = fileURLToPath(new URL("./image/", import.meta.url));
export const IMAGE_LABEL = "pg-switchover.image";

const BUILD_DEADLINE_MS = 30 * 60_000;

export class ImageBuildError extends EnvironmentError {
  override readonly name = "ImageBuildError";
}

interface BuildInputs {
  baseImage: string;
  from: string;
  /** The version a switchover upgrades to: its packages are downloaded into the image. */
  to: string;
  archives: DebianArchives;
}

/**
 * Image tags for one set of inputs: the same inputs always give the same tags (the cache key).
 * Each host kind is its own target of the Dockerfile, with its own tag.
 */
export function labImageTags(inputs: BuildInputs): { apt: string } & Record<HostKind, string> {
  const hash = createHash("sha256");
  for (const name of contextFiles()) {
    hash
      .update(`${name}\0`)
      .update(readFileSync(join(LAB_CONTEXT, name)))
      .update("\0");
  }
  hash.update(JSON.stringify([inputs.baseImage, inputs.archives.mirror, inputs.archives.security]));
  const aptHash = hash.copy().digest("hex").slice(0, 12);
  hash.update(`${debianVersion(inputs.from)}\0${debianVersion(inputs.to)}`);
  const hostTag = (kind: HostKind) => {
    const h = hash.copy().update(`\0${kind}`).digest("hex").slice(0, 12);
    return `pg-switchover/lab:${inputs.from}-${kind.replace("_", "")}-${h}`;
  };
  return {
    apt: `pg-switchover/apt:bookworm-${aptHash}`,
    debian: hostTag("debian"),
    pg_ctl: hostTag("pg_ctl"),
  };
}

function contextFiles(): string[] {
  return readdirSync(LAB_CONTEXT).sort();
}

export function hostArchives(): DebianArchives {
  const found = readHostArchives();
  if (!found.ok) throw new ImageBuildError(`cannot configure the lab image's apt: ${found.reason}`);
  return found.archives;
}

/**
 * Builds one target of lab/image/Dockerfile (`apt`: sources + lists; `debian`, `pg_ctl`: a host
 * image of that kind) unless `tag` already exists. Streams the build output to `progress`.
 */
export async function ensureTarget(
  docker: Docker,
  target: "apt" | HostKind,
  tag: string,
  inputs: BuildInputs,
  progress: Progress,
  signal?: AbortSignal,
): Promise<void> {
  if (await imageExists(docker, tag)) {
    progress(`image ${tag} present`);
    return;
  }
  progress(`building ${tag} (target ${target}; the first build downloads packages, minutes)`);
  await buildImage(
    docker,
    {
      context: LAB_CONTEXT,
      files: contextFiles(),
      tag,
      target,
      buildargs: {
        BASE_IMAGE: inputs.baseImage,
        DEBIAN_MIRROR: inputs.archives.mirror,
        DEBIAN_SECURITY: inputs.archives.security,
        PG_VERSION: debianVersion(inputs.from),
        PG_TARGET_VERSION: debianVersion(inputs.to),
      },
    },
    progress,
    signal,
  );
}

interface ImageBuild {
  context: string;
  files: string[];
  tag: string;
  /** The Dockerfile's target, also the image's label. */
  target: string;
  dockerfile?: string;
  buildargs: Record<string, string>;
}

async function buildImage(
  docker: Docker,
  b: ImageBuild,
  progress: Progress,
  signal?: AbortSignal,
): Promise<void> {
  const started = performance.now();
  const stream = await docker.buildImage({ context: b.context, src: b.files }, {
    t: b.tag,
    ...(b.dockerfile ? { dockerfile: b.dockerfile } : { target: b.target }),
    buildargs: b.buildargs,
    labels: { [IMAGE_LABEL]: b.target },
    rm: true,
    forcerm: true,
    abortSignal: anySignal(AbortSignal.timeout(BUILD_DEADLINE_MS), signal),
  } as Docker.ImageBuildOptions);
  const outcome = await followDockerStream(docker, stream, (line) => progress(`  ${line}`));
  if (!outcome.ok) {
    throw new ImageBuildError(
      `building ${b.tag} failed: ${outcome.error}\n  ${outcome.tail.join("\n  ")}`,
    );
  }
  progress(`built ${b.tag} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
}

/** The pooler host's build context: its own, so the host images' tags do not depend on it. */
const POOLER_CONTEXT = fileURLToPath(new URL("./pooler-image/", import.meta.url));
const POOLER_DOCKERFILE = "pooler.Dockerfile";

/**
 * The pooler host's image (Debian's pgbouncer on the lab's `apt` image), built when missing.
 * Its tag is a hash of its context and of the apt image's tag. Returns the tag.
 */
export async function ensurePoolerImage(
  docker: Docker,
  baseImage: string,
  versions: { from: string; to: string },
  progress: Progress,
  signal?: AbortSignal,
): Promise<string> {
  const inputs = { baseImage, ...versions, archives: hostArchives() };
  const { apt } = labImageTags(inputs);
  const files = readdirSync(POOLER_CONTEXT).sort();
  const hash = createHash("sha256").update(`${apt}\0`);
  for (const name of files)
    hash.update(`${name}\0`).update(readFileSync(join(POOLER_CONTEXT, name)));
  const tag = `pg-switchover/pooler:bookworm-${hash.digest("hex").slice(0, 12)}`;
  if (await imageExists(docker, tag)) {
    progress(`image ${tag} present`);
    return tag;
  }
  await ensureTarget(docker, "apt", apt, inputs, progress, signal);
  progress(`building ${tag} (pgbouncer from Debian's archive)`);
  await buildImage(
    docker,
    {
      context: POOLER_CONTEXT,
      files,
      tag,
      target: "pooler",
      dockerfile: POOLER_DOCKERFILE,
      buildargs: { APT_IMAGE: apt },
    },
    progress,
    signal,
  );
  return tag;
}

export class VersionUnavailableError extends EnvironmentError {
  override readonly name = "VersionUnavailableError";
}

const VERSIONS_FILE = "/usr/share/pg-switchover/postgresql-15-versions";
const PROBE_DEADLINE_MS = 5 * 60_000;

/**
 * Makes sure the lab image of `kind` for `from` exists and that Debian has both `from` and `to`,
 * checked against the apt lists the image was built with (and live, on a miss, since the archive
 * may have moved on since). Returns the lab image tag.
 * @throws VersionUnavailableError before any lab container is touched.
 */
export async function ensureLabImage(
  docker: Docker,
  baseImage: string,
  versions: { from: string; to: string },
  kind: HostKind,
  progress: Progress,
  signal?: AbortSignal,
): Promise<string> {
  const inputs = { baseImage, ...versions, archives: hostArchives() };
  const tags = labImageTags(inputs);
  const haveLab = await imageExists(docker, tags[kind]);
  const probeImage = haveLab ? tags[kind] : tags.apt;
  if (!haveLab) await ensureTarget(docker, "apt", tags.apt, inputs, progress, signal);
  await checkVersionsAvailable(docker, probeImage, [versions.from, versions.to], progress);
  signal?.throwIfAborted();
  await ensureTarget(docker, kind, tags[kind], inputs, progress, signal);
  return tags[kind];
}

async function checkVersionsAvailable(
  docker: Docker,
  image: string,
  wanted: string[],
  progress: Progress,
): Promise<void> {
  const cached = await listVersions(docker, image, ["cat", VERSIONS_FILE]);
  if (missingVersions(wanted, cached).length === 0) return;
  progress("a wanted version is not in the image's apt lists: asking Debian's archive again");
  const live = await listVersions(docker, image, [
    "sh",
    "-c",
    "apt-get update -qq >/dev/null && apt-cache madison postgresql-15 | awk -F'|' '{gsub(/ /, \"\", $2); print $2}'",
  ]);
  const missing = missingVersions(wanted, live);
  if (missing.length > 0) {
    throw new VersionUnavailableError(
      `postgresql-15 ${missing.map(debianVersion).join(", ")} not in Debian bookworm or ` +
        `bookworm-security (available: ${live.join(", ") || "none"})`,
    );
  }
}

async function listVersions(docker: Docker, image: string, cmd: string[]): Promise<string[]> {
  const result = await runInImage(docker, image, cmd, PROBE_DEADLINE_MS);
  if (result.exitCode !== 0) {
    throw new ImageBuildError(
      `listing postgresql-15 versions in ${image} failed: ${result.stderr}`,
    );
  }
  return result.stdout
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

const anySignal = (deadline: AbortSignal, signal?: AbortSignal) =>
  signal ? AbortSignal.any([deadline, signal]) : deadline;
