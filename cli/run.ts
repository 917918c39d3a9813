import { createInterface } from "node:readline/promises";
import { labStatus } from "../docker/lab.ts";
import { DEFAULT_TO, parsePostgresVersion } from "../docker/versions.ts";
import type { PlanName } from "../properties/scenario.ts";
import { choice, parse, UsageError } from "./args.ts";
import { interruptible, labPair, runOnLab } from "./lab-run.ts";
import { exitCode, renderReport } from "./report.ts";

export const runHelp = `switchover run — execute the plan against a real pair

Usage: switchover run --lab [--to ${DEFAULT_TO}] [--plan verified|seed] [--yes] [--journal FILE] [--json]

--lab runs the plan against the running Docker lab (\`switchover lab up\`) through the Docker
executor, without the built-in client: write through the VIP yourself meanwhile (\`switchover lab
status\` prints its URI) and see what your application sees. The primary is the node holding the
VIP. Nothing changes before you confirm, unless --yes.

Options:
  --lab            against the Docker lab
  --to 15.N        version to upgrade both nodes to (default ${DEFAULT_TO})
  --plan P         verified (default) or seed (the classic runbook)
  --yes            do not ask before the first change
  --journal FILE   where the run's journal goes (default: a new file under the temp directory)
  --json           one JSON object on stdout
Exit: 0 ok, 1 a safety property violated, 2 unknown, 3 usage or environment error, 130 interrupted.`;

export async function runRun(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    lab: { type: "boolean" },
    to: { type: "string" },
    plan: { type: "string" },
    yes: { type: "boolean" },
    journal: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${runHelp}\n`);
    return 0;
  }
  if (!values.lab) throw new UsageError("say where to run: --lab (the Docker lab)");
  const to = values.to ?? DEFAULT_TO;
  const version = parsePostgresVersion(to);
  if (!version.ok) throw new UsageError(`--to: ${version.reason}`);
  const plan = choice<PlanName>(values.plan, "plan", ["verified", "seed"], "verified");
  const status = await labStatus();
  const { primary, standby } = labPair(status);
  if (
    !values.yes &&
    !(await confirm(`switch ${primary} → ${standby} and upgrade both to ${to}?`))
  ) {
    process.stderr.write("run: nothing changed\n");
    return 3;
  }
  const interrupt = interruptible("run");
  try {
    const report = await runOnLab(status, {
      plan,
      to,
      label: "run",
      signal: interrupt.signal,
      ...(values.journal ? { journal: values.journal } : {}),
    });
    process.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report, false),
    );
    return report.status === "interrupted" ? 130 : exitCode(report.verdict);
  } finally {
    interrupt.release();
  }
}

/** Asks on the terminal; without one, refuses (a script says --yes). */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new UsageError("not a terminal, so cannot ask: pass --yes to run without confirming");
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
