import { existsSync } from "node:fs";
import { UsageError } from "../core/errors.ts";
import { hookEnd } from "../core/hooks.ts";
import { leftToDo } from "../plan/context.ts";
import { type JournalEntry, readJournal, stepsFromJournal } from "../plan/journal.ts";
import { parse } from "./args.ts";
import { ms } from "./report.ts";

export const reportHelp = `switchover report — what a run did, from its journal

Usage: switchover report JOURNAL [--json]

Renders a run's journal (JSON lines, written as the run goes): the pair and target, each step
with its time, each failed or unknown command, resumptions, and how the run ended, or where it
stopped and what is left to do. Reads the file only: nothing connects.

Exit: 0 the run ended done, 4 it rolled back or stopped safely, 2 it did not end (resume it),
3 usage (no such file, not a journal).`;

export async function runReportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: "boolean" } }, true);
  if (values.help) {
    process.stdout.write(`${reportHelp}\n`);
    return 0;
  }
  const [path, ...extra] = positionals;
  if (!path || extra.length > 0) throw new UsageError("expected one journal file");
  if (!existsSync(path)) throw new UsageError(`no journal at ${path}`);
  let entries: JournalEntry[];
  try {
    entries = readJournal(path);
  } catch (e) {
    throw new UsageError(`${path} is not a journal: ${(e as Error).message}`);
  }
  const summary = summarize(entries);
  process.stdout.write(
    values.json ? `${JSON.stringify(summary, null, 2)}\n` : renderJournal(path, summary),
  );
  // As the run itself would have exited: 0 done, 4 rolled back or stopped safely, 2 unfinished
  // (its process stopped: nothing was decided).
  return summary.status === "done" ? 0 : summary.status === "aborted" ? 4 : 2;
}

export interface JournalSummary {
  plan: string | null;
  pair: { primary: string; standby: string; targetVersion: string } | null;
  status: "done" | "aborted" | "stopped";
  /** The step it was in when its process stopped (status "stopped"). */
  lastStep: string | null;
  steps: { name: string; ms: number }[];
  resumes: { step: string; t: number }[];
  troubles: { op: string; args: unknown[]; ms: number; outcome: string }[];
  /** What calls that worked reported besides their job (--unhold's holds, per upgrade). */
  said: { op: string; args: unknown[]; said: string }[];
  /** The operator's hooks as they ran: exit status (null: killed at its deadline). */
  hooks: { hook: string; code: number | null; ms: number }[];
  leftToDo: string[];
  wallMs: number;
}

export function summarize(entries: readonly JournalEntry[]): JournalSummary {
  const start = entries.find((e) => e.kind === "start");
  const backwards = [...entries].reverse();
  const end = backwards.find((e) => e.kind === "end");
  const last = backwards.find((e) => e.kind === "transition");
  const steps = stepsFromJournal(entries);
  const open = !end && last ? [{ name: `${last.step} (unfinished)`, ms: 0 }] : [];
  const ts = entries.map((e) => e.t);
  const context = end?.context ?? last?.context;
  return {
    plan: start?.plan ?? null,
    pair: start
      ? {
          primary: start.input.primary,
          standby: start.input.standby,
          targetVersion: start.input.targetVersion,
        }
      : null,
    status: end?.status ?? "stopped",
    lastStep: end ? null : (last?.step ?? null),
    steps: [...steps, ...open],
    resumes: entries.flatMap((e) => (e.kind === "resume" ? [{ step: e.step, t: e.t }] : [])),
    troubles: entries.flatMap((e) =>
      e.kind === "call" && e.ok !== true
        ? [
            {
              op: e.op,
              args: e.args,
              ms: e.ms,
              outcome: e.ok === null ? `unknown: ${e.reason}` : `failed: ${e.reason}`,
            },
          ]
        : [],
    ),
    said: entries.flatMap((e) =>
      e.kind === "call" && e.said ? [{ op: e.op, args: e.args, said: e.said }] : [],
    ),
    hooks: entries.flatMap((e) =>
      e.kind === "hook" ? [{ hook: e.hook, code: e.code, ms: e.ms }] : [],
    ),
    leftToDo:
      end?.status === "done" || !context
        ? []
        : end
          ? leftToDo(context)
          : [
              `the run stopped in ${last?.step}: \`switchover run --inventory FILE --resume JOURNAL\``,
            ],
    wallMs: ts.length > 1 ? Math.max(...ts) - Math.min(...ts) : 0,
  };
}

function renderJournal(path: string, s: JournalSummary): string {
  const pair = s.pair
    ? `${s.pair.primary} → ${s.pair.standby}, to ${s.pair.targetVersion}`
    : "no start entry";
  const lines = [
    `${path}: plan ${s.plan ?? "?"}, ${pair}: ${s.status}${s.lastStep ? ` in ${s.lastStep}` : ""} (${ms(s.wallMs)} from first to last entry)`,
    "",
    "steps:",
  ];
  const width = Math.max(...s.steps.map((x) => x.name.length), 4);
  for (const x of s.steps) lines.push(`  ${x.name.padEnd(width)} ${ms(x.ms).padStart(9)}`);
  for (const r of s.resumes) lines.push("", `resumed at ${r.step}`);
  if (s.troubles.length > 0) {
    lines.push("", "commands that failed or whose outcome is unknown:");
    for (const t of s.troubles)
      lines.push(
        `  ${t.op}(${t.args.map((a) => JSON.stringify(a)).join(", ")}) ${ms(t.ms)}: ${t.outcome}`,
      );
  }
  if (s.said.length > 0) {
    lines.push("", "what commands reported:");
    for (const x of s.said)
      lines.push(`  ${x.op}(${x.args.map((a) => JSON.stringify(a)).join(", ")}): ${x.said}`);
  }
  if (s.hooks.length > 0) {
    lines.push("", "hooks:");
    for (const h of s.hooks) lines.push(`  ${h.hook} ${ms(h.ms)}: ${hookEnd(h.code)}`);
  }
  if (s.leftToDo.length > 0) lines.push("", "left to do:", ...s.leftToDo.map((l) => `  - ${l}`));
  return `${lines.join("\n")}\n`;
}
