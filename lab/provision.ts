import type Docker from "dockerode";
import type { Progress } from "../core/progress.ts";
import { shellQuote } from "../hosts/commands.ts";
import { type LabHost, labHost } from "./hosts.ts";
import { asPostgres, asRoot, mustRun, queryJson, startPostgres } from "./postgres.ts";
import { LAYOUTS, type NodeName, PG, type Topology } from "./topology.ts";

/**
 * Creating the lab's servers: node1 as the primary (on a Debian host `pg_createcluster 15 main`,
 * on a pg_ctl host initdb), the other by the host commands' base backup (what a switchover runs
 * to rebuild a standby), into its own cluster's data directory.
 */
const BASEBACKUP_DEADLINE_MS = 10 * 60_000;

/**
 * Settings a switchover needs: replication, hot standby, and pg_rewind (wal_log_hints +
 * checksums). cluster_name is how a write through the VIP tells which node committed it: a
 * Debian host's is in its own postgresql.conf; a pg_ctl host's entrypoint writes node.conf,
 * outside the data directory so that a base backup does not copy it.
 */
function settings(topology: Topology, name: NodeName): string {
  const own =
    topology.hostKind === "debian"
      ? `cluster_name = '${topology.nodes[name].hostname}'`
      : "include_if_exists = '/etc/pg-switchover/node.conf'";
  return `
# --- pg-switchover lab ---
listen_addresses = '*'
port = ${PG.port}
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '512MB'
hot_standby = on
wal_log_hints = on
${own}
`;
}

/**
 * A Debian host's cluster, configured for the lab: made anew with pg_createcluster (one left by
 * an interrupted `lab up` is dropped: only a node without data gets here), start.conf auto.
 * `initdb` is pg_createcluster's passthrough to initdb.
 */
function createDebianCluster(topology: Topology, name: NodeName, initdb: string): string {
  const { control, configDir, dataDir } = LAYOUTS.debian;
  const cluster =
    control.mode === "systemd" ? `${control.cluster.version} ${control.cluster.name}` : "";
  return [
    `{ test ! -e ${configDir} || pg_dropcluster --stop ${cluster}; }`,
    `rm -rf ${dataDir}`,
    `pg_createcluster ${cluster} --start-conf=auto --locale=C.UTF-8 -- ${initdb} >/dev/null`,
    `printf %s ${shellQuote(settings(topology, name))} >> ${configDir}/postgresql.conf`,
    `printf %s ${shellQuote(hbaRules(topology.subnet))} > ${configDir}/pg_hba.conf`,
  ].join(" && ");
}

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

export async function initPrimary(
  docker: Docker,
  topology: Topology,
  name: NodeName,
  progress: Progress,
) {
  const host = labHost(topology, name);
  if (topology.hostKind === "debian") {
    progress(`pg_createcluster 15 main on ${name} (data checksums, so pg_rewind works)`);
    const create = createDebianCluster(topology, name, "--data-checksums");
    await mustRun(docker, host, "pg_createcluster", asRoot(create), 120_000);
  } else {
    const data = host.spec.dataDir;
    const fresh = `${data}.new`;
    progress(`initdb on ${name} (data checksums, so pg_rewind works)`);
    // Built aside and renamed at the end: a half-initialised directory never looks like data.
    const initdb = asPostgres(
      [
        `rm -rf ${fresh}`,
        `${PG.bin}/initdb -D ${fresh} --data-checksums --auth=trust --encoding=UTF8 --locale=C.UTF-8 -U ${PG.superuser} >/dev/null`,
        `printf %s ${shellQuote(settings(topology, name))} >> ${fresh}/postgresql.conf`,
        `printf %s ${shellQuote(hbaRules(topology.subnet))} > ${fresh}/pg_hba.conf`,
        `mv ${fresh} ${data}`,
      ].join(" && "),
    );
    await mustRun(docker, host, "initdb", initdb, 120_000);
  }
  progress(`starting postgres on ${name} (primary)`);
  await startPostgres(docker, host);
}

/** The replication user and the `app` database, created when missing (an interrupted `up`). */
export async function ensureUsersAndDatabase(docker: Docker, host: LabHost): Promise<void> {
  const user = PG.replicationUser;
  await mustRun(
    docker,
    host,
    "creating the replication user",
    host.commands.sql(
      `do $$ begin if not exists (select from pg_roles where rolname = '${user}') then ` +
        `create role ${user} with login replication; end if; end $$`,
    ),
  );
  const exists = await queryJson<boolean>(
    docker,
    host,
    `select to_json(exists (select from pg_database where datname = '${PG.database}'))`,
  );
  if (!exists) {
    await mustRun(
      docker,
      host,
      `creating database ${PG.database}`,
      host.commands.sql(`create database ${PG.database}`),
    );
  }
}

/** A standby of `primary` on a node without data, made as a switchover rebuilds one. */
export async function cloneStandby(
  docker: Docker,
  topology: Topology,
  name: NodeName,
  primary: NodeName,
  progress: Progress,
) {
  const host = labHost(topology, name);
  const source = labHost(topology, primary).spec;
  if (topology.hostKind === "debian") {
    // The cluster's configuration is the node's own; its initdb'd data gives way to the copy.
    progress(`pg_createcluster 15 main on ${name}, for its configuration`);
    await mustRun(
      docker,
      host,
      "pg_createcluster",
      asRoot(createDebianCluster(topology, name, "--no-sync")),
      120_000,
    );
  }
  progress(`pg_basebackup on ${name} from ${primary} (standby, streaming)`);
  await mustRun(
    docker,
    host,
    "pg_basebackup",
    host.commands.baseBackup(source),
    BASEBACKUP_DEADLINE_MS,
  );
  await mustRun(docker, host, "removing the set-aside data", host.commands.removeSetAside);
  progress(`starting postgres on ${name} (standby)`);
  await startPostgres(docker, host);
}
