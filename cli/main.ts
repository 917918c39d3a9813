import { EnvironmentError, UsageError } from "./args.ts";

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

Exit codes: 0 ok, 1 a safety property violated, 2 unknown, 3 usage or environment error.`;

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
};

/** The one place errors become exit codes. */
async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write("switchover: missing command (see switchover --help)\n");
    return 3;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`switchover: unknown command "${name}" (see switchover --help)\n`);
    return 3;
  }
  try {
    return await (await load())(rest);
  } catch (e) {
    if (e instanceof UsageError || e instanceof EnvironmentError || isEnvironmentError(e)) {
      process.stderr.write(`switchover ${name}: ${(e as Error).message}\n`);
      return (e as { interrupted?: boolean }).interrupted ? 130 : 3;
    }
    // A bug, not a verdict: nothing was decided, so "unknown", with what a bug report needs.
    process.stderr.write(
      `switchover ${name}: unexpected failure: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    return 2;
  }
}

/** Errors of the lab's own kinds that mean "fix your environment", named by class. */
const ENVIRONMENT_ERRORS = [
  "DockerUnavailableError",
  "BadVersionError",
  "VersionUnavailableError",
  "BaseImageError",
  "ImageBuildError",
  "LabNotRunningError",
  "LabIncompleteError",
  "PostgresCommandError",
  "VipError",
  "ReplayPathError",
  "InventoryError",
  "HostKeyError",
  "SshConnectError",
  "RunLockedError",
];

function isEnvironmentError(e: unknown): boolean {
  return e instanceof Error && ENVIRONMENT_ERRORS.includes(e.name);
}

process.exitCode = await main(process.argv.slice(2));
