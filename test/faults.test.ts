import { describe, expect, it } from "vitest";
import { PLANS } from "../plan/plans.ts";
import type { FaultRehearsalReport } from "../verify/fault-rehearsal.ts";
import { drawLabFault } from "../verify/lab-faults.ts";
import { labEnvironment } from "./support/lab-env.ts";
import { switchoverCli } from "./support/switchover-cli.ts";

/**
 * The verified plan under real faults in the lab, as a user runs it: `switchover rehearse
 * --faults 6 --seed CORPUS_SEED`, six rehearsals from a fresh lab at 15.18, each with one fault
 * (a crash, a partition, a hang and two reboots of the old primary's host among them, at
 * different steps), healed before the checkers look. The larger corpus is `switchover rehearse --faults 12 --seed 1`.
 */
const MINUTE = 60_000;
const CORPUS_SEED = 1040;
const CASES = 6;
const { skip } = await labEnvironment("fault rehearsal tests");

describe("the CI corpus", () => {
  it("covers a crash, a partition, a hang and two reboots, at five different steps", () => {
    const faults = Array.from({ length: CASES }, (_, i) =>
      drawLabFault(CORPUS_SEED + i, PLANS.verified),
    );
    const kinds = faults.map((f) => f.kind);
    expect(kinds).toEqual(expect.arrayContaining(["crash", "partition", "commandHangs"]));
    // A reboot of the old primary between its stop and the promotion, and one during its upgrade.
    const reboots = faults.filter((f) => f.kind === "reboot").map((f) => f.at.step);
    expect(reboots).toHaveLength(2);
    expect(reboots).toContain("upgradeOldPrimary");
    expect(new Set(faults.map((f) => f.at.step)).size).toBeGreaterThanOrEqual(5);
  });
});

describe.skipIf(skip)("fault rehearsals against the lab (verified plan)", () => {
  it(
    "six faults, six fresh labs: every fault struck, no violation, each run done or validly aborted",
    async () => {
      const r = await rehearse(["--faults", String(CASES), "--seed", String(CORPUS_SEED)]);
      expect(r).toMatchObject({ plan: "verified", runs: CASES, violations: 0, unknown: 0 });
      expect(r.byKind).toEqual({ lostWrite: 0, splitBrain: 0, stuck: 0, liveness: 0 });
      for (const c of r.cases) {
        expect(
          c.struck.map((s) => s.outcome),
          c.description,
        ).toContain("struck");
        expect(["done", "aborted"]).toContain(c.status);
        expect(c.verdict, c.description).toBe("ok");
        expect(c.lostWrites).toBe(0);
        expect(c.report.acked).toBeGreaterThan(100);
      }
    },
    CASES * 4 * MINUTE,
  );
});

async function rehearse(args: string[]): Promise<FaultRehearsalReport> {
  const r = await switchoverCli(["rehearse", "--json", ...args], CASES * 4 * MINUTE);
  if (r.code !== 0) process.stderr.write(r.stderr.slice(-6000));
  expect(r.stdout, r.stderr.slice(-2000)).not.toBe("");
  const report = JSON.parse(r.stdout) as FaultRehearsalReport;
  if (r.code !== 0) process.stderr.write(`${JSON.stringify(report.cases.map((c) => c.struck))}\n`);
  expect(r.code).toBe(0);
  return report;
}
