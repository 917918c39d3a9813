import type Docker from "dockerode";
import type { Pooler } from "../core/executor.ts";
import type { Progress } from "../core/progress.ts";
import { type PoolerConsole, poolerPaused } from "../hosts/pooler-admin.ts";
import { inspectContainer, LabNodeError, waitForContainer } from "./nodes.ts";
import { LAB_LABEL, LAB_LABELS, NETWORK_NAME, PG, poolerUri, type Topology } from "./topology.ts";

/**
 * The lab's pooler host (`lab up --pooler`): Debian's pgbouncer in a container of its own on the
 * lab network, transaction pooling, every pooled database on the VIP, so that after a
 * switchover its new server connections reach the new primary. Its admin console (database
 * "pgbouncer", admin user postgres) is reachable from this machine, as the plan reaches a
 * production pooler's.
 */
export interface PoolerStatus {
  address: string;
  port: number;
  /** Where the application connects: the pooled database "app". */
  uri: string;
  /** The container exists and runs; the console answers. */
  running: boolean;
  /** A pooled database is paused (SHOW DATABASES; null when the console does not answer). */
  paused: boolean | null;
}

/** The pooled databases: the application's and postgres (for a person's psql). */
const POOLED = [PG.database, "postgres"];

/**
 * pgbouncer.ini. server_login_retry is 1 s, not 15: after a failed server login PgBouncer
 * refuses every client of the pool for that long, which would turn a 200 ms outage into 15 s
 * of errors; unix_socket_dir is empty (the console is reached over TCP only).
 */
export function pgbouncerIni(topology: Topology): string {
  const databases = POOLED.map((db) => `${db} = host=${topology.vip} port=${PG.port} dbname=${db}`);
  return [
    "; written by `switchover lab up --pooler` (lab/pooler.ts)",
    "[databases]",
    ...databases,
    "",
    "[pgbouncer]",
    "listen_addr = 0.0.0.0",
    `listen_port = ${topology.pooler.port}`,
    "unix_socket_dir =",
    "auth_type = trust",
    "auth_file = /etc/pgbouncer/userlist.txt",
    `admin_users = ${PG.superuser}`,
    "pool_mode = transaction",
    "max_client_conn = 500",
    "default_pool_size = 20",
    "server_login_retry = 1",
    "server_connect_timeout = 5",
    "ignore_startup_parameters = extra_float_digits",
    "",
  ].join("\n");
}

/** auth_file: trust needs each user listed (its password is not checked). */
const USERLIST = `"${PG.superuser}" ""`;

const READY_DEADLINE_MS = 60_000;
const CONSOLE_DEADLINE_MS = 2_000;

export function poolerConsole(topology: Topology): PoolerConsole {
  return { host: topology.pooler.address, port: topology.pooler.port, adminUser: PG.superuser };
}

/** The lab's pooler as an inventory names it to the plan: the application's database. */
export function labPooler(topology: Topology): Pooler {
  return { ...poolerConsole(topology), database: PG.database };
}

/** Creates and starts the pooler container when missing or stopped, then waits for its console. */
export async function ensurePoolerRunning(
  docker: Docker,
  topology: Topology,
  image: string,
  progress: Progress,
): Promise<void> {
  const { container, address, port } = topology.pooler;
  const info = await inspectContainer(docker, container);
  if (!info) {
    progress(`creating container ${container} (pgbouncer on ${address}:${port}, image ${image})`);
    await docker.createContainer(containerSpec(topology, image));
  } else if (info.Config.Labels?.[LAB_LABEL] !== "1") {
    throw new LabNodeError(
      `container ${container} exists without the ${LAB_LABEL} label: not the lab's`,
    );
  }
  if (!info?.State.Running) {
    progress(`starting container ${container}`);
    await docker.getContainer(container).start();
  }
  await waitForContainer(
    docker,
    container,
    async () =>
      (await poolerPaused(poolerConsole(topology), { deadlineMs: CONSOLE_DEADLINE_MS })).ok,
    {
      everyMs: 200,
      deadlineMs: READY_DEADLINE_MS,
      what: `answer on pgbouncer's console (${address}:${port})`,
    },
  );
  progress(`pooler ${poolerUri(topology)} (transaction pooling, to the VIP ${topology.vip})`);
}

/** The pooler as `lab status` shows it; null when the lab has none. */
export async function poolerStatus(
  docker: Docker,
  topology: Topology,
): Promise<PoolerStatus | null> {
  const info = await inspectContainer(docker, topology.pooler.container);
  if (!info) return null;
  const base = {
    address: topology.pooler.address,
    port: topology.pooler.port,
    uri: poolerUri(topology),
  };
  if (!info.State.Running) return { ...base, running: false, paused: null };
  const answer = await poolerPaused(poolerConsole(topology), { deadlineMs: CONSOLE_DEADLINE_MS });
  return { ...base, running: answer.ok, paused: answer.ok ? answer.paused : null };
}

function containerSpec(topology: Topology, image: string): Docker.ContainerCreateOptions {
  const { container, hostname, address } = topology.pooler;
  return {
    name: container,
    Hostname: hostname,
    Image: image,
    Labels: { ...LAB_LABELS, "pg-switchover.pooler": "1" },
    Env: [`PGBOUNCER_INI=${pgbouncerIni(topology)}`, `PGBOUNCER_USERS=${USERLIST}`],
    // SIGINT is PgBouncer's safe shutdown (it waits for the transactions in flight).
    StopTimeout: 10,
    HostConfig: { NetworkMode: NETWORK_NAME, RestartPolicy: { Name: "no" } },
    NetworkingConfig: {
      EndpointsConfig: { [NETWORK_NAME]: { IPAMConfig: { IPv4Address: address } } },
    },
  };
}
