import type Docker from "dockerode";
import { systemClock } from "../core/clock.ts";
import { EnvironmentError } from "../core/errors.ts";
import type { Progress } from "../core/progress.ts";
import { waitFor } from "../core/wait.ts";
import { execInContainer } from "../hosts/transports/docker-exec.ts";
import {
  HOST_KINDS,
  type HostKind,
  LAB_LABEL,
  LAB_LABELS,
  NETWORK_NAME,
  type NodeName,
  type Topology,
} from "./topology.ts";

export class LabNodeError extends EnvironmentError {
  override readonly name = "LabNodeError";
}

const READY_DEADLINE_MS = 180_000;
const POLL_MS = 500;

/** The label naming a node container's host kind. */
export const HOST_KIND_LABEL = "pg-switchover.host-kind";

/**
 * Makes sure a node's volume and container exist and the container runs, then waits until the
 * host has booted (systemd done, or the pg_ctl entrypoint: sshd up, postgres started when the
 * node has data and no fence).
 */
export async function ensureNodeRunning(
  docker: Docker,
  topology: Topology,
  name: NodeName,
  image: string,
  progress: Progress,
): Promise<void> {
  const node = topology.nodes[name];
  await ensureVolume(docker, node.volume, progress);
  const info = await inspectContainer(docker, node.container);
  if (!info) {
    progress(`creating container ${node.container} (${node.address}, image ${image})`);
    await docker.createContainer(containerSpec(topology, name, image));
  } else {
    checkOurs(info, node.container);
    const kind = containerHostKind(info);
    if (kind !== topology.hostKind) {
      throw new LabNodeError(
        `${node.container} is a ${kind} host, not ${topology.hostKind}: \`switchover lab down\` first`,
      );
    }
    if (info.Config.Image !== image) {
      progress(`${node.container} keeps its image ${info.Config.Image} (\`lab down\` to rebuild)`);
    }
  }
  if (!info?.State.Running) {
    progress(`starting container ${node.container}`);
    await docker.getContainer(node.container).start();
  }
  await waitForBoot(docker, node.container, topology.hostKind);
}

/** A node container's host kind; one from before the label was a pg_ctl host. */
export function containerHostKind(info: Docker.ContainerInspectInfo): HostKind {
  const label = info.Config.Labels?.[HOST_KIND_LABEL];
  return HOST_KINDS.find((k) => k === label) ?? "pg_ctl";
}

async function ensureVolume(docker: Docker, volume: string, progress: Progress): Promise<void> {
  try {
    const info = await docker.getVolume(volume).inspect();
    if (info.Labels?.[LAB_LABEL] !== "1") {
      throw new LabNodeError(
        `volume ${volume} exists without the ${LAB_LABEL} label: not the lab's`,
      );
    }
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    progress(`creating volume ${volume}`);
    await docker.createVolume({ Name: volume, Labels: LAB_LABELS });
  }
}

export async function inspectContainer(
  docker: Docker,
  container: string,
): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(container).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

function checkOurs(info: Docker.ContainerInspectInfo, container: string): void {
  if (info.Config.Labels?.[LAB_LABEL] !== "1") {
    throw new LabNodeError(
      `container ${container} exists without the ${LAB_LABEL} label: not the lab's`,
    );
  }
}

function containerSpec(
  topology: Topology,
  name: NodeName,
  image: string,
): Docker.ContainerCreateOptions {
  const node = topology.nodes[name];
  const { node1, node2 } = topology.nodes;
  const debian = topology.hostKind === "debian";
  return {
    name: node.container,
    Hostname: node.hostname,
    Image: image,
    Labels: {
      ...LAB_LABELS,
      "pg-switchover.node": name,
      [HOST_KIND_LABEL]: topology.hostKind,
    },
    // Enough for a clean `pg_ctl stop -m fast` (the entrypoint's, or systemd's shutdown's).
    StopTimeout: 70,
    HostConfig: {
      // ip addr add/del of the VIP and arping's raw socket; systemd as PID 1 mounts and manages
      // cgroups (--privileged is refused on this engine: these are what systemd needs of it).
      CapAdd: debian ? ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"] : ["NET_ADMIN", "NET_RAW"],
      Mounts: [
        { Type: "volume", Source: node.volume, Target: "/var/lib/postgresql" },
        ...(debian
          ? [{ Type: "bind" as const, Source: "/sys/fs/cgroup", Target: "/sys/fs/cgroup" }]
          : []),
      ],
      // A fresh /run at every start, as at a boot: no stale pid files, the boot markers are new.
      Tmpfs: debian
        ? { "/run": "rw,exec,mode=755", "/run/lock": "rw,mode=1777" }
        : { "/run": "rw,exec,mode=755" },
      ...(debian ? { SecurityOpt: ["seccomp=unconfined"], CgroupnsMode: "host" as const } : {}),
      NetworkMode: NETWORK_NAME,
      RestartPolicy: { Name: "no" },
      ExtraHosts: [`node1:${node1.address}`, `node2:${node2.address}`],
    },
    NetworkingConfig: {
      EndpointsConfig: { [NETWORK_NAME]: { IPAMConfig: { IPv4Address: node.address } } },
    },
  };
}

/**
 * Whether a host has finished booting: systemd says running (or degraded: a unit failed, which
 * `lab up` then reports through what it finds), or the pg_ctl entrypoint left its marker.
 */
const BOOTED: Record<HostKind, string> = {
  debian:
    'case "$(systemctl is-system-running 2>/dev/null)" in running|degraded) exit 0;; *) exit 1;; esac',
  pg_ctl: "test -e /run/pg-switchover/entrypoint-done",
};

async function waitForBoot(docker: Docker, container: string, kind: HostKind): Promise<void> {
  await waitForContainer(
    docker,
    container,
    async () => {
      const probe = await execInContainer(docker, container, ["sh", "-c", BOOTED[kind]], {
        deadlineMs: 10_000,
      });
      return probe.exitCode === 0;
    },
    { everyMs: POLL_MS, deadlineMs: READY_DEADLINE_MS, what: "finish booting" },
  );
}

/**
 * Waits until `ready` says a lab container is, failing at once when the container stops and
 * after `deadlineMs` otherwise, each time naming the container and where its logs are.
 */
export async function waitForContainer(
  docker: Docker,
  container: string,
  ready: () => Promise<boolean>,
  o: { everyMs: number; deadlineMs: number; what: string },
): Promise<void> {
  await waitFor(
    async () => {
      const info = await inspectContainer(docker, container);
      if (!info?.State.Running) {
        throw new LabNodeError(
          `container ${container} stopped while starting: see \`docker logs ${container}\``,
        );
      }
      return (await ready()) ? true : undefined;
    },
    {
      clock: systemClock,
      everyMs: o.everyMs,
      deadlineMs: o.deadlineMs,
      timedOut: () =>
        new LabNodeError(
          `container ${container} did not ${o.what} within ${o.deadlineMs / 1000}s: ` +
            `see \`docker logs ${container}\``,
        ),
    },
  );
}

/** Removes every container carrying the lab label; returns their names. */
export async function removeLabContainers(docker: Docker): Promise<string[]> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LAB_LABEL}=1`] },
  });
  for (const c of containers) await docker.getContainer(c.Id).remove({ force: true, v: false });
  return containers.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ""));
}

/** Removes every volume carrying the lab label; returns their names. */
export async function removeLabVolumes(docker: Docker): Promise<string[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LAB_LABEL}=1`] } });
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove();
  return (Volumes ?? []).map((v) => v.Name);
}
