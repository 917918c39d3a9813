import type Docker from "dockerode";
import { formatLsn, parseLsn } from "../core/lsn.ts";
import { shortVersion } from "../hosts/commands.ts";
import { type ControlMode, clusterUnit } from "../hosts/control.ts";
import { type LabHost, labHost } from "./hosts.ts";
import { inspectContainer } from "./nodes.ts";
import { type PoolerStatus, poolerStatus } from "./pooler.ts";
import { controlData, dataDirFacts, packageVersion, queryJson, replication } from "./postgres.ts";
import {
  type HostKind,
  LAYOUTS,
  NODE_NAMES,
  type NodeName,
  type Topology,
  vipUri,
} from "./topology.ts";
import { vipHolders } from "./vip.ts";

export interface NodeStatus {
  name: NodeName;
  container: string;
  address: string;
  /** The container exists / runs. */
  exists: boolean;
  running: boolean;
  /** What the host is: a stock Debian server, or a pg_ctl host. */
  hostKind: HostKind;
  /** How the host commands start and stop its server. */
  control: ControlMode;
  /** The systemd unit that runs the cluster; null on a pg_ctl host. */
  unit: string | null;
  /** The cluster's start.conf word (auto: started by boot and package scripts; manual: fenced);
   * null on a pg_ctl host, or where it could not be read. */
  startConf: string | null;
  /** The host's fence is up: start.conf manual (or disabled), or the pg_ctl marker. */
  fenced: boolean | null;
  /** Postgres in the container: up, down (has data), or no data directory yet. */
  postgres: "up" | "down" | "no-data" | "unknown";
  /** From pg_is_in_recovery() when up; from standby.signal when down. */
  role: "primary" | "standby" | null;
  /** Running server's version when up, else the installed package's, e.g. "15.18". */
  version: string | null;
  /** The installed postgresql-15 package, e.g. "15.18-0+deb12u1" (differs from a running
   * server's version between a package upgrade and the restart). */
  packageVersion: string | null;
  timeline: number | null;
  /** Primary: current WAL insert position; standby: last replayed position. */
  lsn: string | null;
  /** Standby only: last WAL position received from the primary. */
  receiveLsn: string | null;
  /** Standby only: bytes of WAL the standby has not replayed yet (null when unknown). */
  lagBytes: number | null;
  /** Standby only: the WAL receiver's state, "streaming" when healthy. */
  walReceiver: string | null;
}

export interface LabStatus {
  /** What the lab's hosts are (every node is of the same kind). */
  hostKind: HostKind;
  subnet: string;
  vip: { address: string; holder: NodeName | null; holders: NodeName[]; uri: string };
  nodes: NodeStatus[];
  /** The PgBouncer host of `lab up --pooler`; null when the lab has none. */
  pooler: PoolerStatus | null;
}

/** What the lab shows beyond the replication facts the switchover reads. */
interface ServerFacts {
  serverVersion: string;
  walReceiver: string | null;
}

const SERVER_SQL = `select json_build_object(
  'serverVersion', current_setting('server_version'),
  'walReceiver', (select status from pg_stat_wal_receiver))`;

export async function collectStatus(docker: Docker, topology: Topology): Promise<LabStatus> {
  const nodes = await Promise.all(NODE_NAMES.map((name) => nodeStatus(docker, topology, name)));
  const primary = nodes.find((n) => n.postgres === "up" && n.role === "primary");
  for (const n of nodes) {
    if (n.role === "standby" && primary?.lsn && n.lsn) n.lagBytes = lsnDiff(primary.lsn, n.lsn);
  }
  const [holders, pooler] = await Promise.all([
    vipHolders(docker, topology),
    poolerStatus(docker, topology),
  ]);
  return {
    hostKind: topology.hostKind,
    subnet: topology.subnet,
    vip: {
      address: topology.vip,
      holder: holders.length === 1 ? (holders[0] ?? null) : null,
      holders,
      uri: vipUri(topology),
    },
    nodes,
    pooler,
  };
}

async function nodeStatus(docker: Docker, topology: Topology, name: NodeName): Promise<NodeStatus> {
  const { container, address } = topology.nodes[name];
  const info = await inspectContainer(docker, container);
  const { control } = LAYOUTS[topology.hostKind];
  const status: NodeStatus = {
    name,
    container,
    address,
    exists: info !== undefined,
    running: info?.State.Running ?? false,
    hostKind: topology.hostKind,
    control: control.mode,
    unit: control.mode === "systemd" ? clusterUnit(control.cluster) : null,
    startConf: null,
    fenced: null,
    postgres: "unknown",
    role: null,
    version: null,
    packageVersion: null,
    timeline: null,
    lsn: null,
    receiveLsn: null,
    lagBytes: null,
    walReceiver: null,
  };
  if (!status.running) return status;
  const host = labHost(topology, name);
  const [installed, facts] = await Promise.all([
    packageVersion(docker, host),
    dataDirFacts(docker, host),
  ]);
  status.packageVersion = installed;
  status.version = installed ? shortVersion(installed) : null;
  status.startConf = facts.startConf;
  status.fenced = facts.fenced;
  if (!facts.hasData) return { ...status, postgres: "no-data" };
  if (facts.running) return { ...status, ...(await live(docker, host)) };
  return { ...status, ...(await fromControlFile(docker, host, facts.standbySignal)) };
}

async function live(docker: Docker, host: LabHost): Promise<Partial<NodeStatus>> {
  const [row, server] = await Promise.all([
    replication(docker, host),
    queryJson<ServerFacts>(docker, host, SERVER_SQL),
  ]);
  return {
    postgres: "up",
    role: row.inRecovery ? "standby" : "primary",
    version: shortVersion(server.serverVersion),
    timeline: row.timeline,
    lsn: row.lsn,
    receiveLsn: row.inRecovery ? row.receiveLsn : null,
    walReceiver: row.inRecovery ? server.walReceiver : null,
  };
}

async function fromControlFile(
  docker: Docker,
  host: LabHost,
  standby: boolean,
): Promise<Partial<NodeStatus>> {
  const control = await controlData(docker, host);
  return {
    postgres: "down",
    role: standby ? "standby" : "primary",
    timeline: control.timeline,
    // Where the last checkpoint record starts: for a cleanly stopped server, its shutdown checkpoint.
    lsn: formatLsn(control.checkpointLsn),
  };
}

/** Bytes between two LSNs written as "X/Y". */
export function lsnDiff(ahead: string, behind: string): number {
  return parseLsn(ahead) - parseLsn(behind);
}
