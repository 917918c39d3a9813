import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { EnvironmentError } from "../core/errors.ts";
import type { Progress } from "../core/progress.ts";
import { productionTimeouts, type Timeouts } from "../core/timeouts.ts";
import { loadInventory } from "../hosts/inventory/load.ts";
import { resolveTargetOnHosts } from "../hosts/package-versions.ts";
import { sshExecutor } from "../hosts/transports/ssh.ts";
import { type Endpoint, ensureWritesTable } from "../hosts/writes.ts";
import { dockerExecutor } from "../lab/docker-executor.ts";
import { connectDocker } from "../lab/engine.ts";
import type { LabStatus } from "../lab/lifecycle.ts";
import { labPooler } from "../lab/pooler.ts";
import { labFiles } from "../lab/ssh-access.ts";
import { labCluster, labNode, labTopology, PG } from "../lab/topology.ts";
import type { PlanContext } from "../plan/context.ts";
import { FileJournal } from "../plan/journal.ts";
import { PLANS, type PlanName } from "../plan/plans.ts";
import type { RunNemesis } from "../run/driver.ts";
import { type RealRunReport, runAgainstCluster } from "./run-report.ts";

export interface LabRunOptions {
  plan: PlanName;
  to: string;
  /** Writes per second during the run; none for `run --lab`. */
  rate?: number;
  /**
   * The share of them sent to the old primary's own address (default DIRECT_SHARE), as an
   * application with a stale connection string does: a second primary's writes show as lost.
   */
  directShare?: number;
  /** The client writes through the lab's pooler (`lab up --pooler`), not the VIP itself. */
  pooler?: boolean;
  journal?: string;
  label: string;
  signal: AbortSignal;
  /** The plan's deadlines (default: production's). */
  timeouts?: Timeouts;
  /** Faults struck during the run (fault rehearsals). */
  nemesis?: RunNemesis;
  /** docker exec (default), or SSH with the inventory `lab up` wrote: production's transport. */
  executor?: "docker" | "ssh";
  /** Where the run and its journal are announced. */
  progress: Progress;
  /** Each step as it starts. */
  onStep?: (step: string, context: PlanContext) => void;
}

/** The share of a rehearsal's writes sent to the old primary's own address. */
export const DIRECT_SHARE = 0.1;

/** The standby may be this far behind when the run starts (pre-flight refuses beyond). */
const MAX_LAG_BYTES = 16 * 1024 * 1024;

/**
 * Runs a plan against the running lab through the Docker executor: the primary is the node
 * holding the VIP, the standby the other one. The journal goes to `journal`, or to a new file
 * under the temp directory, and is named on stderr so the run can be resumed or reported.
 */
export async function runOnLab(status: LabStatus, o: LabRunOptions): Promise<RealRunReport> {
  const topology = labTopology(status.hostKind);
  const { primary, standby } = labPair(status);
  const docker = await connectDocker();
  const endpoint = {
    host: topology.vip,
    port: PG.port,
    user: PG.superuser,
    database: PG.database,
  };
  const timeouts = o.timeouts ?? productionTimeouts;
  const executor =
    o.executor === "ssh"
      ? await sshExecutor(loadInventory(labFiles().inventory), { timeouts })
      : dockerExecutor(docker, topology, timeouts);
  try {
    // The target as each host's apt knows it, asked before anything changes, as pre-flight does.
    const cluster = labCluster(topology);
    const target = await resolveTargetOnHosts(
      "connections" in executor ? executor.connections.run : executor.run,
      cluster,
      cluster.nodes,
      o.to,
      timeouts.command,
    );
    if (!target.ok) throw new EnvironmentError(`--to ${o.to}: ${target.reason}`);
    if (o.rate !== undefined) await withClient(endpoint, ensureWritesTable);
    const front = o.pooler ? poolerEndpoint(status, endpoint) : endpoint;
    const journalPath = o.journal ?? newJournalPath(o.label);
    o.progress(
      `${o.plan} plan, ${primary} → ${standby}, to ${target.version}, journal ${journalPath}`,
    );
    return await runAgainstCluster({
      executor,
      spec: PLANS[o.plan],
      primary,
      standby,
      targetVersion: target.version,
      timeouts,
      maxLagBytes: MAX_LAG_BYTES,
      // The lab's pooler, when it has one serving, is paused across the switchover.
      poolers: status.pooler?.running ? [labPooler(topology)] : [],
      journal: new FileJournal(journalPath),
      ...(o.rate !== undefined
        ? {
            workload: {
              endpoint: front,
              via: o.pooler ? ("pooler" as const) : ("vip" as const),
              ratePerSec: o.rate,
              direct: {
                node: primary,
                endpoint: { ...endpoint, host: labNode(topology, primary).address },
                share: o.directShare ?? DIRECT_SHARE,
              },
            },
          }
        : {}),
      ...(o.onStep ? { onStep: o.onStep } : {}),
      signal: o.signal,
      ...(o.nemesis ? { nemesis: o.nemesis } : {}),
    });
  } finally {
    executor.close();
  }
}

/** The lab's pooler as the client's endpoint, the same database and user as through the VIP. */
function poolerEndpoint(status: LabStatus, vip: Endpoint): Endpoint {
  if (!status.pooler?.running) {
    throw new EnvironmentError(
      "the lab has no pooler serving: `switchover lab up --pooler` starts one",
    );
  }
  return { ...vip, host: status.pooler.address, port: status.pooler.port };
}

/** The primary is the node holding the VIP; the standby the other one. */
export function labPair(status: LabStatus): { primary: string; standby: string } {
  const primary = status.vip.holder;
  const standby = status.nodes.find((n) => n.name !== primary)?.name;
  if (!primary || !standby) {
    throw new EnvironmentError(
      `the lab has no single VIP holder (holders: ${status.vip.holders.join(", ") || "none"}): \`switchover lab up\` starts or repairs it`,
    );
  }
  return { primary, standby };
}

function newJournalPath(label: string): string {
  const dir = join(tmpdir(), "pg-switchover");
  mkdirSync(dir, { recursive: true });
  return join(dir, `${label}-${new Date().toISOString().replaceAll(":", "-")}.jsonl`);
}

async function withClient(
  endpoint: pg.ClientConfig,
  use: (c: pg.Client) => Promise<void>,
): Promise<void> {
  const client = new pg.Client({ ...endpoint, connectionTimeoutMillis: 5000, query_timeout: 5000 });
  try {
    await client.connect();
    await use(client);
  } catch (e) {
    throw new EnvironmentError(
      `cannot write through the VIP ${endpoint.host}: ${(e as Error).message}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}
