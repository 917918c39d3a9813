import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { toStderr } from "../core/progress.ts";
import { DEFAULT_FROM, DEFAULT_TO } from "../lab/versions.ts";
import { renderCompareHtml } from "../verify/compare-html.ts";
import { type FaultRehearsalReport, rehearseWithFaults } from "../verify/fault-rehearsal.ts";
import { describeOutage, seconds } from "../verify/outage.ts";
import { DIRECT_SHARE } from "../verify/rehearsal.ts";
import { intOption, parse } from "./args.ts";
import { interruptible } from "./interrupt.ts";

export const compareHelp = `switchover compare — the same real faults on both plans, side by side

Usage: switchover compare --faults N [--seed S] [--rate 200] [--html FILE] [--json]

Runs \`rehearse --faults N --seed S\` on the verified plan, then on the seed plan (the classic
runbook): the same fault for the same seed, each case on a fresh lab at ${DEFAULT_FROM}. Prints
both side by side and writes an HTML report with each case's timelines (per node: role, VIP,
version; the client's writes and the gaps between them; when the fault struck).

Options:
  --faults N   cases per plan (default 4)
  --seed S     the first case's seed (default 1)
  --rate N     client writes per second (default 200; a tenth of them through the old
               primary's own address, as rehearse --direct 10)
  --html FILE  where the HTML report goes (default: a new file under the temp directory)
  --json       {"verified": …, "seed": …} on stdout, each as \`rehearse --faults --json\`
Exit: 0 when the verified plan violated nothing (whatever the runbook did), 1 when it did,
2 unknown, 3 usage or environment error, 130 interrupted.`;

export async function runCompare(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    faults: { type: "string" },
    seed: { type: "string" },
    rate: { type: "string" },
    html: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${compareHelp}\n`);
    return 0;
  }
  const faults = intOption(values.faults, "faults", 4, 1);
  const seed = intOption(values.seed, "seed", 1);
  const rate = intOption(values.rate, "rate", 200, 1);
  const interrupt = interruptible("compare");
  try {
    const reports: FaultRehearsalReport[] = [];
    for (const plan of ["verified", "seed"] as const) {
      if (interrupt.signal.aborted) break;
      reports.push(
        await rehearseWithFaults({
          plan,
          faults,
          seed,
          from: DEFAULT_FROM,
          to: DEFAULT_TO,
          rate,
          directShare: DIRECT_SHARE,
          keep: false,
          signal: interrupt.signal,
          progress: toStderr(`compare ${plan}`),
        }),
      );
    }
    const html = resolve(values.html ?? join(tmpdir(), "pg-switchover", `compare-${seed}.html`));
    mkdirSync(dirname(html), { recursive: true });
    writeFileSync(html, renderCompareHtml(reports));
    process.stderr.write(`compare: HTML report ${html}\n`);
    const [verified, runbook] = reports;
    process.stdout.write(
      values.json
        ? `${JSON.stringify({ verified, seed: runbook }, null, 2)}\n`
        : renderSideBySide(reports),
    );
    if (interrupt.signal.aborted) return 130;
    if (!verified) return 2;
    return verified.violations > 0 ? 1 : verified.unknown > 0 ? 2 : 0;
  } finally {
    interrupt.release();
  }
}

/** One line per seed: the fault, then each plan's outcome, verdict and outage. */
export function renderSideBySide(reports: FaultRehearsalReport[]): string {
  const seeds = reports[0]?.cases.map((c) => c.seed) ?? [];
  const head = ["seed", "fault", ...reports.map((r) => r.plan)];
  const rows = seeds.map((seed) => {
    const cells = reports.map((r) => {
      const c = r.cases.find((x) => x.seed === seed);
      if (!c) return "not run";
      const bad = c.violations.map((v) => v.kind).join("+");
      const outage = describeOutage({ ms: c.outageMs, resumed: c.writesResumed }, seconds);
      return `${c.status} ${c.verdict}${bad ? ` (${bad})` : ""}, outage ${outage}`;
    });
    const fault = reports[0]?.cases.find((c) => c.seed === seed)?.description ?? "";
    return [String(seed), fault, ...cells];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const totals = reports.map(
    (r) =>
      `${r.plan}: ${r.violations}/${r.runs} violated (lost write ${r.byKind.lostWrite}, split-brain ${r.byKind.splitBrain}, stuck ${r.byKind.stuck})`,
  );
  return `${[line(head), ...rows.map(line), "", ...totals].join("\n")}\n`;
}
