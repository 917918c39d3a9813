import { appendFileSync, readFileSync } from "node:fs";
import type { HookRun } from "../core/hooks.ts";
import type { PlanContext, PlanInput } from "./context.ts";
import type { FinalState } from "./spec.ts";

/**
 * The journal of a run: every transition with the plan's context, every executor call with its
 * result and timing, as JSON lines. It is the audit trail, the report's source, and what a
 * resumed run restores its state from.
 */
export type JournalEntry =
  | { kind: "start"; t: number; plan: string; input: PlanInput }
  | { kind: "transition"; t: number; step: string; context: PlanContext }
  | {
      kind: "call";
      t: number;
      op: string;
      args: unknown[];
      ms: number;
      ok: boolean | null;
      reason?: string;
      /** What a call that worked reports having done besides its job (--unhold's holds). */
      said?: string;
    }
  | { kind: "resume"; t: number; step: string }
  /** An operator's hook (run/hooks.ts): what it ran, how it ended, the end of its output. */
  | ({ kind: "hook"; t: number } & HookRun)
  | { kind: "end"; t: number; status: FinalState; context: PlanContext };

export interface Journal {
  append(entry: JournalEntry): void;
  entries(): JournalEntry[];
}

export class MemoryJournal implements Journal {
  private readonly list: JournalEntry[] = [];

  append(entry: JournalEntry): void {
    this.list.push(entry);
  }

  entries(): JournalEntry[] {
    return this.list;
  }
}

/** Appended synchronously, line by line, so a process that dies leaves every line it wrote. */
export class FileJournal implements Journal {
  constructor(readonly path: string) {}

  append(entry: JournalEntry): void {
    appendFileSync(this.path, `${JSON.stringify(entry)}\n`);
  }

  entries(): JournalEntry[] {
    return readJournal(this.path);
  }
}

export function readJournal(path: string): JournalEntry[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as JournalEntry);
}

export interface StepRecord {
  name: string;
  ms: number;
}

/** Each step's time from the transitions: a step lasts from its entry to the next transition. */
export function stepsFromJournal(entries: readonly JournalEntry[]): StepRecord[] {
  const steps: StepRecord[] = [];
  let current: { name: string; t: number } | null = null;
  for (const e of entries) {
    if (e.kind !== "transition" && e.kind !== "end") continue;
    if (current) steps.push({ name: current.name, ms: e.t - current.t });
    current = e.kind === "transition" ? { name: e.step, t: e.t } : null;
  }
  return steps;
}

/** Where a run stands according to its journal: its last step and context, or its end. */
export function lastPosition(
  entries: readonly JournalEntry[],
): { step: string; context: PlanContext } | { ended: FinalState; context: PlanContext } | null {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if (e?.kind === "end") return { ended: e.status, context: e.context };
    if (e?.kind === "transition") return { step: e.step, context: e.context };
  }
  return null;
}
