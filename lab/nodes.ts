import type Docker from "dockerode";
import { systemClock } from "../core/clock.ts";
import { EnvironmentError } from "../core/errors.ts";
import type { Progress } from "../core/progress.ts";
import { waitFor } from "../core/wait.ts";
import { execInContainer } from "../hosts/transports/docker-exec.ts";
import { LAB_LABEL, LAB_LABELS, NETWORK_NAME, type NodeName, type Topology } from "./topology.ts";

export class LabNodeError extends EnvironmentError {
  override readonly name = "LabNodeError";
}

const READY_DEADLINE_MS = 180_000;
const POLL_MS = 500;

/** Makes sure a node's volume and container exist and the container runs, then waits until its
 * entrypoint has finished (sshd up, postgres started when the node has data). */
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
    if (info.Config.Image !== image) {
      progress(`${node.container} keeps its image ${info.Config.Image} (\`lab down\` to rebuild)`);
    }
  }
  if (!info?.State.Running) {
    progress(`starting container ${node.container}`);
    await docker.getContainer(node.container).start();
  }
  await waitForEntrypoint(docker, node.container);
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
  return {
    name: node.container,
    Hostname: node.hostname,
    Image: image,
    Labels: { ...LAB_LABELS, "pg-switchover.node": name },
    // Enough for the entrypoint's clean `pg_ctl stop -m fast` on `docker stop`.
    StopTimeout: 70,
    HostConfig: {
      // ip addr add/del of the VIP and arping's raw socket.
      CapAdd: ["NET_ADMIN", "NET_RAW"],
      Mounts: [{ Type: "volume", Source: node.volume, Target: "/var/lib/postgresql" }],
      // A fresh /run at every start: no stale pid files, and the entrypoint's "done" marker is new.
      Tmpfs: { "/run": "rw,exec,mode=755" },
      NetworkMode: NETWORK_NAME,
      RestartPolicy: { Name: "no" },
      ExtraHosts: [`node1:${node1.address}`, `node2:${node2.address}`],
    },
    NetworkingConfig: {
      EndpointsConfig: { [NETWORK_NAME]: { IPAMConfig: { IPv4Address: node.address } } },
    },
  };
}

async function waitForEntrypoint(docker: Docker, container: string): Promise<void> {
  await waitFor(
    async () => {
      const info = await inspectContainer(docker, container);
      if (!info?.State.Running) {
        throw new LabNodeError(
          `container ${container} stopped while starting: see \`docker logs ${container}\``,
        );
      }
      const probe = await execInContainer(
        docker,
        container,
        ["test", "-e", "/run/pg-switchover/entrypoint-done"],
        { deadlineMs: 10_000 },
      );
      return probe.exitCode === 0 ? true : undefined;
    },
    {
      clock: systemClock,
      everyMs: POLL_MS,
      deadlineMs: READY_DEADLINE_MS,
      timedOut: () =>
        new LabNodeError(
          `container ${container} did not finish starting within ${READY_DEADLINE_MS / 1000}s: ` +
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
