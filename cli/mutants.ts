import type { HostKind } from "../sim/model.ts";
import { type MutationReport, runMutants } from "../verify/mutation-run.ts";
import { choice, intOption, parse, printHelp } from "./args.ts";
import { progressLine } from "./progress-line.ts";

export const mutantsHelp = `switchover mutants — break the verified plan every way its data allows, and check the suite notices

Usage: switchover mutants [--runs N] [--seed S] [--host debian|pg_ctl] [--only TEXT] [--json]

Generates the plan's mutants from its spec: each step skipped, each guard dropped or inverted,
each deadline removed, each failure edge sent to the rollback or to done, each fence off, the
rejoin decision forced to each method, and effects that believe what they should not (the stop
confirmed whatever pg_control says, the gate reading the start of the shutdown checkpoint
record). Each is tried with every kind of fault at the steps it is about (the mutated step and
those leading into it; a step off the fault-free path reached by a hung command first), then
with the scenarios \`simulate\` draws from the seed, until one violates a safety property
(killed). A survivor must be listed with its reason: in verify/equivalent-mutants.json when it
is equivalent for safety, or in verify/unkilled-mutants.json when it is not and the simulator
cannot kill it yet (what it lacks: a known gap in the suite's power, shown as such).

Options:
  --runs N      drawn scenarios per mutant at most, after its fault grid (default 400; a mutant
                stops at its first kill)
  --seed S      seed of the scenarios (default 1)
  --host H      debian (default) or pg_ctl
  --only TEXT   only the mutants whose id contains TEXT
  --json        one JSON object on stdout
Exit: 0 every mutant killed or explained, 1 a survivor without a reason (or a stale reason),
3 usage error.`;

export async function runMutantsCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    runs: { type: "string" },
    seed: { type: "string" },
    host: { type: "string" },
    only: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) return printHelp(mutantsHelp);
  const progress = progressLine("mutants");
  const report = await runMutants({
    runs: intOption(values.runs, "runs", 400, 1),
    seed: intOption(values.seed, "seed", 1),
    hosts: choice<HostKind>(values.host, "host", ["debian", "pg_ctl"], "debian"),
    ...(values.only ? { only: values.only } : {}),
    onMutant: (r, i, total) =>
      progress(`${i + 1}/${total} ${r.id}: ${r.killedBy ? "killed" : "survived"}`),
  });
  progress.done();
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
  return report.unexplained.length > 0 || report.stale.length > 0 ? 1 : 0;
}

function render(r: MutationReport): string {
  const width = Math.max(...r.mutants.map((m) => m.id.length), 6);
  const lines = [
    `${r.mutants.length} mutants of the verified plan, each tried with every fault at its steps, then up to ${r.runs} drawn scenarios (seed ${r.seed}, ${r.hosts} hosts)`,
    "",
  ];
  for (const m of r.mutants) {
    const verdict = m.killedBy
      ? `killed by ${m.killedBy.kind} in scenario ${m.killedBy.scenario}`
      : m.equivalent
        ? `equivalent: ${m.equivalent}`
        : m.gap
          ? `SURVIVED, known gap: ${m.gap}`
          : "SURVIVED, unexplained";
    lines.push(`${m.id.padEnd(width)}  ${verdict}`);
  }
  lines.push(
    "",
    `killed ${r.killed}, equivalent ${r.equivalent}, known gaps ${r.gaps}, unexplained ${r.unexplained.length}, stale reasons ${r.stale.length}`,
  );
  for (const id of r.unexplained)
    lines.push(
      `  ${id}: ${r.mutants.find((m) => m.id === id)?.does ?? ""}: kill it with a better scenario, or say why it is equivalent`,
    );
  for (const id of r.stale)
    lines.push(
      `  ${id} is listed as a survivor but was killed, or is no mutant now: remove its line`,
    );
  return `${lines.join("\n")}\n`;
}
