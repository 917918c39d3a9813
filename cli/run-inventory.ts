import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { systemClock } from "../core/clock.ts";
import { EnvironmentError, UsageError } from "../core/errors.ts";
import { HOOK_NAMES, type Hook, type Hooks, hookEnd } from "../core/hooks.ts";
import { stepProgress, toStderr } from "../core/progress.ts";
import type { HostCommand, HostSpec } from "../hosts/commands.ts";
import type { HostSend } from "../hosts/host-calls.ts";
import {
  heldBy,
  holderGone,
  holderName,
  type LockHolder,
  readHostLocks,
  readLockCommand,
  releaseLockCommand,
  takeHostLocks,
  takeLockCommand,
  thisOperator,
} from "../hosts/host-lock.ts";
import { type Inventory, loadInventory } from "../hosts/inventory/load.ts";
import {
  type CheckItem,
  gatherFacts,
  judge,
  preflightLink,
  preflightLooks,
  preflightTarget,
  probeReplicationBack,
  renderChecklist,
} from "../hosts/preflight.ts";
import { stateDir } from "../hosts/state-dir.ts";
import {
  remoteCommand,
  type SshExecutor,
  type SshExecutorOptions,
  sshExecutor,
} from "../hosts/transports/ssh.ts";
import { initialContext, newRunId, type PlanContext } from "../plan/context.ts";
import { FileJournal, type Journal, lastPosition, readJournal } from "../plan/journal.ts";
import { reconcile } from "../plan/reconcile.ts";
import { verifiedPlan } from "../plan/verified.ts";
import { observeRoles } from "../run/cluster-look.ts";
import { fireHook, type HookFacts, withHooks } from "../run/hooks.ts";
import { type RealRunReport, runAgainstCluster } from "../verify/run-report.ts";
import { interruptible } from "./interrupt.ts";
import { passphraseSource } from "./passphrase.ts";
import { planSteps } from "./plan.ts";
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
  /** `--take-over HOLDER`: the run lock's holder, as the refusal named it, is gone. */
  takeOver: string | null;
  /** `--hook NAME=COMMAND`: over the inventory's hooks of the same names. */
  hooks: Hooks;
  /** Asks the operator before the first change; false: nothing changes. */
  confirm: (question: string) => Promise<boolean>;
  /** --unhold: held packages of the upgrade are unheld for it and held again after it. */
  unhold?: boolean;
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
  const loaded = loadInventory(o.inventory);
  const inv = {
    ...loaded,
    hooks: { ...loaded.hooks, ...o.hooks },
    cluster: { ...loaded.cluster, unhold: o.unhold ?? false },
  };
  if (o.resume) return resume(inv, o.resume, o);
  const executor = await sshExecutor(inv, {
    acceptNewHostKeys: o.acceptNewHostKeys,
    passphrase: passphraseSource(),
    ...sshLog(),
  });
  const journal = o.journal ?? productionJournalPath();
  const me = thisOperator(journal, new Date());
  try {
    // The target as pre-flight resolved it on both hosts: the exact Debian version to install.
    const { items, targetVersion } = await preflight(inv, executor, me, o.takeOver);
    const run = { ...inv, targetVersion };
    process.stderr.write(`pre-flight (${inv.file}):\n${renderChecklist(items)}`);
    const failed = items.filter((i) => i.status === "fail");
    if (failed.length > 0) {
      throw new EnvironmentError(
        `pre-flight failed (${failed.map((f) => f.check).join("; ")}): nothing changed`,
      );
    }
    if (o.dryRun) {
      process.stdout.write(renderDryRun(run));
      return { kind: "printed", code: 0 };
    }
    const question = `switch ${inv.primary} → ${inv.standby} and upgrade both to ${targetVersion}?`;
    if (!(await o.confirm(question))) {
      process.stderr.write("run: nothing changed\n");
      return { kind: "printed", code: 3 };
    }
    return { kind: "report", report: await execute(run, executor, me, o.takeOver, null) };
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

function lockSend(inv: Inventory, node: string, command: HostCommand): HostSend {
  return { node, command, deadlineMs: inv.timeouts.command, what: "run lock" };
}

/** A host's run lock is ours to take: free, or its holder is gone. */
async function lockChecks(
  inv: Inventory,
  x: SshExecutor,
  me: LockHolder,
  takeOver: string | null,
): Promise<CheckItem[]> {
  const seen = await readHostLocks({
    run: x.connections.run,
    hosts: inv.cluster.nodes,
    deadlineMs: inv.timeouts.command,
  });
  return seen.map(({ node, seen }): CheckItem => {
    const check = `${node} run lock free`;
    if (seen.free) return { status: "ok", check, detail: "no run holds the pair" };
    const h = seen.holder;
    if (holderGone(h, me, takeOver))
      return { status: "ok", check, detail: `held by ${holderName(h)}, gone: taken over` };
    return { status: "fail", check, detail: heldBy(h) };
  });
}

async function preflight(
  inv: Inventory,
  x: SshExecutor,
  me: LockHolder,
  takeOver: string | null,
): Promise<{ items: CheckItem[]; targetVersion: string }> {
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
  if (reach.some((r) => r.status === "fail"))
    return { items: reach, targetVersion: inv.targetVersion };
  const host = (name: string): HostSpec => {
    const h = inv.cluster.nodes.find((n) => n.name === name);
    if (!h) throw new Error(`no node "${name}" in ${inv.file}`);
    return h;
  };
  const [p, s] = await Promise.all([
    gatherFacts(x, x.connections.run, inv, host(inv.primary)),
    gatherFacts(x, x.connections.run, inv, host(inv.standby)),
  ]);
  const target = preflightTarget(inv, p, s);
  // The link as the standby has it, on the cluster whose commands the executor builds (the
  // probe back and the rebuild both connect with it).
  const link = preflightLink(inv, p, s);
  if (link.ok) inv.cluster.standbyLink = link.link;
  const replicationTo = await probeReplicationBack(x.connections.run, inv, host(inv.primary));
  return {
    items: [
      ...reach,
      ...(await lockChecks(inv, x, me, takeOver)),
      ...judge(inv, { ...p, replicationTo }, s),
    ],
    targetVersion: target.ok ? target.version : inv.targetVersion,
  };
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
    runId: newRunId(),
    maxLagBytes: inv.maxLagBytes,
    poolers: inv.poolers,
  });
  const line = (c: CommandView) => {
    const host = inv.cluster.nodes.find((n) => n.name === c.host);
    const login = inv.ssh[c.host]?.user;
    if (!host || !login || (c.user !== "root" && c.user !== "postgres"))
      return `${c.host}> ${c.script}`;
    return `${login}@${c.host}$ ${remoteCommand(login, host, { user: c.user, script: c.sent ?? c.script })}`;
  };
  const nodes = [inv.primary, inv.standby];
  const preflight = nodes.flatMap((name) => {
    const host = inv.cluster.nodes.find((n) => n.name === name) as HostSpec;
    const looks = preflightLooks(inv, host);
    const own = (l: typeof looks.hazards, when?: string) =>
      sendView(`pre-flight: ${l.what}`, l, when);
    return [
      ...commandViews(inv.cluster, inv.timeouts, looks.calls),
      own(lockSend(inv, name, readLockCommand())),
      own(looks.hostFacts),
      own(looks.hazards, "if it runs"),
      own(looks.freeBytes),
      own(looks.packages),
      ...(looks.replicationTo ? [own(looks.replicationTo)] : []),
    ];
  });
  const out = [
    `dry run: ${verifiedPlan.title}, ${inv.primary} → ${inv.standby}, to ${inv.targetVersion}; nothing was changed`,
    "",
    "Pre-flight (read-only, taken above):",
    ...renderCommands(preflight, line),
    "",
  ];
  const me = thisOperator("JOURNAL", new Date());
  const lockViews = (take: boolean) =>
    [...nodes]
      .sort()
      .map((n) =>
        take
          ? sendView("take the run lock", lockSend(inv, n, takeLockCommand(me, null)))
          : sendView("release the run lock", lockSend(inv, n, releaseLockCommand(me.token))),
      );
  out.push("Before the first change, on both hosts:", ...renderCommands(lockViews(true), line), "");
  out.push(...renderHooks(inv.hooks), "");
  planSteps(verifiedPlan, inv.cluster, context).forEach((s, i) => {
    out.push(`${String(i + 1).padStart(2)}. ${s.id} — ${s.does}`);
    out.push(`    (next: ${s.next.join(" | ")}; on failure: ${s.onFailure})`);
    out.push(...renderCommands(s.commands, line));
  });
  for (const section of runSections(inv.cluster, inv.timeouts, nodes)) {
    out.push("", `${section.title}:`, ...renderCommands(section.commands, line));
  }
  out.push("", "At the end, on both hosts:", ...renderCommands(lockViews(false), line));
  return `${out.join("\n")}\n`;
}

