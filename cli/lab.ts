import { UsageError } from "../core/errors.ts";
import { toStderr } from "../core/progress.ts";
import { labDown, labStatus, labUp } from "../lab/lifecycle.ts";
import { labPsql, type PsqlTarget } from "../lab/psql.ts";
import { formatStatus } from "../lab/status-table.ts";
import { DEFAULT_HOST_KIND, DEFAULT_SUBNET, HOST_KINDS } from "../lab/topology.ts";
import { DEFAULT_FROM, DEFAULT_TO } from "../lab/versions.ts";
import { choice, parse, printHelp, splitPassThrough } from "./args.ts";
import { interruptible } from "./interrupt.ts";

/** `switchover lab …`: the rehearsal lab (two PostgreSQL 15 hosts in Docker and a VIP). */

const HELP = {
  lab: `usage: switchover lab <command> [options]

The lab: two Debian bookworm hosts (node1, node2) in containers on their own Docker network,
node2 streaming from node1, and a virtual IP on the primary. By default each host is a stock
Debian server: systemd as PID 1, the cluster 15/main made by pg_createcluster and run by
postgresql@15-main, package scripts live; restarting a container is a reboot. --host pg_ctl makes
hand-built hosts instead, postgres run with pg_ctl by the container's entrypoint.

commands:
  up       create the lab, or repair it (idempotent)
  status   show roles, versions, timelines, WAL positions and the VIP
  down     remove the lab's containers, network and volumes (images stay as the cache)
  psql     an interactive psql on a node or through the VIP

Run \`switchover lab <command> --help\` for its options. Needs a Docker engine:
\`sudo scripts/ensure-docker.sh\` starts one. The lab uses ${DEFAULT_SUBNET}
(PG_SWITCHOVER_LAB_SUBNET=a.b.c.0/24 to move it).`,
  up: `usage: switchover lab up [--from ${DEFAULT_FROM}] [--to ${DEFAULT_TO}] [--host debian|pg_ctl] [--pooler]

Builds the images when missing (Debian base with debootstrap, then the host image of the kind
with postgresql-15 pinned to --from), creates the network, node1 as primary and node2 as its
streaming standby, and puts the VIP on the primary. On an existing lab it starts what is
stopped and fixes what is missing, without touching data (and never starts a fenced node).
Writes an inventory of the lab for \`switchover run --inventory\`.

  --from 15.N   the version installed in the image (default ${DEFAULT_FROM}, Debian bookworm)
  --to 15.N     the version a switchover upgrades to (default ${DEFAULT_TO}, bookworm-security);
                checked against Debian's archive before anything changes
  --host K      debian (default): stock Debian servers, control systemd, fenced by start.conf;
                pg_ctl: pg_ctl hosts, fenced by <data dir>.fenced, which their entrypoint honours.
                A lab of the other kind must be removed first (\`lab down\`)
  --pooler      also a third host, pooler: Debian's pgbouncer (1.18) on port 6432, transaction
                pooling, its databases (app, postgres) on the VIP; its admin console is the
                database pgbouncer (user postgres). \`lab down\` removes it with the rest`,
  status: `usage: switchover lab status [--json]

Shows the VIP holder, the hosts' kind and, per node: container state, postgres state, role
(pg_is_in_recovery), version, timeline, WAL position (primary: current; standby: replayed),
replication lag, and whether the node is fenced; the pooler, when the lab has one. --json adds
per node hostKind, control, unit and startConf (null where they do not apply), and pooler:
{address, port, uri, running, paused} (null without one; paused: a pooled database is
paused, as SHOW DATABASES says).

  --json   print one JSON object instead of the table`,
  down: `usage: switchover lab down

Removes every container, network and volume labelled pg-switchover.lab=1 (the data too).
Images stay, so the next \`lab up\` is fast.`,
  psql: `usage: switchover lab psql [node1|node2|vip] [-- psql options…]

An interactive psql as postgres: on a node's own server, or through the VIP (default vip).
Everything after -- goes to psql, e.g. \`switchover lab psql vip -- -c 'select 1'\`.`,
};

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { up, status, down, psql };

/** Bad input is a UsageError and the lab's own errors propagate: main.ts maps them. */
export async function runLab(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") return printHelp(HELP.lab);
  if (command === undefined)
    throw new UsageError("missing lab command (see switchover lab --help)");
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) throw new UsageError(`unknown lab command "${command}" (see switchover lab --help)`);
  return run(rest);
}

async function up(args: string[]): Promise<number> {
  const { values } = parse(args, {
    from: { type: "string", default: DEFAULT_FROM },
    to: { type: "string", default: DEFAULT_TO },
    host: { type: "string" },
    pooler: { type: "boolean", default: false },
  });
  if (values.help) return printHelp(HELP.up);
  const host = choice(values.host, "host", HOST_KINDS, DEFAULT_HOST_KIND);
  // labUp checks the versions itself, before it touches anything.
  const interrupt = interruptible("lab", "stopping after the current step");
  try {
    const status = await labUp(
      { from: values.from, to: values.to, host, pooler: values.pooler },
      toStderr(),
      interrupt.signal,
    );
    process.stdout.write(`${formatStatus(status)}\n`);
    return 0;
  } finally {
    interrupt.release();
  }
}

async function status(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: "boolean", default: false } });
  if (values.help) return printHelp(HELP.status);
  const current = await labStatus();
  process.stdout.write(values.json ? `${JSON.stringify(current)}\n` : `${formatStatus(current)}\n`);
  return 0;
}

async function down(args: string[]): Promise<number> {
  const { values } = parse(args, {});
  if (values.help) return printHelp(HELP.down);
  const removed = await labDown(toStderr());
  const count = removed.containers.length + removed.networks.length + removed.volumes.length;
  process.stderr.write(count === 0 ? "lab: nothing to remove\n" : "lab: removed\n");
  return 0;
}

async function psql(args: string[]): Promise<number> {
  const { own, passed } = splitPassThrough(args);
  const { values, positionals } = parse(own, {}, true);
  if (values.help) return printHelp(HELP.psql);
  const target = positionals[0] ?? "vip";
  if (positionals.length > 1 || !["node1", "node2", "vip"].includes(target)) {
    throw new UsageError(`psql: expected node1, node2 or vip, not "${positionals.join(" ")}"`);
  }
  return labPsql(target as PsqlTarget, passed);
}
