import type { FaultCase, FaultRehearsalReport } from "./fault-rehearsal.ts";
import { describeOutage, seconds } from "./outage.ts";
import type { RunTimeline } from "./timeline.ts";

/**
 * The HTML report of `switchover compare`: per case, the same fault on both plans side by side,
 * each as a timeline: per node its role (primary, standby, down), whether it held the VIP, its
 * version; the client's writes per quarter second and the gaps between acknowledged writes; the
 * plan's steps and the moment the fault struck. Self-contained: inline SVG and CSS, no script.
 */
export function renderCompareHtml(plans: FaultRehearsalReport[]): string {
  const seeds = plans[0]?.cases.map((c) => c.seed) ?? [];
  const rows = seeds.map((seed) => {
    const cells = plans.map((p) => p.cases.find((c) => c.seed === seed));
    const title = cells.find((c) => c)?.description ?? "";
    return `<section class="case"><h2>seed ${seed}: ${esc(title)}</h2><div class="side">${cells
      .map((c, i) => (c ? caseCell(plans[i]?.plan ?? "", c) : "<div></div>"))
      .join("")}</div></section>`;
  });
  const summary = plans
    .map(
      (p) =>
        `<li><b>${esc(p.plan)}</b>: ${p.runs} cases, ${p.violations} violated (lost write ${p.byKind.lostWrite}, split-brain ${p.byKind.splitBrain}, stuck ${p.byKind.stuck}), ${p.unknown} unknown</li>`,
    )
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>pg-switchover: plans under faults</title>
<style>${CSS}</style></head><body><h1>The plans under the same faults</h1><ul>${summary}</ul>
<p class="legend"><span class="k primary"></span>primary <span class="k standby"></span>standby <span class="k down"></span>down
<span class="k vip"></span>holds the VIP <span class="k ok"></span>acknowledged writes <span class="k failed"></span>failed or unknown
<span class="k gap"></span>gap without an acknowledged write <span class="k fault"></span>the fault struck</p>
${rows.join("\n")}</body></html>\n`;
}

const CSS = `body{font:13px system-ui,sans-serif;margin:16px;color:#222}h1{font-size:18px}h2{font-size:14px;margin:18px 0 6px}
.side{display:grid;grid-template-columns:1fr 1fr;gap:12px}.cell{border:1px solid #ccc;border-radius:4px;padding:6px}
.cell.violated{border-color:#c00;background:#fff5f5}.head{margin-bottom:4px}.bad{color:#c00;font-weight:600}
.k{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px;vertical-align:middle}
.primary{background:#2b6cb0}.standby{background:#a0aec0}.down{background:#e53e3e}.vip{background:#d69e2e}
.ok{background:#38a169}.failed{background:#e53e3e}.gap{background:#fed7d7}.fault{background:#000}
.detail{color:#555;margin-top:4px}`;

const W = 560;
const LEFT = 48;
const LANE = 16;

function caseCell(plan: string, c: FaultCase): string {
  const r = c.report;
  const cls = c.verdict === "violated" ? "cell violated" : "cell";
  const verdict = c.verdict === "ok" ? "ok" : `<span class="bad">${c.verdict}</span>`;
  const problems = c.violations.map(
    (v) => `<div class="bad">${esc(v.kind)}: ${esc(v.detail)}</div>`,
  );
  const outage = describeOutage({ ms: c.outageMs, resumed: c.writesResumed }, seconds);
  const outageHtml = c.writesResumed ? outage : `<span class="bad">${outage}</span>`;
  return `<div class="${cls}"><div class="head"><b>${esc(plan)}</b>: ${c.status}, ${verdict}; lost ${
    c.lostWrites ?? "?"
  }, outage ${outageHtml}, ${r.acked} writes acknowledged</div>${timelineSvg(
    r.overTime,
    c.struck.filter((s) => s.outcome === "struck").map((s) => s.at - r.overTime.origin),
  )}${problems.join("")}</div>`;
}

/** Lanes: one per node (role colour, VIP stripe, version label), then the writes. */
export function timelineSvg(tl: RunTimeline, faultsAt: number[]): string {
  const end = Math.max(
    1,
    ...tl.samples.map((s) => s.t),
    ...tl.writes.map((w) => w.t),
    ...tl.steps.map((s) => s.t),
  );
  const x = (t: number) => LEFT + (Math.max(0, t) / end) * (W - LEFT - 4);
  const nodes = [...new Set(tl.samples.flatMap((s) => Object.keys(s.nodes)))].sort();
  const parts: string[] = [];
  nodes.forEach((name, i) => {
    const y = 4 + i * (LANE + 6);
    parts.push(`<text x="2" y="${y + 12}">${esc(name)}</text>`);
    let version = "";
    tl.samples.forEach((s, k) => {
      const n = s.nodes[name];
      if (!n) return;
      const to = tl.samples[k + 1]?.t ?? s.t + 200;
      const w = Math.max(0.5, x(to) - x(s.t));
      parts.push(`<rect class="${n.role}" x="${x(s.t)}" y="${y}" width="${w}" height="${LANE}"/>`);
      if (n.vip) parts.push(`<rect class="vip" x="${x(s.t)}" y="${y}" width="${w}" height="4"/>`);
      if (n.version !== version && n.version !== "?") {
        version = n.version;
        parts.push(`<text class="ver" x="${x(s.t) + 2}" y="${y + 12}">${esc(n.version)}</text>`);
      }
    });
  });
  const wy = 4 + nodes.length * (LANE + 6);
  const peak = Math.max(1, ...tl.writes.map((w) => w.ok + w.failed));
  const bw = Math.max(0.5, x(250) - x(0));
  parts.push(`<text x="2" y="${wy + 18}">writes</text>`);
  for (const g of tl.gaps) {
    parts.push(
      `<rect class="gap" x="${x(g.from)}" y="${wy}" width="${x(g.to) - x(g.from)}" height="26"/>`,
    );
  }
  for (const w of tl.writes) {
    const hOk = (w.ok / peak) * 26;
    const hFail = (w.failed / peak) * 26;
    parts.push(
      `<rect class="ok" x="${x(w.t)}" y="${wy + 26 - hOk}" width="${bw}" height="${hOk}"/>`,
    );
    if (w.failed > 0) {
      parts.push(`<rect class="failed" x="${x(w.t)}" y="${wy}" width="${bw}" height="${hFail}"/>`);
    }
  }
  const height = wy + 44;
  for (const s of tl.steps) {
    parts.push(
      `<line class="step" x1="${x(s.t)}" x2="${x(s.t)}" y1="${wy + 28}" y2="${wy + 34}"><title>${esc(s.name)}</title></line>`,
    );
  }
  for (const t of faultsAt) {
    parts.push(`<line class="fault" x1="${x(t)}" x2="${x(t)}" y1="0" y2="${wy + 28}"/>`);
  }
  parts.push(`<text x="${LEFT}" y="${height - 2}">0 s</text>`);
  parts.push(`<text x="${W - 40}" y="${height - 2}">${(end / 1000).toFixed(0)} s</text>`);
  return `<svg viewBox="0 0 ${W} ${height}" width="100%" xmlns="http://www.w3.org/2000/svg"><style>
.primary{fill:#2b6cb0}.standby{fill:#a0aec0}.down{fill:#e53e3e}.vip{fill:#d69e2e}.ok{fill:#38a169}
.failed{fill:#e53e3e}.gap{fill:#fed7d7}.fault{stroke:#000;stroke-width:2}.step{stroke:#666}
text{font:10px system-ui,sans-serif;fill:#222}.ver{fill:#fff}</style>${parts.join("")}</svg>`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
