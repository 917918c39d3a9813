import type Docker from "dockerode";
import { inspectContainer } from "./nodes.ts";
import { controlData, dataDirFacts, packageVersion, queryJson } from "./postgres.ts";
import { NODE_NAMES, type NodeName, type Topology, vipUri } from "./topology.ts";
import { shortVersion } from "./versions.ts";
import { vipHolders } from "./vip.ts";

export interface NodeStatus {
  name: NodeName;
  container: string;
  address: string;
  /** The container exists / runs. */
  exists: boolean;
  running: boolean;
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
  subnet: string;
  vip: { address: string; holder: NodeName | null; holders: NodeName[]; uri: string };
  nodes: NodeStatus[];
}

interface LiveFacts {
  inRecovery: boolean;
  serverVersion: string;
  timeline: number | null;
  lsn: string | null;
  receiveLsn: string | null;
  walReceiver: string | null;
}

// Timeline: a primary's current one is in its WAL file name (the checkpoint's may still be the old
// one just after a promotion); a standby's is the one it receives on.
const LIVE_SQL = `select json_build_object(
  'inRecovery', pg_is_in_recovery(),
  'serverVersion', current_setting('server_version'),
  'timeline', case when pg_is_in_recovery()
    then coalesce((select received_tli from pg_stat_wal_receiver), (select timeline_id from pg_control_checkpoint()))
    else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end,
  'lsn', case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end,
  'receiveLsn', pg_last_wal_receive_lsn(),
  'walReceiver', (select status from pg_stat_wal_receiver))`;

export async function collectStatus(docker: Docker, topology: Topology): Promise<LabStatus> {
  const nodes = await Promise.all(NODE_NAMES.map((name) => nodeStatus(docker, topology, name)));
  const primary = nodes.find((n) => n.postgres === "up" && n.role === "primary");
  for (const n of nodes) {
    if (n.role === "standby" && primary?.lsn && n.lsn) n.lagBytes = lsnDiff(primary.lsn, n.lsn);
  }
  const holders = await vipHolders(docker, topology);
  return {
    subnet: topology.subnet,
    vip: {
      address: topology.vip,
      holder: holders.length === 1 ? (holders[0] ?? null) : null,
      holders,
      uri: vipUri(topology),
    },
    nodes,
  };
}

async function nodeStatus(docker: Docker, topology: Topology, name: NodeName): Promise<NodeStatus> {
  const { container, address } = topology.nodes[name];
  const info = await inspectContainer(docker, container);
  const status: NodeStatus = {
    name,
    container,
    address,
    exists: info !== undefined,
    running: info?.State.Running ?? false,
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
  status.packageVersion = await packageVersion(docker, container);
  status.version = status.packageVersion ? shortVersion(status.packageVersion) : null;
  const facts = await dataDirFacts(docker, container);
  if (!facts.hasData) return { ...status, postgres: "no-data" };
  if (facts.running) return { ...status, ...(await live(docker, container)) };
  return { ...status, ...(await fromControlFile(docker, container, facts.standbySignal)) };
}

async function live(docker: Docker, container: string): Promise<Partial<NodeStatus>> {
  const facts = await queryJson<LiveFacts>(docker, container, LIVE_SQL);
  return {
    postgres: "up",
    role: facts.inRecovery ? "standby" : "primary",
    version: shortVersion(facts.serverVersion),
    timeline: facts.timeline,
    lsn: facts.lsn,
    receiveLsn: facts.inRecovery ? facts.receiveLsn : null,
    walReceiver: facts.inRecovery ? facts.walReceiver : null,
  };
}

async function fromControlFile(
  docker: Docker,
  container: string,
  standby: boolean,
): Promise<Partial<NodeStatus>> {
  const control = await controlData(docker, container);
  const timeline = Number(control["Latest checkpoint's TimeLineID"]);
  return {
    postgres: "down",
    role: standby ? "standby" : "primary",
    timeline: Number.isFinite(timeline) ? timeline : null,
    // Where the last checkpoint record starts: for a cleanly stopped server, its shutdown checkpoint.
    lsn: control["Latest checkpoint location"] ?? null,
  };
}

/** Bytes between two LSNs written as "X/Y" (hex high/low 32 bits). */
export function lsnDiff(ahead: string, behind: string): number {
  return Number(lsnToBigInt(ahead) - lsnToBigInt(behind));
}

function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}
