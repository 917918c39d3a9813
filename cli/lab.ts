import { parseArgs } from "node:util";
import { BaseImageError } from "../lab/base-image.ts";
import { DockerUnavailableError } from "../lab/engine.ts";
import { ImageBuildError, VersionUnavailableError } from "../lab/image.ts";
import { BadVersionError, LabIncompleteError, labDown, labStatus, labUp } from "../lab/lab.ts";
import { toStderr } from "../lab/progress.ts";
import { LabNotRunningError, labPsql, type PsqlTarget } from "../lab/psql.ts";
import { formatStatus } from "../lab/status-table.ts";
import { DEFAULT_SUBNET } from "../lab/topology.ts";
import { checkUpgradePath, DEFAULT_FROM, DEFAULT_TO } from "../lab/versions.ts";

/** `switchover lab …`: the rehearsal lab (two PostgreSQL 15 hosts in Docker and a VIP). */

const EXIT = { ok: 0, environment: 3, interrupted: 130 } as const;

const HELP: Record<string, string> = {
  lab: `usage: switchover lab <command> [options]

The lab: two Debian bookworm containers (node1, node2) on their own Docker network, PostgreSQL 15
managed with pg_ctl, node2 streaming from node1, and a virtual IP on the primary.

commands:
  up       create the lab, or repair it (idempotent)
  status   show roles, versions, timelines, WAL positions and the VIP
  down     remove the lab's containers, network and volumes (images stay as the cache)
  psql     an interactive psql on a node or through the VIP

Run \`switchover lab <command> --help\` for its options. Needs a Docker engine:
\`sudo scripts/ensure-docker.sh\` starts one. The lab uses ${DEFAULT_SUBNET}
(PG_SWITCHOVER_LAB_SUBNET=a.b.c.0/24 to move it).`,
  up: `usage: switchover lab up [--from ${DEFAULT_FROM}] [--to ${DEFAULT_TO}]

Builds the images when missing (Debian base with debootstrap, then the lab image with
postgresql-15 pinned to --from), creates the network, node1 as primary and node2 as its
streaming standby, and puts the VIP on the primary. On an existing lab it starts what is
stopped and fixes what is missing, without touching data.

  --from 15.N   the version installed in the image (default ${DEFAULT_FROM}, Debian bookworm)
  --to 15.N     the version a switchover upgrades to (default ${DEFAULT_TO}, bookworm-security);
                checked against Debian's archive before anything changes`,
  status: `usage: switchover lab status [--json]

Shows the VIP holder and, per node: container state, postgres state, role (pg_is_in_recovery),
version, timeline, WAL position (primary: current; standby: replayed) and replication lag.

  --json   print one JSON object instead of the table`,
  down: `usage: switchover lab down

Removes every container, network and volume labelled pg-switchover.lab=1 (the data too).
Images stay, so the next \`lab up\` is fast.`,
  psql: `usage: switchover lab psql [node1|node2|vip] [-- psql options…]

An interactive psql as postgres: on a node's own server, or through the VIP (default vip).
Everything after -- goes to psql, e.g. \`switchover lab psql vip -- -c 'select 1'\`.`,
};

export async function runLab(argv: string[]): Promise<number> {
  const args = argv[0] === "lab" ? argv.slice(1) : argv;
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    return usage(HELP.lab ?? "", command === undefined ? EXIT.environment : EXIT.ok);
  }
  try {
    switch (command) {
      case "up":
        return await up(rest);
      case "status":
        return await status(rest);
      case "down":
        return await down(rest);
      case "psql":
        return await psql(rest);
      default:
        return usage(`unknown lab command "${command}"\n\n${HELP.lab}`, EXIT.environment);
    }
  } catch (err) {
    return reportFailure(err);
  }
}

function usage(text: string, code: number): number {
  (code === EXIT.ok ? process.stdout : process.stderr).write(`${text}\n`);
  return code;
}

const HELP_OPTION = { help: { type: "boolean", short: "h" } } as const;

async function up(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...HELP_OPTION,
      from: { type: "string", default: DEFAULT_FROM },
      to: { type: "string", default: DEFAULT_TO },
    },
    allowPositionals: true,
  });
  if (values.help) return usage(HELP.up ?? "", EXIT.ok);
  if (positionals.length > 0)
    return usage(`lab up takes no arguments\n\n${HELP.up}`, EXIT.environment);
  const versions = { from: values.from, to: values.to };
  const path = checkUpgradePath(versions.from, versions.to);
  if (!path.ok) return usage(`lab up: ${path.reason}`, EXIT.environment);
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write(
      "lab: interrupted, stopping after the current step (Ctrl-C again to quit now)\n",
    );
    controller.abort();
  };
  process.on("SIGINT", onInterrupt);
  try {
    const status = await labUp(versions, toStderr(), controller.signal);
    process.stdout.write(`${formatStatus(status)}\n`);
    return EXIT.ok;
  } finally {
    process.off("SIGINT", onInterrupt);
  }
}

async function status(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...HELP_OPTION, json: { type: "boolean", default: false } },
    allowPositionals: true,
  });
  if (values.help) return usage(HELP.status ?? "", EXIT.ok);
  if (positionals.length > 0)
    return usage(`lab status takes no arguments\n\n${HELP.status}`, EXIT.environment);
  const current = await labStatus();
  process.stdout.write(values.json ? `${JSON.stringify(current)}\n` : `${formatStatus(current)}\n`);
  return EXIT.ok;
}

async function down(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: HELP_OPTION, allowPositionals: true });
  if (values.help) return usage(HELP.down ?? "", EXIT.ok);
  if (positionals.length > 0)
    return usage(`lab down takes no arguments\n\n${HELP.down}`, EXIT.environment);
  const removed = await labDown(toStderr());
  const count = removed.containers.length + removed.networks.length + removed.volumes.length;
  process.stderr.write(count === 0 ? "lab: nothing to remove\n" : "lab: removed\n");
  return EXIT.ok;
}

async function psql(args: string[]): Promise<number> {
  const split = args.indexOf("--");
  const own = split < 0 ? args : args.slice(0, split);
  const passed = split < 0 ? [] : args.slice(split + 1);
  const { values, positionals } = parseArgs({
    args: own,
    options: HELP_OPTION,
    allowPositionals: true,
  });
  if (values.help) return usage(HELP.psql ?? "", EXIT.ok);
  const target = positionals[0] ?? "vip";
  if (positionals.length > 1 || !["node1", "node2", "vip"].includes(target)) {
    return usage(`lab psql: expected node1, node2 or vip\n\n${HELP.psql}`, EXIT.environment);
  }
  return labPsql(target as PsqlTarget, passed);
}

/** The one place lab errors become exit codes: 3 for usage and environment, 130 for Ctrl-C. */
function reportFailure(err: unknown): number {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof LabIncompleteError) {
    process.stderr.write(`lab: ${message}\n`);
    return err.interrupted ? EXIT.interrupted : EXIT.environment;
  }
  const known = [
    DockerUnavailableError,
    BadVersionError,
    VersionUnavailableError,
    BaseImageError,
    ImageBuildError,
    LabNotRunningError,
  ].some((kind) => err instanceof kind);
  const isUsage = (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ?? false;
  if (known || isUsage) {
    process.stderr.write(`lab: ${message}\n`);
    return EXIT.environment;
  }
  process.stderr.write(
    `lab: unexpected failure: ${err instanceof Error ? (err.stack ?? message) : message}\n`,
  );
  return EXIT.environment;
}
