import type { ExecutorCall } from "../core/executor.ts";
import { productionTimeouts } from "../core/timeouts.ts";
import type { ClusterSpec, ControlMode, HostControl, HostSpec } from "../hosts/commands.ts";
import { CONTROL_MODES } from "../hosts/control.ts";
import { buildMachine } from "../plan/build.ts";
import { initialContext, newRunId, type PlanContext } from "../plan/context.ts";
import { mermaid } from "../plan/diagram.ts";
import { PLANS, type PlanName } from "../plan/plans.ts";
import { branchesOf, type PlanSpec, type StepSpec } from "../plan/spec.ts";
import { effectCalls } from "../run/effect-impls.ts";
import { choice, parse } from "./args.ts";
import {
  type CommandView,
  commandViews,
  hostLine,
  renderCommands,
  runSections,
  type SectionView,
} from "./what-runs.ts";

export const planHelp = `switchover plan — show what the switchover will do, step by step

Usage: switchover plan [--plan verified|seed] [--format text|json|mermaid] [--control MODE]

Prints each step of the plan with its deadline, where it goes on failure, and the exact shell
commands it runs on each host of a default two-node topology (node1 192.0.2.11 primary, node2
192.0.2.12 standby, VIP 192.0.2.10/24 on eth0, PostgreSQL 15 cluster 15/main in Debian's
layout, 15.18 → 15.20, a PgBouncer at 192.0.2.20:6432 pooling the database app; without a
pooler in the inventory its steps send nothing).
--control systemd (default: stock Debian, the unit postgresql@15-main), pg_ctlcluster
(postgresql-common without systemd) or pg_ctl (pg_ctl on the data directory): how the hosts
start, stop and fence the server.
--format mermaid prints the statechart as a Mermaid diagram generated from the machine.`;

/** The default topology `plan` shows commands for (documentation addresses: nothing is sent). */
export function exampleCluster(mode: ControlMode = "systemd"): ClusterSpec {
  const control: HostControl =
    mode === "pg_ctl"
      ? { mode, configFile: null }
      : { mode, cluster: { version: "15", name: "main" } };
  const host = (name: string, address: string): HostSpec => ({
    name,
    address,
    pgBin: "/usr/lib/postgresql/15/bin",
    dataDir: "/var/lib/postgresql/15/main",
    port: 5432,
    socketDir: "/var/run/postgresql",
    logFile: "/var/log/postgresql/postgresql-15-main.log",
    osUser: "postgres",
    control,
  });
  return {
    nodes: [host("node1", "192.0.2.11"), host("node2", "192.0.2.12")],
    vip: { address: "192.0.2.10", prefix: 24, device: "eth0" },
    superuser: "postgres",
    replicationUser: "replicator",
    database: "postgres",
    packages: ["postgresql-15", "postgresql-client-15"],
  };
}

/** The pooler `plan` shows the pooler steps' statements for (an inventory's `poolers:`). */
const EXAMPLE_POOLER = { host: "192.0.2.20", port: 6432, adminUser: "pgbouncer", database: "app" };

export interface StepView {
  id: string;
  does: string;
  actor: string;
  deadline: string | null;
  deadlineMs: number | null;
  retry: boolean;
  next: string[];
  onFailure: string;
  /** What the step's effect sends, call by call: the shell executor's own commands. */
  commands: CommandView[];
}

export function planSteps(spec: PlanSpec, cluster: ClusterSpec, c: PlanContext): StepView[] {
  return Object.entries(spec.steps).map(([id, s]) => ({
    id,
    does: s.does,
    actor: s.actor,
    deadline: s.deadline,
    deadlineMs: s.deadline ? c.timeouts[s.deadline] : null,
    retry: s.retry === true,
    next: branchesOf(s).map((b) => b.target),
    onFailure: s.fail,
    commands: commandViews(cluster, c.timeouts, callsOf(s, c), c.runId),
  }));
}

/** The executor calls a step's effect makes, with the step's own input (run/effect-impls.ts). */
function callsOf(s: StepSpec, c: PlanContext): ExecutorCall[] {
  return (effectCalls[s.actor] as (input: unknown) => ExecutorCall[])(s.input(c));
}

export async function runPlan(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    plan: { type: "string" },
    format: { type: "string" },
    control: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(`${planHelp}\n`);
    return 0;
  }
  const plan = choice<PlanName>(values.plan, "plan", ["verified", "seed"], "verified");
  const format = choice(values.format, "format", ["text", "json", "mermaid"] as const, "text");
  const control = choice(values.control, "control", CONTROL_MODES, "systemd");
  const spec = PLANS[plan];
  if (format === "mermaid") {
    process.stdout.write(mermaid(buildMachine(spec)));
    return 0;
  }
  const context = initialContext({
    primary: "node1",
    standby: "node2",
    targetVersion: "15.20",
    timeouts: productionTimeouts,
    runId: newRunId(),
    maxLagBytes: 16 * 1024 * 1024,
    poolers: [EXAMPLE_POOLER],
  });
  const cluster = exampleCluster(control);
  const steps = planSteps(spec, cluster, context);
  const alongside = runSections(cluster, context.timeouts, [context.primary, context.standby]);
  if (format === "json") {
    const { id, title, initial } = spec;
    process.stdout.write(
      `${JSON.stringify({ plan: id, title, initial, steps, alongside }, null, 2)}\n`,
    );
    return 0;
  }
  process.stdout.write(renderText(spec, steps, alongside));
  return 0;
}

function renderText(spec: PlanSpec, steps: StepView[], alongside: SectionView[]): string {
  const out = [
    `${spec.title}: node1 (primary) → node2, 15.18 → 15.20, starting at ${spec.initial}`,
    "Each host command runs on its host under coreutils timeout in its own process group, ended",
    "there before its deadline here; one that changes the host first waits for an earlier one to",
    "be gone (hosts/shell.ts underDeadline; `run --inventory --dry-run` prints the exact text).",
    "",
  ];
  steps.forEach((s, i) => {
    const deadline =
      s.deadlineMs === null
        ? "no deadline"
        : `deadline ${s.deadlineMs / 1000} s${s.retry ? ", retried" : ""}`;
    out.push(`${String(i + 1).padStart(2)}. ${s.id} — ${s.does}`);
    out.push(`    (${deadline}; next: ${s.next.join(" | ")}; on failure: ${s.onFailure})`);
    out.push(...renderCommands(s.commands, hostLine));
  });
  for (const section of alongside) {
    out.push("", `${section.title}:`, ...renderCommands(section.commands, hostLine));
  }
  return `${out.join("\n")}\n`;
}
