import type Docker from "dockerode";
import { systemClock } from "../core/clock.ts";
import type { Progress } from "../core/progress.ts";
import { waitFor } from "../core/wait.ts";
import { fenceOf } from "../hosts/control.ts";
import { labHost } from "./hosts.ts";
import { dataDirFacts, PostgresCommandError, replication, startPostgres } from "./postgres.ts";
import { cloneStandby, ensureUsersAndDatabase, initPrimary } from "./provision.ts";
import { LAYOUTS, NODE_NAMES, type NodeName, type Topology } from "./topology.ts";

/** The lab's replication pair, brought to "one primary, one standby streaming from it". */
const STREAMING_DEADLINE_MS = 60_000;

interface NodeState {
  name: NodeName;
  hasData: boolean;
  running: boolean;
  inRecovery: boolean | null;
  /** What the node would be if it ran: a standby when standby.signal is there. */
  configured: "primary" | "standby" | null;
  /** Fenced (start.conf manual, or the pg_ctl marker): left alone by `lab up` and by the host. */
  fenced: boolean;
}

async function observe(docker: Docker, topology: Topology, name: NodeName): Promise<NodeState> {
  const host = labHost(topology, name);
  const facts = await dataDirFacts(docker, host);
  const running = facts.hasData && facts.running;
  const inRecovery = running ? (await replication(docker, host)).inRecovery : null;
  const configured = !facts.hasData ? null : facts.standbySignal ? "standby" : "primary";
  return { name, hasData: facts.hasData, running, inRecovery, configured, fenced: facts.fenced };
}

const observeAll = (docker: Docker, topology: Topology) =>
  Promise.all(NODE_NAMES.map((n) => observe(docker, topology, n)));

/**
 * Makes sure exactly one primary runs, from whatever exists: nothing (fresh lab: initdb on node1),
 * stopped servers (restarted containers) or a node without data. Never touches existing data,
 * never starts a fenced node, never starts a server that would make a second primary.
 * Returns the primary's name.
 */
export async function ensurePrimaryRunning(
  docker: Docker,
  topology: Topology,
  progress: Progress,
): Promise<NodeName> {
  let states = await observeAll(docker, topology);
  if (states.every((s) => !s.hasData)) {
    await initPrimary(docker, topology, "node1", progress);
    states = await observeAll(docker, topology);
  }
  const startable = states.filter((s) => s.hasData && !s.running && !s.fenced);
  refuseTwoPrimaries(topology, states, startable);
  for (const s of startable) {
    progress(`starting postgres on ${s.name} (${s.configured})`);
    await startPostgres(docker, labHost(topology, s.name));
  }
  const primary = onlyPrimary(await observeAll(docker, topology));
  await ensureUsersAndDatabase(docker, labHost(topology, primary));
  return primary;
}

/** Makes the other node a standby streaming from `primary`: cloned if it has no data yet. */
export async function ensureStandbyStreaming(
  docker: Docker,
  topology: Topology,
  primary: NodeName,
  progress: Progress,
): Promise<void> {
  const states = await observeAll(docker, topology);
  for (const s of states.filter((s) => s.name !== primary)) {
    if (s.fenced && !s.running) throw fencedNode(topology, s, primary);
    if (!s.hasData) await cloneStandby(docker, topology, s.name, primary, progress);
    await waitForStreaming(docker, topology, primary, s.name, progress);
  }
}

/** Checked before starting anything: the servers that would run must not hold two primaries. */
function refuseTwoPrimaries(topology: Topology, states: NodeState[], startable: NodeState[]): void {
  const primaries = states.filter(
    (s) =>
      (s.running && s.inRecovery === false) ||
      (startable.includes(s) && s.configured === "primary"),
  );
  if (primaries.length > 1) {
    throw new PostgresCommandError(
      `both nodes would run as primaries (${summary(states)}): the lab will not start a second ` +
        `primary; fence one (${fenceHow(topology)} on it) or \`switchover lab down\` to start over`,
    );
  }
}

function fencedNode(topology: Topology, s: NodeState, primary: NodeName): Error {
  return new PostgresCommandError(
    `${s.name} is fenced (${fenceHow(topology)}) and stopped, so it cannot be ${primary}'s standby: ` +
      `rejoin it as a standby and lift the fence, or \`switchover lab down\` to start over`,
  );
}

/** What fences a node of this lab, as a person would do it by hand. */
function fenceHow(topology: Topology): string {
  const fence = fenceOf(LAYOUTS[topology.hostKind]);
  return fence.kind === "marker" ? `touch ${fence.file}` : `manual in ${fence.file}`;
}

function onlyPrimary(states: NodeState[]): NodeName {
  const primaries = states.filter((s) => s.running && s.inRecovery === false);
  if (primaries.length === 1 && primaries[0]) return primaries[0].name;
  const why =
    primaries.length === 0 ? "no node is a primary" : "both nodes are primaries (split brain)";
  throw new PostgresCommandError(
    `${why} (${summary(states)}): the lab will not guess which data to keep; \`switchover lab down\` starts over`,
  );
}

const summary = (states: NodeState[]) => states.map((s) => `${s.name}: ${describe(s)}`).join(", ");

const describe = (s: NodeState) =>
  !s.hasData
    ? "no data"
    : s.running
      ? s.inRecovery
        ? "standby"
        : "primary"
      : `stopped ${s.configured}${s.fenced ? ", fenced" : ""}`;

/** Waits until the primary's pg_stat_replication shows the standby (by its name) streaming. */
export async function waitForStreaming(
  docker: Docker,
  topology: Topology,
  primary: NodeName,
  standby: NodeName,
  progress: Progress,
): Promise<void> {
  const host = labHost(topology, primary);
  let states: string[] = [];
  await waitFor(
    async () => {
      const { standbys } = await replication(docker, host);
      states = standbys.filter((s) => s.client === standby).map((s) => s.state);
      return states.includes("streaming") ? true : undefined;
    },
    {
      clock: systemClock,
      everyMs: 500,
      deadlineMs: STREAMING_DEADLINE_MS,
      timedOut: () =>
        new PostgresCommandError(
          `${standby} is not streaming from ${primary} after ${STREAMING_DEADLINE_MS / 1000}s ` +
            `(pg_stat_replication: ${states.join(", ") || "no row"}); see ${LAYOUTS[topology.hostKind].logFile} on ${standby}`,
        ),
    },
  );
  progress(`${standby} streams from ${primary}`);
}
