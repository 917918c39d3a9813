import type { Verdict } from "../verify/checkers/verdict.ts";
import { describeOutage } from "../verify/outage.ts";
import type { RealRunReport } from "../verify/run-report.ts";

/**
 * A run's exit code (design.md): 1 a safety property violated, 2 unknown, 130 interrupted, else
 * by how it ended: 0 done, 4 rolled back or stopped safely (nothing lost, not upgraded).
 */
export function exitCode(r: { verdict: Verdict; status: RealRunReport["status"] }): number {
  if (r.verdict === "violated") return 1;
  if (r.verdict === "unknown") return 2;
  return r.status === "interrupted" ? 130 : r.status === "aborted" ? 4 : 0;
}

/** The report of a run against a real cluster, for a person. */
export function renderReport(r: RealRunReport, workload: boolean): string {
  const lines = [`plan ${r.plan}: ${r.status} in ${(r.planMs / 1000).toFixed(1)} s`, "", "steps:"];
  const width = Math.max(...r.steps.map((s) => s.name.length), 4);
  for (const s of r.steps) lines.push(`  ${s.name.padEnd(width)} ${ms(s.ms).padStart(9)}`);
  lines.push("");
  if (workload) {
    const via = r.through === "pooler" ? "the pooler" : "the VIP";
    lines.push(
      `writes through ${via}: ${r.acked} acknowledged, ${r.failed} failed, ${r.indeterminate} indeterminate`,
    );
    if (r.direct)
      lines.push(
        `writes through ${r.direct.node}'s own address: ${r.direct.acked} acknowledged, ` +
          `${r.direct.failed} failed (expected once it no longer serves), ${r.direct.indeterminate} indeterminate`,
      );
    const latency = (l: RealRunReport["latencyMs"]) =>
      l ? `p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, max ${ms(l.max)}` : "none acknowledged";
    const switchover = r.switchover
      ? `${latency(r.switchover.latencyMs)} (${ms(r.switchover.window.to - r.switchover.window.from)} from the VIP down to the write through it verified)`
      : "the run never took the VIP down";
    lines.push(
      `lost: ${r.lostWrites ?? "unknown"}`,
      `write outage (longest stretch without an acknowledged write through ${via}): ${describeOutage(r.outage, ms)}${outageAt(r)}`,
      `write outage during the switchover: ${r.switchover ? ms(r.switchover.outage.ms) : "none (the VIP never went down)"}`,
      `write latency through ${via} (acknowledged writes) during the switchover: ${switchover}`,
      `write latency through ${via} (acknowledged writes) during the whole run: ${latency(r.latencyMs)}`,
    );
  }
  if (r.rejoin) {
    lines.push(`old primary rejoined: ${r.rejoin.method}, ${bytes(r.rejoin.bytesCopied)} copied`);
  }
  const versions = Object.entries(r.versions).map(([n, v]) => `${n} ${v}`);
  lines.push(`versions: ${versions.join(", ") || "unknown"}; timeline ${r.timeline ?? "unknown"}`);
  lines.push("", "checks:");
  for (const c of r.checks) lines.push(`  ${c.kind.padEnd(10)} ${c.verdict.padEnd(8)} ${c.detail}`);
  if (r.failure) lines.push("", `failed at ${r.failure.step}: ${r.failure.reason}`);
  if (r.leftToDo.length > 0) lines.push("", "left to do:", ...r.leftToDo.map((l) => `  - ${l}`));
  lines.push("", `verdict: ${r.verdict}`);
  return `${lines.join("\n")}\n`;
}

/** Where the outage began: the run's time and the step then running. */
function outageAt(r: RealRunReport): string {
  const from = r.outage.from;
  if (from === null) return "";
  const step = r.overTime.steps.filter((s) => s.t <= from).at(-1)?.name;
  return `, from ${(from / 1000).toFixed(1)} s${step ? ` (during ${step})` : ""}`;
}

export function ms(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}
