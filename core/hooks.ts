/**
 * The operator's own commands at named moments of a run, on the operator's machine: what the
 * runbook leaves to a person ("inform the developers", "restart the connection pools").
 *   beforeVipDown  before the VIP leaves the old primary; a failure there may roll back (the VIP
 *                  stays, nothing was switched)
 *   afterPromote   once a write through the VIP is verified on the new primary (the plan's
 *                  notifyApplications step): too late to roll back, so it can only go on
 *   onRollback     the run ended without switching (rolled back or stopped safely)
 *   onDone         the run ended done
 */
export const HOOK_NAMES = ["beforeVipDown", "afterPromote", "onRollback", "onDone"] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface Hook {
  /** A command line for `sh -c`. */
  run: string;
  deadlineMs: number;
  /** beforeVipDown only: "rollback" (the default there) fails the step, so the plan rolls back. */
  onFailure: "continue" | "rollback";
}

export type Hooks = Partial<Record<HookName, Hook>>;

/** What a hook may do on failure, and its default. */
export function hookPolicies(name: HookName): {
  allowed: Hook["onFailure"][];
  default: Hook["onFailure"];
} {
  return name === "beforeVipDown"
    ? { allowed: ["rollback", "continue"], default: "rollback" }
    : { allowed: ["continue"], default: "continue" };
}

/** How long a hook given as a bare command line may run. */
export const DEFAULT_HOOK_DEADLINE_MS = 30_000;

/** A hook given as a command line (the inventory's short form, `--hook NAME=COMMAND`). */
export function hookFromLine(name: HookName, run: string): Hook {
  return { run, deadlineMs: DEFAULT_HOOK_DEADLINE_MS, onFailure: hookPolicies(name).default };
}

/** A hook as it ran: what the journal keeps of it. */
export interface HookRun {
  hook: HookName;
  command: string;
  /** Its exit status; null when its deadline killed it. */
  code: number | null;
  ms: number;
  stdout: string;
  stderr: string;
}

/** How a hook ended, in a few words: "ok", "exit 3", "killed at its deadline". */
export function hookEnd(code: number | null): string {
  return code === 0 ? "ok" : code === null ? "killed at its deadline" : `exit ${code}`;
}
