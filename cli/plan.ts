import type { StopMode } from "../core/executor.ts";
import { productionTimeouts } from "../core/timeouts.ts";
import {
  type ClusterSpec,
  type HostCommand,
  type HostSpec,
  hostCommands,
} from "../hosts/commands.ts";
import { buildMachine } from "../plan/build.ts";
import { initialContext, type PlanContext } from "../plan/context.ts";
import { mermaid } from "../plan/diagram.ts";
import { branchesOf, type PlanSpec, type StepSpec } from "../plan/spec.ts";
import { PLANS, type PlanName } from "../run/scenario.ts";
import { choice, parse } from "./args.ts";

export const planHelp = `switchover plan — show what the switchover will do, step by step

Usage: switchover plan [--plan verified|seed] [--format text|json|mermaid]

Prints each step of the plan with its deadline, where it goes on failure, and the exact shell
commands it runs on each host of a default two-node topology (node1 192.0.2.11 primary, node2
192.0.2.12 standby, VIP 192.0.2.10/24 on eth0, Debian's PostgreSQL 15 layout, 15.18 → 15.20).
--format mermaid prints the statechart as a Mermaid diagram generated from the machine.`;

/** The default topology `plan` shows commands for (documentation addresses: nothing is sent). */
export function exampleCluster(): ClusterSpec {
  const host = (name: string, address: string): HostSpec => ({
    name,
    address,
    pgBin: "/usr/lib/postgresql/15/bin",
    dataDir: "/var/lib/postgresql/15/main",
    port: 5432,
    socketDir: "/var/run/postgresql",
    logFile: "/var/log/postgresql/postgresql-15-main.log",
    osUser: "postgres",
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

export interface StepView {
  id: string;
  does: string;
  actor: string;
  deadline: string | null;
  deadlineMs: number | null;
  retry: boolean;
  next: string[];
  onFailure: string;
  commands: Array<{ host: string; user: string; script: string }>;
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
    commands: commandsOf(s, cluster, c),
  }));
}

/** The host commands a step's effect runs, with the step's own input. */
function commandsOf(s: StepSpec, cluster: ClusterSpec, c: PlanContext) {
  const input = s.input(c) as Record<string, unknown>;
  const host = (name: unknown) => cluster.nodes.find((n) => n.name === name) as HostSpec;
  const on = (name: unknown, ...cmds: HostCommand[]) =>
    cmds.map((cmd) => ({ host: String(name), ...cmd }));
  const cmd = (name: unknown) => hostCommands(cluster, host(name));
  const probe = {
    user: "client",
    script: `psql "host=${cluster.vip.address} user=${cluster.superuser} dbname=${cluster.database}" -c "INSERT INTO switchover_probe (id) VALUES ('<id>') RETURNING inet_server_addr()"`,
  };
  const n = input.node;
  switch (s.actor) {
    case "preflight":
      return [c.primary, c.standby].flatMap((x) =>
        on(x, cmd(x).status, cmd(x).replication, cmd(x).vipShow),
      );
    case "stopPostgres":
      return on(
        n,
        cmd(n).stop(
          { mode: input.mode as StopMode, fence: input.fence === true },
          c.timeouts.stop / 1000,
        ),
      );
    case "startPostgres":
      return on(n, cmd(n).start(c.timeouts.start / 1000));
    case "upgradePackages":
      return on(n, cmd(n).upgrade(c.targetVersion));
    case "checkpoint":
      return on(n, cmd(n).checkpoint);
    case "waitForStreaming":
    case "waitForReplay":
    case "observeRole":
      return on(n, cmd(n).replication);
    case "waitForCatchUp":
    case "waitSentEqualsReplay":
      return on(input.primary, cmd(input.primary).replication);
    case "vipDown":
      return on(n, cmd(n).vipDown, cmd(n).vipShow);
    case "vipUp":
      return on(n, cmd(n).vipUp(input.announce === true));
    case "confirmStopped":
      return on(n, cmd(n).status, cmd(n).controlData, cmd(n).walRecord(0, 1));
    case "promote":
      return on(n, cmd(n).promote(c.timeouts.promote / 1000));
    case "ensureServing":
      return [{ host: "client", ...probe }, ...on(n, cmd(n).status, cmd(n).vipUp(true))];
    case "notify":
      return [{ host: "operator", user: "operator", script: "<notify hook, e.g. --notify-cmd>" }];
    case "decideRejoin":
      return [
        ...on(n, cmd(n).controlData),
        ...on(input.source, cmd(input.source).latestTimelineHistory),
      ];
    case "configureStandby":
      return on(n, cmd(n).configureStandby(host(input.upstream)));
    case "rewind":
      return on(n, cmd(n).rewind(host(input.source)));
    case "baseBackup":
      return on(n, cmd(n).baseBackup(host(input.source)));
    case "removeDataDir":
      return on(n, cmd(n).removeDataDir);
    case "removeSetAside":
      return on(n, cmd(n).removeSetAside);
  }
}

export async function runPlan(argv: string[]): Promise<number> {
  const { values } = parse(argv, { plan: { type: "string" }, format: { type: "string" } });
  if (values.help) {
    process.stdout.write(`${planHelp}\n`);
    return 0;
  }
  const plan = choice<PlanName>(values.plan, "plan", ["verified", "seed"], "verified");
  const format = choice(values.format, "format", ["text", "json", "mermaid"] as const, "text");
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
    maxLagBytes: 16 * 1024 * 1024,
  });
  const steps = planSteps(spec, exampleCluster(), context);
  if (format === "json") {
    process.stdout.write(
      `${JSON.stringify({ plan: spec.id, title: spec.title, initial: spec.initial, steps }, null, 2)}\n`,
    );
    return 0;
  }
  process.stdout.write(renderText(spec, steps));
  return 0;
}

function renderText(spec: PlanSpec, steps: StepView[]): string {
  const out = [
    `${spec.title}: node1 (primary) → node2, 15.18 → 15.20, starting at ${spec.initial}`,
    "",
  ];
  steps.forEach((s, i) => {
    const deadline =
      s.deadlineMs === null
        ? "no deadline"
        : `deadline ${s.deadlineMs / 1000} s${s.retry ? ", retried" : ""}`;
    out.push(`${String(i + 1).padStart(2)}. ${s.id} — ${s.does}`);
    out.push(`    (${deadline}; next: ${s.next.join(" | ")}; on failure: ${s.onFailure})`);
    for (const c of s.commands)
      out.push(
        `    ${c.host}${c.user === "root" ? "#" : "$"} ${c.user === "postgres" ? "[postgres] " : ""}${c.script}`,
      );
  });
  return `${out.join("\n")}\n`;
}
