import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { EnvironmentError } from "../../core/errors.ts";
import type { NodeName, Pooler } from "../../core/executor.ts";
import { type HookName, type Hooks, hookFromLine, hookPolicies } from "../../core/hooks.ts";
import { productionTimeouts, type Timeouts } from "../../core/timeouts.ts";
import type { ClusterSpec, HostSpec } from "../commands.ts";
import { type InventoryFile, inventorySchema } from "./schema.ts";

/** A malformed inventory: the CLI prints the message (file, field, what was expected), exit 3. */
export class InventoryError extends EnvironmentError {
  override readonly name = "InventoryError";
}

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** Absolute path of the private key file; none when the agent is used. */
  keyFile: string | null;
  agent: boolean;
}

export interface SshTarget extends SshEndpoint {
  /** The bastion it is reached through (ProxyJump), or none. */
  jump: SshEndpoint | null;
}

/** What an inventory says, resolved: the cluster as the host commands see it, and the run's settings. */
export interface Inventory {
  file: string;
  cluster: ClusterSpec;
  ssh: Record<NodeName, SshTarget>;
  knownHosts: string;
  tunnel: boolean;
  connectTimeoutMs: number;
  primary: NodeName;
  standby: NodeName;
  targetVersion: string;
  timeouts: Timeouts;
  maxLagBytes: number;
  minFreeBytes: number;
  /** The operator's commands at named moments of the run (core/hooks.ts). */
  hooks: Hooks;
  /** PgBouncers in front of the VIP, paused across the switchover. */
  poolers: Pooler[];
}

/** Reads and validates an inventory; nothing connects before this has succeeded. */
export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new InventoryError(`${file}: cannot read: ${(e as Error).message}`);
  }
  return parseInventory(text, file);
}

export function parseInventory(text: string, file: string): Inventory {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const where = `line ${lines.linePos(yamlError.pos[0]).line}: `;
    throw new InventoryError(
      `${file}: not valid YAML: ${where}${yamlError.message.split("\n")[0]}`,
    );
  }
  const parsed = inventorySchema.safeParse(doc.toJS());
  if (!parsed.success) throw new InventoryError(`${file}: ${describeIssues(parsed.error)}`);
  return resolveInventory(parsed.data, file);
}

/** Each issue as "field a.b.c: what was expected", joined on one line. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const field = i.path.length > 0 ? i.path.join(".") : "(top level)";
      const keys = i.code === "unrecognized_keys" ? ` (${i.keys.join(", ")})` : "";
      return `field ${field}: ${i.message}${keys}`;
    })
    .join("; ");
}

function resolveInventory(inv: InventoryFile, file: string): Inventory {
  const here = dirname(resolve(file));
  const path = (p: string) => resolve(here, p.replace(/^~(?=\/)/, homedir()));
  const nodes = Object.entries(inv.nodes).map(([name, n]) => resolveHost(name, n));
  const version = nodes.map(clusterVersion).find((v) => v !== null) ?? "15";
  const cluster: ClusterSpec = {
    nodes,
    vip: { address: inv.vip.address, prefix: inv.vip.prefix, device: inv.vip.interface },
    superuser: inv.postgres.superuser,
    replicationUser: inv.postgres.replicationUser,
    database: inv.postgres.database,
    packages: inv.postgres.packages ?? [`postgresql-${version}`, `postgresql-client-${version}`],
  };
  const login = (l: { port: number; user: string; key?: string | undefined; agent: boolean }) => ({
    port: l.port,
    user: l.user,
    keyFile: l.key ? path(l.key) : null,
    agent: l.agent,
  });
  const ssh = Object.fromEntries(
    Object.entries(inv.nodes).map(([name, n]): [string, SshTarget] => {
      const jump = n.ssh.jump ?? inv.ssh.jump;
      return [
        name,
        {
          host: n.ssh.host ?? n.address,
          ...login(n.ssh),
          jump: jump ? { host: jump.host, ...login(jump) } : null,
        },
      ];
    }),
  );
  return {
    file,
    cluster,
    ssh,
    knownHosts: inv.ssh.knownHosts
      ? path(inv.ssh.knownHosts)
      : resolve(homedir(), ".ssh/known_hosts"),
    tunnel: inv.ssh.tunnel,
    connectTimeoutMs: inv.ssh.connectTimeoutMs,
    primary: inv.primary,
    standby: inv.standby,
    targetVersion: inv.upgrade.version,
    timeouts: { ...productionTimeouts, ...inv.timeouts },
    maxLagBytes: inv.maxLagBytes,
    minFreeBytes: inv.minFreeBytes,
    hooks: resolveHooks(inv.hooks),
    poolers: inv.poolers,
  };
}

function resolveHooks(hooks: InventoryFile["hooks"]): Hooks {
  const out: Hooks = {};
  for (const [name, h] of Object.entries(hooks) as [HookName, (typeof hooks)[HookName]][]) {
    if (h === undefined) continue;
    out[name] =
      typeof h === "string"
        ? hookFromLine(name, h)
        : {
            run: h.run,
            deadlineMs: Math.round(h.deadline * 1000),
            onFailure: h.onFailure ?? hookPolicies(name).default,
          };
  }
  return out;
}

type NodeEntry = InventoryFile["nodes"][string];

/**
 * A node's host as the commands see it. A postgresql-common cluster's paths follow from its
 * version and name, as pg_createcluster lays them out; pre-flight checks them against
 * pg_lsclusters. A pg_ctl host's default to Debian's layout for 15/main.
 */
function resolveHost(name: string, n: NodeEntry): HostSpec {
  const common = {
    name,
    address: n.address,
    port: n.port,
    socketDir: n.socketDir,
    osUser: n.osUser,
  };
  if (n.control === "pg_ctl") {
    return {
      ...common,
      pgBin: n.pgBin ?? "/usr/lib/postgresql/15/bin",
      dataDir: n.dataDir ?? "/var/lib/postgresql/15/main",
      logFile: n.logFile ?? "/var/log/postgresql/postgresql-15-main.log",
      control: { mode: "pg_ctl", configFile: n.configFile ?? null },
    };
  }
  const [version = "15", clusterName = "main"] = (n.cluster ?? "15/main").split("/");
  return {
    ...common,
    pgBin: n.pgBin ?? `/usr/lib/postgresql/${version}/bin`,
    dataDir: n.dataDir ?? `/var/lib/postgresql/${version}/${clusterName}`,
    logFile: n.logFile ?? `/var/log/postgresql/postgresql-${version}-${clusterName}.log`,
    control: { mode: n.control, cluster: { version, name: clusterName } },
  };
}

function clusterVersion(h: HostSpec): string | null {
  return h.control.mode === "pg_ctl" ? null : h.control.cluster.version;
}