async function execute(
  inv: Inventory,
  executor: SshExecutor,
  me: LockHolder,
  takeOver: string | null,
  resumeAt: { step: string; context: PlanContext } | null,
): Promise<RealRunReport> {
  const journal = new FileJournal(me.journal);
  const lock = await takeHostLocks({
    run: executor.connections.run,
    hosts: inv.cluster.nodes,
    me,
    takeOver,
    deadlineMs: inv.timeouts.command,
  });
  const interrupt = interruptible("run");
  const context = resumeAt?.context;
  const primary = context?.primary ?? inv.primary;
  const standby = context?.standby ?? inv.standby;
  process.stderr.write(`run: ${primary} → ${standby}, journal ${me.journal}\n`);
  const hooked = {
    hooks: inv.hooks,
    facts: hookFacts(
      inv,
      primary,
      standby,
      context?.targetVersion ?? inv.targetVersion,
      me.journal,
    ),
    journal: sayingHooks(journal),
    clock: systemClock,
  };
  try {
    const report = await runAgainstCluster({
      executor: withHooks(executor, hooked),
      spec: verifiedPlan,
      primary,
      standby,
      targetVersion: context?.targetVersion ?? inv.targetVersion,
      timeouts: context?.timeouts ?? inv.timeouts,
      maxLagBytes: context?.maxLagBytes ?? inv.maxLagBytes,
      poolers: context?.poolers ?? inv.poolers,
      ...(inv.cluster.standbyLink ? { standbyLink: inv.cluster.standbyLink } : {}),
      journal,
      onStep: stepProgress(toStderr("run")),
      signal: interrupt.signal,
      ...(resumeAt ? { resume: resumeAt } : {}),
    });
    const end =
      report.status === "done" ? "onDone" : report.status === "aborted" ? "onRollback" : null;
    if (end) await fireHook(hooked, end, { SWITCHOVER_STATUS: report.status });
    return report;
  } finally {
    interrupt.release();
    await lock.release();
  }
}

