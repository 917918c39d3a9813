import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exampleCluster } from "../cli/plan.ts";
import { lockPair, RunLockedError } from "../cli/run-lock.ts";

describe("the lock on a pair", () => {
  const saved = process.env.XDG_STATE_HOME;
  let state = "";
  beforeEach(() => {
    state = mkdtempSync(join(tmpdir(), "pgs-lock-"));
    process.env.XDG_STATE_HOME = state;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = saved;
  });

  it("a second run on the same pair is refused while the first lives, and may go once it released", () => {
    const first = lockPair(exampleCluster(), "/j/1.jsonl");
    expect(() => lockPair(exampleCluster(), "/j/2.jsonl")).toThrow(RunLockedError);
    expect(() => lockPair(exampleCluster(), "/j/2.jsonl")).toThrow(/journal \/j\/1\.jsonl/);
    first.release();
    lockPair(exampleCluster(), "/j/2.jsonl").release();
  });

  it("a lock left by a run whose process died is taken over (its journal is resumed)", () => {
    lockPair(exampleCluster(), "/j/1.jsonl");
    const dir = join(state, "pg-switchover", "locks");
    const [file] = readdirSync(dir);
    // A pid no process has: the run that held it was killed.
    writeFileSync(
      join(dir, file as string),
      JSON.stringify({ pid: 2 ** 22 + 1, journal: "/j/1.jsonl", since: "x" }),
    );
    const next = lockPair(exampleCluster(), "/j/1.jsonl");
    expect(() => lockPair(exampleCluster(), "/j/3.jsonl")).toThrow(RunLockedError);
    next.release();
  });
});
