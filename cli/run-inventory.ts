import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { EnvironmentError, UsageError } from "../core/errors.ts";
import { stepProgress, toStderr } from "../core/progress.ts";
import type { HostSpec } from "../hosts/commands.ts";
import { type Inventory, loadInventory } from "../hosts/inventory/load.ts";
import {
  type CheckItem,
  gatherFacts,
  judge,
  preflightLooks,
  renderChecklist,
} from "../hosts/preflight.ts";
import { stateDir } from "../hosts/state-dir.ts";
import {
  remoteCommand,
  type SshExecutor,
  type SshExecutorOptions,
  sshExecutor,
} from "../hosts/transports/ssh.ts";
import { initialContext, type PlanContext } from "../plan/context.ts";
import { FileJournal, lastPosition, readJournal } from "../plan/journal.ts";
import { reconcile } from "../plan/reconcile.ts";
import { verifiedPlan } from "../plan/verified.ts";
import { observeRoles } from "../run/cluster-look.ts";
import { type RealRunReport, runAgainstCluster } from "../verify/run-report.ts";
import { interruptible } from "./interrupt.ts";
import { planSteps } from "./plan.ts";
import { lockPair } from "./run-lock.ts";
import {
  type CommandView,
  commandViews,
  renderCommands,
  runSections,
  sendView,
} from "./what-runs.ts";

export interface InventoryRunOptions {
  inventory: string;
  dryRun: boolean;
  journal?: string;
  resume?: string;
  acceptNewHostKeys: boolean;
  /** Asks the operator before the first change; false: nothing changes. */
  confirm: (question: string) => Promise<boolean>;
}

export type InventoryRunResult =
  | { kind: "report"; report: RealRunReport }
  | { kind: "printed"; code: number };

/**
 * `switchover run --inventory`: the verified plan against a production pair over SSH. Pre-flight
 * (read-only) first, as a checklist on stderr; `--dry-run` then prints each host's commands and
 * stops; otherwise, once confirmed and the pair locked, the run, journaled line by line.
 */
export async function runInventory(o: InventoryRunOptions): Promise<InventoryRunResult> {
  const inv = loadInventory(o.inventory);
  if (o.resume) return resume(inv, o.resume, o);
  const executor = await sshExecutor(inv, {
    acceptNewHostKeys: o.acceptNewHostKeys,
    ...sshLog(),
  });
  try {
    const items = await preflight(inv, executor);
    process.stderr.write(`pre-flight (${inv.file}):\n${renderChecklist(items)}`);
    const failed = items.filter((i) => i.status === "fail");
    if (failed.length > 0) {
      throw new EnvironmentError(
        `pre-flight failed (${failed.map((f) => f.check).join("; ")}): nothing changed`,
      );
    }
    if (o.dryRun) {
      process.stdout.write(renderDryRun(inv));
      return { kind: "printed", code: 0 };
    }
    const question = `switch ${inv.primary} → ${inv.standby} and upgrade both to ${inv.targetVersion}?`;
    if (!(await o.confirm(question))) {
      process.stderr.write("run: nothing changed\n");
      return { kind: "printed", code: 3 };
    }
    const journal = o.journal ?? productionJournalPath();
    return { kind: "report", report: await execute(inv, executor, journal, null) };
  } finally {
    executor.close();
  }
}

/**
 * SWITCHOVER_SSH_LOG=FILE: each command sent over SSH is appended to FILE as one JSON line
 * (`{"node", "user", "script"}`), as it is sent: an audit trail of what a run did on the hosts.
 */
function sshLog(): Pick<SshExecutorOptions, "onSend"> {
  const file = process.env.SWITCHOVER_SSH_LOG;
  if (!file) return {};
  return {
    onSend: (host, cmd) =>
      appendFileSync(
        file,
        `${JSON.stringify({ node: host.name, user: cmd.user, script: cmd.script })}\n`,
      ),
  };
}

/** Journals of production runs outlive a reboot: under the state directory, not /tmp. */
function productionJournalPath(): string {
  const dir = stateDir("runs");
  mkdirSync(dir, { recursive: true });
  return join(dir, `run-${new Date().toISOString().replaceAll(":", "-")}.jsonl`);
}

async function preflight(inv: Inventory, x: SshExecutor): Promise<CheckItem[]> {
  const reach: CheckItem[] = [];
  for (const n of inv.cluster.nodes) {
    const t = inv.ssh[n.name];
    try {
      await x.connections.client(n.name);
      reach.push({
        status: "ok",
        check: `${n.name} reachable`,
        detail: `ssh ${t?.user}@${t?.host}:${t?.port}, host key verified`,
      });
    } catch (e) {
      reach.push({ status: "fail", check: `${n.name} reachable`, detail: (e as Error).message });
    }
  }
  if (reach.some((r) => r.status === "fail")) return reach;
  const host = (name: string): HostSpec => {
    const h = inv.cluster.nodes.find((n) => n.name === name);
    if (!h) throw new Error(`no node "${name}" in ${inv.file}`);
    return h;
  };
  const [p, s] = await Promise.all([
    gatherFacts(x, x.connections.run, inv, host(inv.primary)),
    gatherFacts(x, x.connections.run, inv, host(inv.standby)),
  ]);
  return [...reach, ...judge(inv, p, s)];
}

/**
 * What the run sends, per host, as the SSH channel receives it: pre-flight's looks, each step's
 * commands, the sampler's and the checkers' looks, from the same builders and the inventory's
 * deadlines the SSH executor uses.
 */
