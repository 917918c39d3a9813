import { createInterface } from "node:readline/promises";
import { isTargetVersion, TARGET_VERSION_SHAPE } from "../core/debian-version.ts";
import { UsageError } from "../core/errors.ts";
import { HOOK_NAMES, type HookName, type Hooks, hookFromLine } from "../core/hooks.ts";
import { stepProgress, toStderr } from "../core/progress.ts";
import { HOST_LOCK_DIR } from "../hosts/host-lock.ts";
import { WATCHDOG_DIR } from "../hosts/watchdog.ts";
import { DEFAULT_TO } from "../lab/versions.ts";
import type { PlanName } from "../plan/plans.ts";
import { choice, parse } from "./args.ts";
import { interruptible } from "./interrupt.ts";
import { exitCode, renderReport } from "./report.ts";
import { runInventory } from "./run-inventory.ts";

export const runHelp = `switchover run — execute the plan against a real pair

Usage: switchover run --inventory FILE [--dry-run] [--yes] [--journal FILE] [--accept-new-host-keys] [--take-over HOLDER] [--hook NAME=COMMAND]... [--unhold] [--json]
       switchover run --inventory FILE --resume JOURNAL [--yes] [--take-over HOLDER] [--unhold] [--json]
       switchover run --lab [--to ${DEFAULT_TO}] [--plan verified|seed] [--yes] [--journal FILE] [--json]

--inventory runs the verified plan against the pair an inventory (YAML) describes, over SSH:
pre-flight first, as a checklist (reachability with host keys checked against known_hosts,
roles, streaming and lag, versions, the VIP, free disk, what makes a shutdown hang or a rejoin
fail); any [FAIL] stops before anything changes. --dry-run then prints every command per host,
as the SSH channel receives it, and changes nothing. --resume continues a run whose process died,
from its journal, once the cluster as it is now matches where the journal stopped.
A run holds a lock on both hosts (${HOST_LOCK_DIR}/run.lock: who, which machine and pid, since
when, which journal), checked in pre-flight and taken before the first change: a second run on
the pair, from any machine, is refused naming the holder. A holder that ran on this machine and
whose process is gone is taken over (its journal resumes); one on another machine only with
--take-over and its name, as the refusal gave it.

If this process dies (a laptop asleep, a lost SSH session) between the VIP going down and the
promotion, the outage is bounded: before the poolers are paused the run arms a watchdog on the
old primary's host (${WATCHDOG_DIR}) that, unless the run claims the promotion within
timeouts.watchdog (60 s), takes the run back there: the old primary started and unfenced, the
VIP up and announced, the poolers resumed. The claim and the take-back exclude each other on
that host, so a run that was only slow never promotes after it: its next step there is
refused, it rolls back, and --resume reports "the watchdog took this run back" (exit 4).

Hooks are commands on this machine at named moments, from the inventory's \`hooks:\` or --hook:
beforeVipDown (before the VIP leaves the old primary; a failure rolls back unless the inventory
says onFailure: continue), afterPromote (once a write through the VIP reached the new primary:
tell the applications; a failure is journaled and the run goes on), onRollback and onDone (as the
run ends). Each runs under \`sh -c\` in its own process group, killed at its deadline (default
30 s), with SWITCHOVER_HOOK, SWITCHOVER_OLD_PRIMARY[_ADDRESS], SWITCHOVER_NEW_PRIMARY[_ADDRESS],
SWITCHOVER_VIP, SWITCHOVER_TARGET_VERSION, SWITCHOVER_JOURNAL (and SWITCHOVER_MESSAGE,
SWITCHOVER_STATUS) in its environment; its exit status and output go into the journal.

--lab runs the plan against the running Docker lab (\`switchover lab up\`) through the Docker
executor, without the built-in client: write through the VIP yourself meanwhile (\`switchover lab
status\` prints its URI) and see what your application sees. The primary is the node holding the
VIP. Nothing changes before you confirm, unless --yes.

Options:
  --inventory FILE the pair, over SSH (\`switchover lab up\` writes one for the lab)
  --dry-run        pre-flight, then the commands per host; nothing changes
  --resume JOURNAL continue the run of that journal (with the same --inventory)
  --accept-new-host-keys  trust a host key seen for the first time, and add it to known_hosts
  --unhold         a package of the upgrade on hold (apt-mark hold) is unheld for its upgrade
                   and held again after it (the list kept on the host until then); without it,
                   pre-flight refuses a held package and names the command that unholds it
  --take-over HOLDER  the run lock's holder (e.g. "alice@laptop pid 4242") is gone: take it over
  --hook NAME=CMD  run CMD at NAME (beforeVipDown, afterPromote, onRollback, onDone); repeatable,
                   replaces the inventory's hook of that name
  --lab            against the Docker lab
  --to V           version to upgrade both nodes to (default ${DEFAULT_TO}): a release, resolved
                   on each node with apt-cache madison, or a full Debian version (15.20-0+deb12u1)
  --plan P         verified (default) or seed (the classic runbook)
  --yes            do not ask before the first change
  --journal FILE   where the run's journal goes (default: a new file under the temp directory)
  --json           one JSON object on stdout
Exit: 0 done, 4 rolled back or stopped safely (nothing lost, not upgraded), 1 a safety property
violated, 2 unknown, 3 usage or environment error, 130 interrupted.`;

