import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { EnvironmentError } from "../../core/errors.ts";
import type { NodeName } from "../../core/executor.ts";
import { productionTimeouts, type Timeouts } from "../../core/timeouts.ts";
import type { ClusterSpec } from "../commands.ts";
import { type InventoryFile, inventorySchema } from "./schema.ts";

/** A malformed inventory: the CLI prints the message (file, field, what was expected), exit 3. */
export class InventoryError extends EnvironmentError {
  override readonly name = "InventoryError";
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** Absolute path of the private key file; none when the agent is used. */
  keyFile: string | null;
  agent: boolean;
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
  const cluster: ClusterSpec = {
    nodes: Object.entries(inv.nodes).map(([name, n]) => {
      // Everything but how to log in and how Postgres is controlled (always pg_ctl, for now).
      const { ssh: _ssh, control: _control, ...host } = n;
      return { name, ...host };
    }),
    vip: { address: inv.vip.address, prefix: inv.vip.prefix, device: inv.vip.interface },
    superuser: inv.postgres.superuser,
    replicationUser: inv.postgres.replicationUser,
    database: inv.postgres.database,
    packages: inv.postgres.packages,
  };
  const ssh = Object.fromEntries(
    Object.entries(inv.nodes).map(([name, n]) => [
      name,
      {
        host: n.ssh.host ?? n.address,
        port: n.ssh.port,
        user: n.ssh.user,
        keyFile: n.ssh.key ? path(n.ssh.key) : null,
        agent: n.ssh.agent,
      },
    ]),
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
  };
}
