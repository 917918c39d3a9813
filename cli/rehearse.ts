import { UsageError } from "../core/errors.ts";
import { stepProgress, toStderr } from "../core/progress.ts";
import { labDown, labStatus, labUp } from "../lab/lifecycle.ts";
import { DEFAULT_HOST_KIND, HOST_KINDS } from "../lab/topology.ts";
import { checkUpgradePath, DEFAULT_FROM, DEFAULT_TO } from "../lab/versions.ts";
import type { PlanName } from "../plan/plans.ts";
import { DIRECT_SHARE, runOnLab } from "../verify/rehearsal.ts";
import { choice, intOption, parse } from "./args.ts";
import { runFaultRehearsals } from "./fault-rehearse.ts";
import { interruptible } from "./interrupt.ts";
import { exitCode, renderReport } from "./report.ts";

export const rehearseHelp = `switchover rehearse — the whole switchover against the Docker lab, with a client writing

Usage: switchover rehearse [--from ${DEFAULT_FROM}] [--to ${DEFAULT_TO}] [--rate 200] [--direct 10]
                           [--plan verified|seed] [--keep] [--journal FILE] [--executor docker|ssh]
                           [--host debian|pg_ctl] [--pooler] [--json]
       switchover rehearse --faults N [--seed S] [--plan verified|seed] [--host debian|pg_ctl] [--json]

Brings the lab up at --from (reusing a running lab that is at --from; a lab already upgraded is
recreated), starts a client writing unique ids at --rate per second (through the VIP, and --direct percent
of them through the old primary's own address, as an application with a stale connection
string does: a second primary's writes then show up as lost), runs the
plan through the Docker executor (upgrading both nodes to --to with apt-get), then checks the
real data: every acknowledged write on the final primary and on the caught-up standby, never two
primaries or two VIP holders, and an end that is what it claims. Each step is shown as it starts.

Options:
  --from 15.N      version the lab starts at (default ${DEFAULT_FROM})
  --to 15.N        version the plan upgrades to (default ${DEFAULT_TO}): the build of it each node's
                   apt-cache madison lists (refused before anything changes when none or several)
  --rate N         client writes per second (default 200)
  --direct P       percent of them sent to the old primary's own address (default 10; 0: none)
  --plan P         verified (default) or seed (the classic runbook, for comparison)
  --executor E     docker (default: docker exec) or ssh (SSH as production, with the inventory,
                   key and known_hosts \`lab up\` writes)
  --host K         the lab's hosts: debian (default: stock Debian servers, systemd, maintainer
                   scripts live) or pg_ctl (hand-built hosts); a lab of the other kind is recreated
  --pooler         the client writes through a PgBouncer host in front of the VIP (\`lab up
                   --pooler\`: Debian's pgbouncer, transaction pooling) instead of the VIP itself;
                   the --direct share still goes to the old primary's own address. The plan
                   pauses it before the VIP goes down and resumes it on the new primary
  --keep           leave the lab up afterwards (default: \`lab down\` once judged)
  --journal FILE   where the run's journal goes (default: a new file under the temp directory)
  --json           one JSON object on stdout
  --faults N       N rehearsals, each on a fresh lab with one fault drawn from its seed (a crash,
                   a container down or frozen, a partition, throttled replication, a failed
                   upgrade, a command failing or hanging), healed before the checkers look
  --seed S         the first case's seed (default 1); case i uses S+i, so a failing case
                   replays alone with --faults 1 --seed <its seed>
Exit: 0 done, 4 rolled back or stopped safely (nothing lost, not upgraded), 1 a safety property
violated, 2 unknown, 3 usage or environment error, 130 interrupted. (With --faults: by the
worst verdict, 0 ok, 1 violated, 2 unknown.)`;

export async function runRehearse(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    from: { type: "string" },
    to: { type: "string" },
    rate: { type: "string" },
    plan: { type: "string" },
    keep: { type: "boolean" },
    journal: { type: "string" },
    json: { type: "boolean" },
    faults: { type: "string" },
    seed: { type: "string" },
    executor: { type: "string" },
    direct: { type: "string" },
    host: { type: "string" },
    pooler: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${rehearseHelp}\n`);
    return 0;
  }
  const from = values.from ?? DEFAULT_FROM;
  const to = values.to ?? DEFAULT_TO;
  const path = checkUpgradePath(from, to);
  if (!path.ok) throw new UsageError(path.reason);
  const plan = choice<PlanName>(values.plan, "plan", ["verified", "seed"], "verified");
  const rate = intOption(values.rate, "rate", 200, 1);
  const direct = intOption(values.direct, "direct", Math.round(DIRECT_SHARE * 100));
  if (direct > 100) throw new UsageError(`--direct is a percentage, 0 to 100, not ${direct}`);
  const executor = choice(values.executor, "executor", ["docker", "ssh"] as const, "docker");
  const host = choice(values.host, "host", HOST_KINDS, DEFAULT_HOST_KIND);
  if (values.faults !== undefined || values.seed !== undefined) {
    if (values.pooler) throw new UsageError("--pooler does not go with --faults yet");
    const faults = intOption(values.faults, "faults", 1, 1);
    const seed = intOption(values.seed, "seed", 1);
    const keep = values.keep ?? false;
    return runFaultRehearsals(
      { plan, faults, seed, from, to, rate, directShare: direct / 100, host, keep },
      values.json ?? false,
    );
  }
  const progress = toStderr("rehearse");
  const interrupt = interruptible("rehearse");
  try {
    // A lab already switched over is spent: a rehearsal starts from --from on both nodes.
    const before = await labStatus();
    const off = before.nodes.filter((n) => n.version !== null && n.version !== from);
    const exists = before.nodes.some((n) => n.exists);
    if (off.length > 0) {
      progress(
        `the lab runs ${off.map((n) => `${n.name} ${n.version}`).join(", ")}, not ${from}: recreating it`,
      );
      await labDown(progress);
    } else if (exists && before.hostKind !== host) {
      progress(`the lab's hosts are ${before.hostKind} hosts, not ${host}: recreating it`);
      await labDown(progress);
    }
    const pooler = values.pooler ?? false;
    const status = await labUp({ from, to, host, pooler }, progress, interrupt.signal);
    const report = await runOnLab(status, {
      plan,
      to,
      rate,
      directShare: direct / 100,
      pooler,
      label: "rehearse",
      progress: toStderr("rehearse"),
      onStep: stepProgress(toStderr("rehearse")),
      signal: interrupt.signal,
      executor,
      ...(values.journal ? { journal: values.journal } : {}),
    });
    if (report.status === "interrupted" || values.keep) {
      progress(
        "the lab stays up: `switchover lab status` shows it, `switchover lab down` removes it",
      );
    } else {
      await labDown(progress);
    }
    process.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report, true),
    );
    return exitCode(report);
  } finally {
    interrupt.release();
  }
}