export function renderDryRun(inv: Inventory): string {
  const context = initialContext({
    primary: inv.primary,
    standby: inv.standby,
    targetVersion: inv.targetVersion,
    timeouts: inv.timeouts,
    maxLagBytes: inv.maxLagBytes,
  });
  const line = (c: CommandView) => {
    const host = inv.cluster.nodes.find((n) => n.name === c.host);
    const login = inv.ssh[c.host]?.user;
    if (!host || !login || (c.user !== "root" && c.user !== "postgres"))
      return `${c.host}> ${c.script}`;
    return `${login}@${c.host}$ ${remoteCommand(login, host, { user: c.user, script: c.script })}`;
  };
  const nodes = [inv.primary, inv.standby];
  const preflight = nodes.flatMap((name) => {
    const host = inv.cluster.nodes.find((n) => n.name === name) as HostSpec;
    const looks = preflightLooks(inv, host);
    const own = (l: typeof looks.hazards, when?: string) =>
      sendView(`pre-flight: ${l.what}`, l, when);
    return [
      ...commandViews(inv.cluster, inv.timeouts, looks.calls),
      own(looks.hostFacts),
      own(looks.hazards, "if it runs"),
      own(looks.freeBytes),
      own(looks.targetAvailable),
    ];
  });
  const out = [
    `dry run: ${verifiedPlan.title}, ${inv.primary} → ${inv.standby}, to ${inv.targetVersion}; nothing was changed`,
    "",
    "Pre-flight (read-only, taken above):",
    ...renderCommands(preflight, line),
    "",
  ];
  planSteps(verifiedPlan, inv.cluster, context).forEach((s, i) => {
    out.push(`${String(i + 1).padStart(2)}. ${s.id} — ${s.does}`);
    out.push(`    (next: ${s.next.join(" | ")}; on failure: ${s.onFailure})`);
    out.push(...renderCommands(s.commands, line));
  });
  for (const section of runSections(inv.cluster, inv.timeouts, nodes)) {
    out.push("", `${section.title}:`, ...renderCommands(section.commands, line));
  }
  return `${out.join("\n")}\n`;
}

async function execute(
  inv: Inventory,
  executor: SshExecutor,
  journal: string,
  resumeAt: { step: string; context: PlanContext } | null,
): Promise<RealRunReport> {
  const lock = lockPair(inv.cluster, journal);
  const interrupt = interruptible("run");
  const context = resumeAt?.context;
  process.stderr.write(
    `run: ${context?.primary ?? inv.primary} → ${context?.standby ?? inv.standby}, journal ${journal}\n`,
  );
  try {
    return await runAgainstCluster({
      executor,
      spec: verifiedPlan,
      primary: context?.primary ?? inv.primary,
      standby: context?.standby ?? inv.standby,
      targetVersion: context?.targetVersion ?? inv.targetVersion,
      timeouts: context?.timeouts ?? inv.timeouts,
      maxLagBytes: context?.maxLagBytes ?? inv.maxLagBytes,
      journal: new FileJournal(journal),
      onStep: stepProgress(toStderr("run")),
      signal: interrupt.signal,
      ...(resumeAt ? { resume: resumeAt } : {}),
    });
  } finally {
    interrupt.release();
    lock.release();
  }
}

/**
 * `run --resume JOURNAL`: where the journal stopped, checked against the cluster as it is now;
 * the run carries on from there (appending to the same journal), or stops saying why.
 */
async function resume(
  inv: Inventory,
  path: string,
  o: InventoryRunOptions,
): Promise<InventoryRunResult> {
  if (!existsSync(path)) throw new UsageError(`--resume: no journal at ${path}`);
  const entries = readJournal(path);
  const start = entries.find((e) => e.kind === "start");
  if (!start || start.plan !== verifiedPlan.id)
    throw new UsageError(`--resume: ${path} is not the journal of a verified-plan run`);
  const names = inv.cluster.nodes.map((n) => n.name);
  if (![start.input.primary, start.input.standby].every((n) => names.includes(n)))
    throw new UsageError(`--resume: the journal's nodes are not in ${inv.file}`);
  const pos = lastPosition(entries);
  if (!pos) throw new UsageError(`--resume: ${path} has no step to resume from`);
  if ("ended" in pos) {
    process.stderr.write(
      `run: the run already ended (${pos.ended}): \`switchover report ${path}\`\n`,
    );
    return { kind: "printed", code: pos.ended === "done" ? 0 : 2 };
  }
  // The resumed run's deadlines are the journal's, as its plan's are.
  const executor = await sshExecutor(inv, {
    acceptNewHostKeys: o.acceptNewHostKeys,
    timeouts: pos.context.timeouts,
    ...sshLog(),
  });
  try {
    await executor.connections.connectAll();
    const seen = await observeRoles(executor, names, 0);
    const r = reconcile(pos.step, pos.context, seen);
    process.stderr.write(
      `run: the journal stopped at ${pos.step}; now: primary ${seen.primaries.join(", ") || "none"}, VIP on ${seen.vipHolders.join(", ") || "none"}\n`,
    );
    if ("stop" in r) throw new EnvironmentError(`cannot resume: ${r.stop}`);
    if (r.note) process.stderr.write(`run: ${r.note}\n`);
    if (!(await o.confirm(`resume at ${r.resumeAt}?`))) {
      process.stderr.write("run: nothing changed\n");
      return { kind: "printed", code: 3 };
    }
    const report = await execute(inv, executor, path, { step: r.resumeAt, context: pos.context });
    return { kind: "report", report };
  } finally {
    executor.close();
  }
}
