import type { ExecutorCall, NodeName } from "../core/executor.ts";
import type { Timeouts } from "../core/timeouts.ts";
import type { ClusterSpec } from "../hosts/commands.ts";
import { type HostSend, hostSends, onHost, type Sent, sentBy } from "../hosts/host-calls.ts";
import { observeClusterCalls, observeRolesCalls } from "../run/cluster-look.ts";
import { SAMPLE_EVERY_MS } from "../run/real-cluster.ts";

/**
 * What a run sends, as `switchover plan` and the dry run show it: executor calls (a step's,
 * the sampler's, pre-flight's), each with the commands hosts/host-calls.ts builds for it, the
 * very ones the shell executor sends. Nothing here builds a command.
 */
export interface CommandView {
  /** The executor call that sends it: `stopPostgres(node1, {mode: fast, fence: true})`. */
  call: string;
  /** When the call is made, if not always once. */
  when?: string;
  /** When the call sends this one, if not always. */
  note?: string;
  /** A node; `client` (a pg connection from here); `nobody` (nothing is sent). */
  host: string;
  user: "root" | "postgres" | "client" | "none";
  /** Where a client connects. */
  to?: string;
  script: string;
  /**
   * The script as the host receives it, when the executor wraps it (under its deadline on the
   * host, after any earlier change: host-calls.ts onHost); the dry run prints this one.
   */
  sent?: string;
  /** How long its transport may take. */
  deadlineMs: number | null;
}

/** `runId`: the calls are a run's (a step's), whose forward commands check its watchdog first. */
export function commandViews(
  cluster: ClusterSpec,
  timeouts: Timeouts,
  calls: readonly ExecutorCall[],
  runId?: string,
): CommandView[] {
  const sends = hostSends(cluster, timeouts);
  const host = (name: string) => cluster.nodes.find((h) => h.name === name);
  return calls.flatMap((c) =>
    sentBy(sends, c).map((s) => {
      const v = view(s, describe(c), c.when);
      const h = s.kind === "host" ? host(s.send.node) : undefined;
      return s.kind === "host" && h ? { ...v, sent: onHost(s.send, h, runId).script } : v;
    }),
  );
}

/** A command sent outside any executor call (pre-flight's own looks). */
export function sendView(call: string, send: HostSend, when?: string): CommandView {
  return view({ kind: "host", send }, call, when);
}

function view(s: Sent, call: string, when: string | undefined): CommandView {
  const head = { call, ...(when ? { when } : {}), ...(s.note ? { note: s.note } : {}) };
  switch (s.kind) {
    case "host":
      return {
        ...head,
        host: s.send.node,
        user: s.send.command.user,
        script: s.send.command.script,
        deadlineMs: s.send.deadlineMs,
      };
    case "client":
      return {
        ...head,
        host: "client",
        user: "client",
        to: `${s.send.target} ${s.send.address}`,
        script: s.send.sql,
        deadlineMs: s.send.deadlineMs,
      };
    case "nothing":
      return {
        call,
        ...(when ? { when } : {}),
        host: "nobody",
        user: "none",
        script: s.note,
        deadlineMs: null,
      };
  }
}

/** `stopPostgres(node1, {mode: fast, fence: true})`. */
function describe(c: ExecutorCall): string {
  const arg = (a: unknown): string =>
    typeof a === "object" && a !== null
      ? `{${Object.entries(a)
          .map(([k, v]) => `${k}: ${String(v)}`)
          .join(", ")}}`
      : String(a);
  return `${c.method}(${(c.args as unknown[]).map(arg).join(", ")})`;
}

export interface SectionView {
  title: string;
  commands: CommandView[];
}

/** What a real run sends besides its steps: the split-brain sampler's and the checkers' looks. */
export function runSections(
  cluster: ClusterSpec,
  timeouts: Timeouts,
  nodes: readonly NodeName[],
): SectionView[] {
  return [
    {
      title: `While the plan runs, the split-brain sampler looks at both nodes every ${SAMPLE_EVERY_MS} ms`,
      commands: commandViews(cluster, timeouts, observeRolesCalls(nodes)),
    },
    {
      title:
        "Once the plan has ended, the checkers look at both nodes (again until the standby has caught up)",
      commands: commandViews(cluster, timeouts, observeClusterCalls(nodes)),
    },
  ];
}

/**
 * The lines of `commands`, each call's once above its commands, each command as `line` writes
 * it (a client's statement and "nothing is sent" alike for every transport).
 */
export function renderCommands(
  commands: readonly CommandView[],
  line: (c: CommandView) => string,
): string[] {
  const out: string[] = [];
  let last = "";
  for (const c of commands) {
    const head = `${c.call}${c.when ? `, ${c.when}` : ""}`;
    if (head !== last) out.push(`    ${head}:`);
    last = head;
    if (c.note) out.push(`      ${c.note}:`);
    if (c.user === "none") out.push(`      (${c.script})`);
    else if (c.user === "client") out.push(`      client→${c.to}> ${c.script}`);
    else out.push(`      ${line(c)}`);
  }
  return out;
}

/** A host command as a person would type it on the host: `node1$ [postgres] …`, `node1# …`. */
export function hostLine(c: CommandView): string {
  return `${c.host}${c.user === "root" ? "#" : "$"} ${c.user === "postgres" ? "[postgres] " : ""}${c.script}`;
}
