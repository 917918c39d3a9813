import type Docker from "dockerode";
import { EnvironmentError, UsageError } from "../core/errors.ts";
import { type Progress, silent } from "../core/progress.ts";
import { ensureBaseImage } from "./base-image.ts";
import { connectDocker } from "./engine.ts";
import { ensureLabImage, ensurePoolerImage } from "./image.ts";
import { ensureLabNetwork, removeLabNetworks } from "./network.ts";
import {
  containerHostKind,
  ensureNodeRunning,
  inspectContainer,
  removeLabContainers,
  removeLabVolumes,
} from "./nodes.ts";
import { ensurePrimaryRunning, ensureStandbyStreaming } from "./pair.ts";
import { ensurePoolerRunning } from "./pooler.ts";
import { ensureLabSsh, removeLabSsh } from "./ssh-access.ts";
import { collectStatus, type LabStatus } from "./status.ts";
import {
  DEFAULT_HOST_KIND,
  type HostKind,
  LAB_LABEL,
  labTopology,
  NODE_NAMES,
  type Topology,
  vipUri,
} from "./topology.ts";
import { checkUpgradePath } from "./versions.ts";
import { ensureVipOn } from "./vip.ts";

export class BadVersionError extends UsageError {
  override readonly name = "BadVersionError";
}

/** `lab up` stopped (failure or interrupt) after it had started changing the lab. */
export class LabIncompleteError extends EnvironmentError {
  override readonly name = "LabIncompleteError";
  constructor(message: string, interrupted: boolean, options?: ErrorOptions) {
    super(message, { ...options, interrupted });
  }
}

export interface LabVersions {
  from: string;
  to: string;
  /** What the hosts are (default: a stock Debian server). */
  host?: HostKind;
  /** A third host with PgBouncer in front of the VIP (default: none; one that exists stays). */
  pooler?: boolean;
}

/** `lab up --host K` on a lab whose hosts are of another kind: it would not be a repair. */
export class HostKindMismatchError extends UsageError {
  override readonly name = "HostKindMismatchError";
}

/**
 * Brings the lab up, or repairs it: images (cached), network, two hosts, a primary on node1 (when
 * there is no data yet), a streaming standby, the VIP on whichever node is the primary, and with
 * `pooler` a PgBouncer host pointing at the VIP.
 * Running it again on a healthy lab changes nothing.
 * @throws DockerUnavailableError, BadVersionError, VersionUnavailableError before touching the lab;
 *   LabIncompleteError (with what exists and how to remove it) once it has.
 */
export async function labUp(
  versions: LabVersions,
  progress: Progress = silent,
  signal?: AbortSignal,
): Promise<LabStatus> {
  const path = checkUpgradePath(versions.from, versions.to);
  if (!path.ok) throw new BadVersionError(path.reason);
  const docker = await connectDocker();
  const kind = versions.host ?? DEFAULT_HOST_KIND;
  const existing = await existingHostKind(docker);
  if (existing && existing !== kind) {
    throw new HostKindMismatchError(
      `the lab's hosts are ${existing} hosts, not ${kind}: \`switchover lab down\` first (it removes the lab's data)`,
    );
  }
  const topology = labTopology(kind);
  const base = await ensureBaseImage(docker, progress);
  signal?.throwIfAborted();
  const image = await ensureLabImage(docker, base, versions, kind, progress, signal);
  const poolerImage = versions.pooler
    ? await ensurePoolerImage(docker, base, versions, progress, signal)
    : null;
  try {
    await buildLab(docker, topology, image, progress, signal);
    if (poolerImage) await ensurePoolerRunning(docker, topology, poolerImage, progress);
  } catch (err) {
    const interrupted = signal?.aborted ?? false;
    const why = interrupted ? "interrupted" : err instanceof Error ? err.message : String(err);
    throw new LabIncompleteError(
      `lab up did not finish: ${why}\n${await describeLeftovers(docker)}`,
      interrupted,
      { cause: err },
    );
  }
  const status = await collectStatus(docker, topology);
  await ensureLabSsh(docker, topology, status, versions.to, progress);
  progress(
    `lab is up (${kind} hosts): primary ${status.vip.holder ?? "?"}, VIP ${vipUri(topology)}`,
  );
  return status;
}

async function buildLab(
  docker: Docker,
  topology: Topology,
  image: string,
  progress: Progress,
  signal?: AbortSignal,
): Promise<void> {
  await ensureLabNetwork(docker, topology, progress);
  for (const name of NODE_NAMES) {
    signal?.throwIfAborted();
    await ensureNodeRunning(docker, topology, name, image, progress);
  }
  signal?.throwIfAborted();
  const primary = await ensurePrimaryRunning(docker, topology, progress);
  signal?.throwIfAborted();
  // The VIP first: clients get the primary even when the standby needs work (or a person).
  await ensureVipOn(docker, topology, primary, progress);
  signal?.throwIfAborted();
  await ensureStandbyStreaming(docker, topology, primary, progress);
}

/** What carries the lab label right now, as a sentence for an error message. */
async function describeLeftovers(docker: Docker): Promise<string> {
  try {
    const filters = { label: [`${LAB_LABEL}=1`] };
    const containers = await docker.listContainers({ all: true, filters });
    const networks = await docker.listNetworks({ filters });
    const { Volumes } = await docker.listVolumes({ filters });
    const parts = [
      ...containers.map((c) => `container ${(c.Names[0] ?? c.Id).replace(/^\//, "")} (${c.State})`),
      ...networks.map((n) => `network ${n.Name}`),
      ...(Volumes ?? []).map((v) => `volume ${v.Name}`),
    ];
    if (parts.length === 0) return "Nothing of the lab exists.";
    return (
      `The lab is not complete. It has now: ${parts.join(", ")}.\n` +
      "`switchover lab status` shows its state; `switchover lab down` removes it all."
    );
  } catch {
    return "Could not list what exists; `switchover lab down` removes whatever the lab created.";
  }
}

/** The lab as data: each node's role, version, timeline, WAL positions, and the VIP. */
export async function labStatus(): Promise<LabStatus> {
  const docker = await connectDocker();
  return collectStatus(docker, await existingTopology(docker));
}

/** The host kind of the lab's node containers, or null when none exists. */
export async function existingHostKind(docker: Docker): Promise<HostKind | null> {
  for (const name of NODE_NAMES) {
    const info = await inspectContainer(docker, labTopology().nodes[name].container);
    if (info) return containerHostKind(info);
  }
  return null;
}

/** The topology of the lab as it exists (its hosts' kind), or of a default one. */
export async function existingTopology(docker: Docker): Promise<Topology> {
  return labTopology((await existingHostKind(docker)) ?? DEFAULT_HOST_KIND);
}

export interface LabDownReport {
  containers: string[];
  networks: string[];
  volumes: string[];
}

/** Removes every container, network and volume carrying the lab label; images stay (the cache). */
export async function labDown(progress: Progress = silent): Promise<LabDownReport> {
  const docker = await connectDocker();
  const containers = await removeLabContainers(docker);
  for (const c of containers) progress(`removed container ${c}`);
  const networks = await removeLabNetworks(docker);
  for (const n of networks) progress(`removed network ${n}`);
  const volumes = await removeLabVolumes(docker);
  for (const v of volumes) progress(`removed volume ${v}`);
  removeLabSsh(progress);
  return { containers, networks, volumes };
}

export type { LabStatus, NodeStatus } from "./status.ts";
