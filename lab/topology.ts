import { EnvironmentError } from "../core/errors.ts";
import type { ClusterSpec, HostControl } from "../hosts/commands.ts";
/**
 * Names and addresses of the lab: one Docker network, two hosts, a VIP. Everything the lab creates
 * carries LAB_LABEL, and `lab down` removes exactly what carries it.
 */
export const LAB_LABEL = "pg-switchover.lab";
export const LAB_LABELS = { [LAB_LABEL]: "1" };
export const NETWORK_NAME = "pg-switchover-lab";

/**
 * A /24 outside Docker's default address pools (172.17–31.x, 192.168.x) and outside common
 * home/cloud ranges; `lab up` refuses it if a host route or another Docker network overlaps.
 * PG_SWITCHOVER_LAB_SUBNET=a.b.c.0/24 moves the lab elsewhere.
 */
export const DEFAULT_SUBNET = "10.213.57.0/24";

export type NodeName = "node1" | "node2";
export const NODE_NAMES: readonly NodeName[] = ["node1", "node2"];

/**
 * What the lab's hosts are: `debian`, a stock Debian server (systemd, a postgresql-common
 * cluster run by postgresql@15-main, maintainer scripts live), or `pg_ctl`, a hand-built host
 * (postgres started with pg_ctl by the container's entrypoint).
 */
export type HostKind = "debian" | "pg_ctl";
export const HOST_KINDS: readonly HostKind[] = ["debian", "pg_ctl"];
export const DEFAULT_HOST_KIND: HostKind = "debian";

export interface Topology {
  hostKind: HostKind;
  subnet: string;
  gateway: string;
  /** Docker hands out dynamic addresses only from here, so .10–.13 stay ours. */
  dynamicRange: string;
  vip: string;
  nodes: Record<
    NodeName,
    { container: string; hostname: NodeName; address: string; volume: string }
  >;
  /** The pooler host (`lab up --pooler`): PgBouncer in front of the VIP. */
  pooler: { container: string; hostname: string; address: string; port: number };
}

export function labTopology(
  hostKind: HostKind = DEFAULT_HOST_KIND,
  subnet = process.env.PG_SWITCHOVER_LAB_SUBNET ?? DEFAULT_SUBNET,
): Topology {
  const match = /^(\d{1,3}\.\d{1,3}\.\d{1,3})\.0\/24$/.exec(subnet);
  if (!match?.[1]) throw new Error(`lab subnet must look like a.b.c.0/24, got "${subnet}"`);
  const prefix = match[1];
  const node = (name: NodeName, host: number) => ({
    container: `pg-switchover-${name}`,
    hostname: name,
    address: `${prefix}.${host}`,
    volume: `pg-switchover-${name}-data`,
  });
  return {
    hostKind,
    subnet,
    gateway: `${prefix}.1`,
    dynamicRange: `${prefix}.128/25`,
    vip: `${prefix}.10`,
    nodes: { node1: node("node1", 11), node2: node("node2", 12) },
    pooler: {
      container: "pg-switchover-pooler",
      hostname: "pooler",
      address: `${prefix}.13`,
      port: POOLER_PORT,
    },
  };
}

/** PgBouncer's usual port. */
export const POOLER_PORT = 6432;

/** What both kinds of lab host share: Debian's PostgreSQL 15 binaries, socket, users. */
export const PG = {
  bin: "/usr/lib/postgresql/15/bin",
  socketDir: "/var/run/postgresql",
  port: 5432,
  /** The OS user every Postgres command runs as (docker exec --user postgres). */
  osUser: "postgres",
  superuser: "postgres",
  replicationUser: "replicator",
  database: "app",
} as const;

/** Where a lab host of each kind keeps its server, and how it is run. */
export interface HostLayout {
  dataDir: string;
  logFile: string;
  /** The cluster's own configuration directory (postgresql-common), or none: in the data dir. */
  configDir: string | null;
  control: HostControl;
}

export const LAYOUTS: Record<HostKind, HostLayout> = {
  // pg_createcluster 15 main's layout, run by systemd.
  debian: {
    dataDir: "/var/lib/postgresql/15/main",
    logFile: "/var/log/postgresql/postgresql-15-main.log",
    configDir: "/etc/postgresql/15/main",
    control: { mode: "systemd", cluster: { version: "15", name: "main" } },
  },
  // The entrypoint (image/entrypoint.sh) spells out these paths too.
  pg_ctl: {
    dataDir: "/var/lib/postgresql/15/lab",
    logFile: "/var/log/postgresql/lab.log",
    configDir: null,
    control: { mode: "pg_ctl", configFile: null },
  },
};

/** The libpq URI a client on the Docker host uses to reach the primary through the VIP. */
export function vipUri(topology: Topology, database = "postgres"): string {
  return `postgresql://${PG.superuser}@${topology.vip}:${PG.port}/${database}`;
}

/** The libpq URI of the lab's pooler (its admin console is the database "pgbouncer"). */
export function poolerUri(topology: Topology, database: string = PG.database): string {
  const { address, port } = topology.pooler;
  return `postgresql://${PG.superuser}@${address}:${port}/${database}`;
}

/** The lab as the host commands see it: the same ClusterSpec an inventory gives for production. */
export function labCluster(topology: Topology): ClusterSpec {
  return {
    nodes: NODE_NAMES.map((name) => ({
      name,
      address: topology.nodes[name].address,
      pgBin: PG.bin,
      dataDir: LAYOUTS[topology.hostKind].dataDir,
      port: PG.port,
      socketDir: PG.socketDir,
      logFile: LAYOUTS[topology.hostKind].logFile,
      osUser: PG.osUser,
      control: LAYOUTS[topology.hostKind].control,
    })),
    vip: { address: topology.vip, prefix: 24, device: "eth0" },
    superuser: PG.superuser,
    replicationUser: PG.replicationUser,
    database: PG.database,
    packages: ["postgresql-15", "postgresql-client-15"],
  };
}

/** A node of the lab by its name; any other name is the caller's mistake, named. */
export function labNode(topology: Topology, name: string): Topology["nodes"][NodeName] {
  const n = NODE_NAMES.find((x) => x === name);
  if (!n) throw new EnvironmentError(`the lab has no node "${name}" (${NODE_NAMES.join(", ")})`);
  return topology.nodes[n];
}
