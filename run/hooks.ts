import { spawn } from "node:child_process";
import type { Clock } from "../core/clock.ts";
import type { Executor, NodeName, Outcome } from "../core/executor.ts";
import { type Hook, type HookName, type HookRun, type Hooks, hookEnd } from "../core/hooks.ts";
import type { Journal } from "../plan/journal.ts";

/** The run's facts, as a hook's environment has them (SWITCHOVER_*). */
export interface HookFacts {
  oldPrimary: { name: NodeName; address: string };
  newPrimary: { name: NodeName; address: string };
  vip: string;
  targetVersion: string;
  journal: string;
}

/** A hook's output kept in the journal: its end, where what went wrong is. */
const KEPT_CHARS = 4000;

export function hookEnv(name: HookName, f: HookFacts, extra: Record<string, string> = {}) {
  return {
    SWITCHOVER_HOOK: name,
    SWITCHOVER_OLD_PRIMARY: f.oldPrimary.name,
    SWITCHOVER_OLD_PRIMARY_ADDRESS: f.oldPrimary.address,
    SWITCHOVER_NEW_PRIMARY: f.newPrimary.name,
    SWITCHOVER_NEW_PRIMARY_ADDRESS: f.newPrimary.address,
    SWITCHOVER_VIP: f.vip,
    SWITCHOVER_TARGET_VERSION: f.targetVersion,
    SWITCHOVER_JOURNAL: f.journal,
    ...extra,
  };
}

/**
 * Runs a hook in its own process group; at its deadline the whole group gets SIGTERM, then
 * SIGKILL a second later, so nothing it started outlives it.
 */
export function runHook(
  name: HookName,
  hook: Hook,
  env: Record<string, string>,
  clock: Clock,
): Promise<HookRun> {
  const t = clock.now();
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", hook.run], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout = (stdout + b.toString()).slice(-KEPT_CHARS);
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-KEPT_CHARS);
    });
    let killed = false;
    const group = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {}
    };
    const timer = clock.setTimeout(() => {
      killed = true;
      group("SIGTERM");
      clock.setTimeout(() => group("SIGKILL"), 1000);
    }, hook.deadlineMs);
    const done = (code: number | null) => {
      clock.clearTimeout(timer);
      resolve({
        hook: name,
        command: hook.run,
        code: killed ? null : code,
        ms: clock.now() - t,
        stdout,
        stderr,
      });
    };
    child.on("error", (e) => {
      stderr += e.message;
      done(127);
    });
    child.on("close", (code) => done(code));
  });
}

export function hookFailure(r: HookRun): string | null {
  if (r.code === 0) return null;
  const why = r.code === null ? `${hookEnd(null)} after ${r.ms} ms` : hookEnd(r.code);
  const said = r.stderr.trim().split("\n").at(-1);
  return `hook ${r.hook} failed (${why})${said ? `: ${said}` : ""}`;
}

export interface HookedRun {
  hooks: Hooks;
  facts: HookFacts;
  journal: Journal;
  clock: Clock;
}

/** Runs the hook `name` if there is one, journaled; its failure, or null. */
export async function fireHook(
  o: HookedRun,
  name: HookName,
  extra: Record<string, string> = {},
): Promise<string | null> {
  const hook = o.hooks[name];
  if (!hook) return null;
  const r = await runHook(name, hook, hookEnv(name, o.facts, extra), o.clock);
  o.journal.append({ kind: "hook", t: o.clock.now() - r.ms, ...r });
  return hookFailure(r);
}

/**
 * The executor with the run's hooks at their moments: beforeVipDown before the first VIP down of
 * the old primary (its failure, under "rollback", is that call's failure: the VIP stays and the
 * plan takes its failure edge), afterPromote as the plan's notify.
 */
export function withHooks(inner: Executor, o: HookedRun): Executor {
  let vipDownHooked = false;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver);
      if (typeof real !== "function") return real;
      if (prop === "vipDown")
        return async (node: NodeName, ...rest: unknown[]): Promise<Outcome> => {
          if (node === o.facts.oldPrimary.name && !vipDownHooked) {
            vipDownHooked = true;
            const failed = await fireHook(o, "beforeVipDown");
            if (failed && o.hooks.beforeVipDown?.onFailure === "rollback")
              return { ok: false, reason: `${failed}: the VIP stays on ${node}` };
          }
          return real.apply(target, [node, ...rest]);
        };
      if (prop === "notify")
        return async (message: string, ...rest: unknown[]): Promise<Outcome> => {
          const failed = await fireHook(o, "afterPromote", { SWITCHOVER_MESSAGE: message });
          const told = (await real.apply(target, [message, ...rest])) as Outcome;
          return failed ? { ok: false, reason: failed } : told;
        };
      return real.bind(target);
    },
  });
}