export async function runRun(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    lab: { type: "boolean" },
    inventory: { type: "string" },
    "dry-run": { type: "boolean" },
    resume: { type: "string" },
    "accept-new-host-keys": { type: "boolean" },
    "take-over": { type: "string" },
    hook: { type: "string", multiple: true },
    unhold: { type: "boolean" },
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
  if (values.inventory !== undefined) {
    if (values.lab) throw new UsageError("--lab and --inventory: choose one");
    if (values.resume && (values["dry-run"] || values.journal))
      throw new UsageError("--resume continues its own journal: no --dry-run or --journal with it");
    const r = await runInventory({
      inventory: values.inventory,
      dryRun: values["dry-run"] ?? false,
      acceptNewHostKeys: values["accept-new-host-keys"] ?? false,
      takeOver: values["take-over"] ?? null,
      hooks: parseHookOptions(values.hook ?? []),
      unhold: values.unhold ?? false,
      confirm: (q) => (values.yes ? Promise.resolve(true) : confirm(q)),
      ...(values.journal ? { journal: values.journal } : {}),
      ...(values.resume ? { resume: values.resume } : {}),
    });
    if (r.kind === "printed") return r.code;
    process.stdout.write(
      values.json ? `${JSON.stringify(r.report, null, 2)}\n` : renderReport(r.report, false),
    );
    return exitCode(r.report);
  }
  if (values.resume || values["dry-run"] || values["take-over"] || values.hook || values.unhold)
    throw new UsageError("--resume, --dry-run, --take-over, --hook and --unhold need --inventory");
  if (!values.lab)
    throw new UsageError(
      "say where to run: --inventory FILE (a pair over SSH) or --lab (the Docker lab)",
    );
  const to = values.to ?? DEFAULT_TO;
  if (!isTargetVersion(to)) throw new UsageError(`--to: "${to}" is not ${TARGET_VERSION_SHAPE}`);
  const plan = choice<PlanName>(values.plan, "plan", ["verified", "seed"], "verified");
  // Loaded only here: a production run (--inventory) needs neither the lab nor Docker's client.
  const { labStatus } = await import("../lab/lifecycle.ts");
  const { labPair, runOnLab } = await import("../verify/rehearsal.ts");
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
      progress: toStderr("run"),
      onStep: stepProgress(toStderr("run")),
      signal: interrupt.signal,
      ...(values.journal ? { journal: values.journal } : {}),
    });
    process.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report, false),
    );
    return exitCode(report);
  } finally {
    interrupt.release();
  }
}

/** `--hook NAME=COMMAND`, each with its moment's default deadline and failure policy. */
function parseHookOptions(given: string[]): Hooks {
  const hooks: Hooks = {};
  for (const g of given) {
    const at = g.indexOf("=");
    const name = g.slice(0, Math.max(at, 0)) as HookName;
    if (at < 0 || !(HOOK_NAMES as readonly string[]).includes(name))
      throw new UsageError(
        `--hook ${g}: expected NAME=COMMAND, NAME one of ${HOOK_NAMES.join(", ")}`,
      );
    const run = g.slice(at + 1).trim();
    if (run === "") throw new UsageError(`--hook ${name}=: expected a command after the =`);
    hooks[name] = hookFromLine(name, run);
  }
  return hooks;
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
