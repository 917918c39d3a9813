import { UsageError } from "../core/errors.ts";
import type { PlanName } from "../plan/plans.ts";
import type { PlanSpec } from "../plan/spec.ts";
import type { HostKind } from "../sim/model.ts";
import type { CheckKind } from "../verify/checkers/verdict.ts";
import { type SimulateReport, simulate } from "../verify/property-run.ts";
import { CLUSTER_FAULTS } from "../verify/sim-faults.ts";
import { choice, intOption, parse, printHelp } from "./args.ts";
import { progressLine } from "./progress-line.ts";

export const simulateHelp = `switchover simulate — run the plan against the simulator with injected faults

Usage: switchover simulate [--runs N] [--seed S] [--plan verified|seed] [--host debian|pg_ctl]
                           [--path P] [--json]

Each run is one simulated switchover of a two-node pair while clients write through the VIP and
through the primary's own address, with faults drawn from the seed: a node crashing or
freezing, its host rebooting, a partition, a command failing, hanging or losing its reply, slow
replication, the operator's process dying and the run resumed from its journal. Each strikes at
a fraction of its step's expected duration (or at one of its commands), most of them in the
critical window: from the VIP going down until a write through it is verified again, and the
rejoin decision. Some outlast the plan's retries. Every command's latency is drawn from the seed
too. The hosts are stock Debian by default: a package upgrade or a boot starts every cluster
whose start.conf is not manual. Every run is judged by the checkers (lost acknowledged writes,
split-brain, termination, and liveness: a run in which no fault landed must end done). A
violation is shrunk to a small counterexample that replays with the printed --seed and --path.
The report says where the faults landed (--json: "coverage", scenarios struck per step and kind).

Options:
  --runs N      scenarios to run (default 1000)
  --seed S      seed of the scenarios (default: random, printed)
  --plan P      verified (default) or seed (the classic runbook, for comparison)
  --host H      debian (default: postgresql-common under systemd) or pg_ctl (nothing starts
                postgres but a command)
  --path P      replay the one counterexample fast-check printed for this seed
  --json        one JSON object on stdout
Exit: 0 no violation, 1 violated, 2 unknown, 3 usage error.`;

/** `variant`: a variant of --plan's spec to run instead (the tests break the plan with it). */
export async function runSimulate(argv: string[], variant?: PlanSpec): Promise<number> {
  const { values } = parse(argv, {
    runs: { type: "string" },
    seed: { type: "string" },
    plan: { type: "string" },
    host: { type: "string" },
    path: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) return printHelp(simulateHelp);
  const plan = choice<PlanName>(values.plan, "plan", ["verified", "seed"], "verified");
  const hosts = choice<HostKind>(values.host, "host", ["debian", "pg_ctl"], "debian");
  const runs = intOption(values.runs, "runs", 1000, 1);
  const seed = intOption(values.seed, "seed", Math.floor(Math.random() * 2 ** 31));
  const path = pathOption(values.path);
  const progress = progressLine(`simulate ${plan}`);
  // A replay runs the one scenario of its path, not --runs of them.
  const total = path ? "" : `/${runs}`;
  const report = await simulate({
    plan,
    hosts,
    runs,
    seed,
    ...(path ? { path } : {}),
    ...(variant ? { spec: variant } : {}),
    onProgress: (done, violations) => progress(`${done}${total} scenarios, ${violations} violated`),
  });
  progress.done();
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
  return report.violations > 0 ? 1 : report.unknown > 0 ? 2 : 0;
}

/** fast-check's path: run indices and shrink steps, colon-separated, as `replay:` prints it. */
function pathOption(value: string | undefined): string | undefined {
  if (value === undefined || /^\d+(:\d+)*$/.test(value)) return value;
  throw new UsageError(
    `--path must be the path a counterexample printed (e.g. 12:0:3), not "${value}"`,
  );
}

/** Where the faults landed, in two lines: the share struck, the share in the critical window. */
function coverageLines(r: SimulateReport): string[] {
  const c = r.coverage;
  const pct = (n: number, of: number) => `${of === 0 ? 0 : Math.round((100 * n) / of)}%`;
  // The cluster's faults: the pooler's are aimed at its own steps (a long transaction at its PAUSE).
  const pairs = c.window.flatMap((step) =>
    CLUSTER_FAULTS.map((kind) => ({ step, kind, n: c.byStep[step]?.[kind] ?? 0 })),
  );
  const least = pairs.reduce(
    (a, b) => (b.n < a.n ? b : a),
    pairs[0] ?? { step: "", kind: "", n: 0 },
  );
  return [
    `  faults landed in ${c.struck} scenarios (${pct(c.struck, r.runs)}), ${c.strikes} in all, ${pct(c.strikesInWindow, c.strikes)} of them in the critical window (${c.window[0] ?? "none"} … ${c.window.at(-1) ?? "none"}, ${c.window.length} steps)`,
    `  least struck in the window: ${least.kind} in ${least.step}, ${least.n} scenarios (--json: coverage)`,
  ];
}

function render(r: SimulateReport): string {
  const kinds = (Object.keys(r.byKind) as CheckKind[]).map((k) => `${k} ${r.byKind[k]}`).join(", ");
  const lines = [
    `plan ${r.plan}: ${r.runs} scenarios from seed ${r.seed} on ${r.hosts} hosts, ${r.scenariosPerSecond}/s`,
    `  ended: done ${r.outcomes.done}, aborted ${r.outcomes.aborted}, stuck ${r.outcomes.stuck}`,
    `  violations: ${r.violations} (${kinds}); unknown: ${r.unknown}`,
    ...coverageLines(r),
  ];
  const c = r.counterexample;
  if (c) {
    lines.push("", `counterexample (shrunk ${c.shrinks} times):`);
    for (const f of c.faults) lines.push(`  fault: ${f}`);
    for (const v of c.violations) lines.push(`  ${v.kind}: ${v.detail}`);
    lines.push("  trace:", ...c.trace.map((t) => `    ${t}`));
    lines.push(
      `  replay: switchover simulate --plan ${r.plan} --host ${r.hosts} --seed ${c.seed} --path ${c.path}`,
    );
  }
  lines.push(
    r.violations === 0 && r.unknown === 0
      ? "verdict: ok"
      : `verdict: ${r.violations > 0 ? "violated" : "unknown"}`,
  );
  return `${lines.join("\n")}\n`;
}