/** The hooks the run will fire, on this machine, with their deadlines and failure policies. */
function renderHooks(hooks: Hooks): string[] {
  const given = HOOK_NAMES.filter((n) => hooks[n]);
  if (given.length === 0)
    return ["Hooks (on this machine): none (inventory hooks: or --hook NAME=COMMAND)"];
  return [
    "Hooks (on this machine):",
    ...given.map((n) => {
      const h = hooks[n] as Hook;
      return `    ${n} (deadline ${h.deadlineMs / 1000} s, on failure: ${h.onFailure === "rollback" ? "roll back" : "go on"}): ${h.run}`;
    }),
  ];
}

function hookFacts(
  inv: Inventory,
  primary: string,
  standby: string,
  targetVersion: string,
  journal: string,
): HookFacts {
  const address = (name: string) => inv.cluster.nodes.find((n) => n.name === name)?.address ?? "";
  return {
    oldPrimary: { name: primary, address: address(primary) },
    newPrimary: { name: standby, address: address(standby) },
    vip: inv.cluster.vip.address,
    targetVersion,
    journal,
  };
}

/** The journal, saying each hook's end on stderr as it lands there. */
function sayingHooks(journal: Journal): Journal {
  return {
    entries: () => journal.entries(),
    append: (e) => {
      journal.append(e);
      if (e.kind !== "hook") return;
      process.stderr.write(`run: hook ${e.hook}: ${hookEnd(e.code)} in ${e.ms} ms\n`);
    },
  };
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
  // The resumed run's deadlines and the old primary's link are the journal's, as its plan's are.
  if (pos.context.standbyLink) inv.cluster.standbyLink = pos.context.standbyLink;
  const executor = await sshExecutor(inv, {
    acceptNewHostKeys: o.acceptNewHostKeys,
    passphrase: passphraseSource(),
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
    const me = thisOperator(path, new Date());
    const report = await execute(inv, executor, me, o.takeOver, {
      step: r.resumeAt,
      context: pos.context,
    });
    return { kind: "report", report };
  } finally {
    executor.close();
  }
}
