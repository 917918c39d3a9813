import { toStderr } from "../core/progress.ts";
import {
  type FaultRehearsalOptions,
  type FaultRehearsalReport,
  rehearseWithFaults,
} from "../verify/fault-rehearsal.ts";
import { describeOutage, seconds } from "../verify/outage.ts";
import { interruptible } from "./interrupt.ts";

/** `rehearse --faults N`: the rehearsals, their table (or JSON), an exit code by the worst verdict. */
export async function runFaultRehearsals(
  o: Omit<FaultRehearsalOptions, "signal" | "progress">,
  json: boolean,
): Promise<number> {
  const interrupt = interruptible("rehearse");
  try {
    const r = await rehearseWithFaults({
      ...o,
      signal: interrupt.signal,
      progress: toStderr("rehearse"),
    });
    process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : renderFaultRehearsals(r));
    if (interrupt.signal.aborted) return 130;
    return r.violations > 0 ? 1 : r.unknown > 0 || r.runs === 0 ? 2 : 0;
  } finally {
    interrupt.release();
  }
}

/** The summary table, then each failing case with the command that replays it. */
export function renderFaultRehearsals(r: FaultRehearsalReport): string {
  const rows = r.cases.map((c) => [
    String(c.seed),
    c.description,
    c.struck
      .map((s) => `${s.outcome === "struck" ? "" : `${s.outcome.split(":")[0]} `}${s.step}`)
      .join(", ") || "not reached",
    c.status,
    c.verdict,
    c.lostWrites === null ? "?" : String(c.lostWrites),
    c.splitBrain ? "yes" : "no",
    describeOutage({ ms: c.outageMs, resumed: c.writesResumed }, seconds),
  ]);
  const head = [
    "seed",
    "fault",
    "struck in",
    "outcome",
    "verdict",
    "lost",
    "split-brain",
    "outage",
  ];
  const widths = head.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const lines = [
    `plan ${r.plan}: ${r.runs} fault rehearsals from seed ${r.seed}`,
    "",
    line(head),
    ...rows.map(line),
  ];
  const kinds = Object.entries(r.byKind)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  lines.push("", `violations: ${r.violations} (${kinds}); unknown: ${r.unknown}`);
  for (const c of r.cases.filter((c) => c.verdict !== "ok")) {
    lines.push("", `seed ${c.seed} (${c.verdict}): ${c.description}`);
    for (const v of c.violations) lines.push(`  ${v.kind}: ${v.detail}`);
    if (c.report.failure)
      lines.push(`  failed at ${c.report.failure.step}: ${c.report.failure.reason}`);
    lines.push(`  replay: switchover rehearse --plan ${r.plan} --faults 1 --seed ${c.seed}`);
  }
  lines.push("", `verdict: ${r.violations > 0 ? "violated" : r.unknown > 0 ? "unknown" : "ok"}`);
  return `${lines.join("\n")}\n`;
}
