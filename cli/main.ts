import { EnvironmentError, UsageError } from "../core/errors.ts";
import { printHelp } from "./args.ts";

const usage = `switchover — verified rolling minor-version switchover of a two-node PostgreSQL pair

Usage: switchover <command> [options]    (switchover <command> --help for each)

Commands:
  plan       show the plan: each step, its deadline, the exact commands per host
  simulate   run the plan against the simulator with injected faults, and check it
  bench      simulated switchovers with faults per second
  lab        the Docker lab: up, status, psql, down
  rehearse   the whole switchover against the lab while a client writes, judged on the real data
  compare    the same real faults on both plans, side by side, with an HTML report of timelines
  run        execute the plan against a pair over SSH (--inventory), or the lab (--lab)
  report     render what a run's journal says happened
  mutants    break the verified plan every way its data allows; the suite must kill each one

Exit codes: 0 ok (a run: done), 1 a safety property violated, 2 unknown, 3 usage or
environment error, 4 a run rolled back or stopped safely (nothing lost, not upgraded),
130 interrupted.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  plan: async () => (await import("./plan.ts")).runPlan,
  simulate: async () => (await import("./simulate.ts")).runSimulate,
  bench: async () => (await import("./bench.ts")).runBench,
  lab: async () => (await import("./lab.ts")).runLab,
  rehearse: async () => (await import("./rehearse.ts")).runRehearse,
  compare: async () => (await import("./compare.ts")).runCompare,
  run: async () => (await import("./run.ts")).runRun,
  report: async () => (await import("./journal-report.ts")).runReportCommand,
  mutants: async () => (await import("./mutants.ts")).runMutantsCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") return printHelp(usage);
  // hasOwn: "constructor" names no command, though every object has one.
  const load = name !== undefined && Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    const what = name === undefined ? "missing command" : `unknown command "${name}"`;
    return exitCodeOf(new UsageError(`${what} (see switchover --help)`), "switchover");
  }
  try {
    return await (await load())(rest);
  } catch (e) {
    return exitCodeOf(e, `switchover ${name}`);
  }
}

/**
 * The one place errors become exit codes, by class: each layer's errors extend core/errors.ts's,
 * so a new error needs no entry here. 3 usage or environment, 130 interrupted, 2 anything else.
 */
function exitCodeOf(e: unknown, prefix: string): number {
  if (e instanceof UsageError || e instanceof EnvironmentError) {
    process.stderr.write(`${prefix}: ${e.message}\n`);
    return e instanceof EnvironmentError && e.interrupted ? 130 : 3;
  }
  // A bug, not a verdict: nothing was decided, so "unknown", with what a bug report needs.
  const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`${prefix}: unexpected failure: ${detail}\n`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
