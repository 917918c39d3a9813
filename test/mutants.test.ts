import { describe, expect, it, vi } from "vitest";
import { runMutantsCommand } from "../cli/mutants.ts";
import { listedSurvivors } from "../verify/mutation-run.ts";

/**
 * The suite's power, as `npm run mutants` shows it: every mutant of the verified plan is killed
 * by some scenario, or verify/equivalent-mutants.json says why it is equivalent for safety, or
 * verify/unkilled-mutants.json names it a known gap (not equivalent) and what the simulator
 * lacks; and no line of those files stands for a mutant that is killed or no longer generated.
 */
const RUNS = "30";

describe("the verified plan's mutants", () => {
  it(`are each killed (the fault grid at its steps, then ${RUNS} drawn scenarios) or explained`, async () => {
    const { exit, stdout } = await mutantsCommand(["--runs", RUNS, "--seed", "1"]);
    const rows = new Map(
      stdout
        .split("\n")
        .map((line) => /^(\S+:\S+)\s+(.*)$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1] as string, m[2] as string]),
    );
    const header = /^(\d+) mutants of the verified plan/.exec(stdout);
    expect(rows.size).toBe(Number(header?.[1]));
    const unexplained = [...rows].filter(
      ([, verdict]) => !/^(killed by|equivalent:|SURVIVED, known gap:)/.test(verdict),
    );
    expect(unexplained).toEqual([]);
    // Each reason in the files stands beside its mutant, which survived: not a stale one.
    const shown = (kind: "equivalent" | "gap", verdict: RegExp) =>
      Object.keys(listedSurvivors(kind))
        .map((id) => `${id}: ${rows.get(id)}`)
        .filter((row) => !verdict.test(row));
    expect(shown("equivalent", /^\S+: equivalent: /)).toEqual([]);
    expect(shown("gap", /^\S+: SURVIVED, known gap: NOT equivalent/)).toEqual([]);
    expect(stdout).toMatch(/unexplained 0, stale reasons 0\n$/);
    expect(exit).toBe(0);
  }, 900_000);
});

/** `switchover mutants` in this process: its exit code and stdout. */
async function mutantsCommand(argv: string[]) {
  const out: string[] = [];
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  try {
    const exit = await runMutantsCommand(argv);
    return { exit, stdout: out.join("") };
  } finally {
    write.mockRestore();
  }
}
