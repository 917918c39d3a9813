import type Docker from "dockerode";
import { sleep } from "./nodes.ts";
import {
  hasData,
  isRunning,
  mustAsPostgres,
  PostgresCommandError,
  psqlScript,
  queryJson,
  shellQuote,
  startPostgres,
} from "./postgres.ts";
import type { Progress } from "./progress.ts";
import { NODE_NAMES, type NodeName, PG, type Topology } from "./topology.ts";

/** The lab's replication pair: node1 is initialised as the primary, node2 cloned as its standby. */
const STREAMING_DEADLINE_MS = 60_000;
const BASEBACKUP_DEADLINE_MS = 10 * 60_000;

/** Settings a switchover needs: replication, hot standby, and pg_rewind (wal_log_hints + checksums). */
const SETTINGS = `
# --- pg-switchover lab ---
listen_addresses = '*'
port = ${PG.port}
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '512MB'
hot_standby = on
wal_log_hints = on
`;

function hbaRules(subnet: string): string {
  return [
    "# pg-switchover lab: trust inside the host and from the lab network (the Docker host included)",
    "local   all          all                 trust",
    "local   replication  all                 trust",
    "host    all          all          127.0.0.1/32 trust",
    "host    replication  all          127.0.0.1/32 trust",
    `host    all          all          ${subnet} trust`,
    `host    replication  all          ${subnet} trust`,
    "",
  ].join("\n");
}

interface NodeState {
  name: NodeName;
  hasData: boolean;
  running: boolean;
  inRecovery: boolean | null;
}

async function observe(docker: Docker, topology: Topology, name: NodeName): Promise<NodeState> {
  const container = topology.nodes[name].container;
  const data = await hasData(docker, container);
  const running = data && (await isRunning(docker, container));
  const inRecovery = running
    ? await queryJson<boolean>(docker, container, "select to_json(pg_is_in_recovery())")
    : null;
  return { name, hasData: data, running, inRecovery };
}

/**
 * Brings the pair to "one primary, one standby streaming from it", from whatever exists: nothing
 * (fresh lab), stopped servers (restarted containers), or a node whose data is missing.
 * Never touches a node's existing data. Returns the primary's name.
 */
export async function ensureReplicationPair(
  docker: Docker,
  topology: Topology,
  progress: Progress,
): Promise<NodeName> {
  let states = await Promise.all(NODE_NAMES.map((n) => observe(docker, topology, n)));
  if (states.every((s) => !s.hasData)) {
    await initPrimary(docker, topology, "node1", progress);
    states = await Promise.all(NODE_NAMES.map((n) => observe(docker, topology, n)));
  }
  for (const s of states.filter((s) => s.hasData && !s.running)) {
    progress(`starting postgres on ${s.name}`);
    await startPostgres(docker, topology.nodes[s.name].container);
  }
  states = await Promise.all(NODE_NAMES.map((n) => observe(docker, topology, n)));
  const primary = onlyPrimary(states);
  for (const s of states.filter((s) => s.name !== primary)) {
    if (!s.hasData) await cloneStandby(docker, topology, s.name, primary, progress);
    await waitForStreaming(docker, topology, primary, s.name, progress);
  }
  return primary;
}

function onlyPrimary(states: NodeState[]): NodeName {
  const primaries = states.filter((s) => s.running && s.inRecovery === false);
  const summary = states.map((s) => `${s.name}: ${describe(s)}`).join(", ");
  if (primaries.length === 1 && primaries[0]) return primaries[0].name;
  const why =
    primaries.length === 0 ? "no node is a primary" : "both nodes are primaries (split brain)";
  throw new PostgresCommandError(
    `${why} (${summary}): the lab will not guess which data to keep; \`switchover lab down\` starts over`,
  );
}

const describe = (s: NodeState) =>
  !s.hasData ? "no data" : !s.running ? "not running" : s.inRecovery ? "standby" : "primary";

async function initPrimary(docker: Docker, topology: Topology, name: NodeName, progress: Progress) {
  const container = topology.nodes[name].container;
  const fresh = `${PG.data}.new`;
  progress(`initdb on ${name} (data checksums, so pg_rewind works)`);
  // Built aside and renamed at the end: a half-initialised directory never looks like data.
  await mustAsPostgres(
    docker,
    container,
    "initdb",
    [
      `rm -rf ${fresh}`,
      `${PG.bin}/initdb -D ${fresh} --data-checksums --auth=trust --encoding=UTF8 --locale=C.UTF-8 -U ${PG.superuser} >/dev/null`,
      `printf %s ${shellQuote(SETTINGS)} >> ${fresh}/postgresql.conf`,
      `printf %s ${shellQuote(hbaRules(topology.subnet))} > ${fresh}/pg_hba.conf`,
      `mv ${fresh} ${PG.data}`,
    ].join(" && "),
    120_000,
  );
  progress(`starting postgres on ${name} (primary)`);
  await startPostgres(docker, container);
  await mustAsPostgres(
    docker,
    container,
    "creating the replication user",
    psqlScript(`create role ${PG.replicationUser} with login replication`),
  );
  await mustAsPostgres(
    docker,
    container,
    "creating database app",
    psqlScript(`create database ${PG.database}`),
  );
}

async function cloneStandby(
  docker: Docker,
  topology: Topology,
  name: NodeName,
  primary: NodeName,
  progress: Progress,
) {
  const container = topology.nodes[name].container;
  const fresh = `${PG.data}.new`;
  const conninfo = `host=${topology.nodes[primary].address} port=${PG.port} user=${PG.replicationUser} application_name=${name}`;
  progress(`pg_basebackup on ${name} from ${primary} (standby, streaming)`);
  await mustAsPostgres(
    docker,
    container,
    "pg_basebackup",
    [
      `rm -rf ${fresh}`,
      `${PG.bin}/pg_basebackup -d ${shellQuote(conninfo)} -D ${fresh} -R -X stream -c fast`,
      `mv ${fresh} ${PG.data}`,
    ].join(" && "),
    BASEBACKUP_DEADLINE_MS,
  );
  progress(`starting postgres on ${name} (standby)`);
  await startPostgres(docker, container);
}

/** Waits until the primary's pg_stat_replication shows the standby's address streaming. */
export async function waitForStreaming(
  docker: Docker,
  topology: Topology,
  primary: NodeName,
  standby: NodeName,
  progress: Progress,
): Promise<void> {
  const address = topology.nodes[standby].address;
  const sql = `select coalesce(json_agg(state), '[]') from pg_stat_replication where client_addr = '${address}'`;
  const started = performance.now();
  let states: string[] = [];
  while (performance.now() - started < STREAMING_DEADLINE_MS) {
    states = await queryJson<string[]>(docker, topology.nodes[primary].container, sql);
    if (states.includes("streaming")) {
      progress(`${standby} streams from ${primary}`);
      return;
    }
    await sleep(500);
  }
  throw new PostgresCommandError(
    `${standby} is not streaming from ${primary} after ${STREAMING_DEADLINE_MS / 1000}s ` +
      `(pg_stat_replication: ${states.join(", ") || "no row"}); see ${PG.log} on ${standby}`,
  );
}
