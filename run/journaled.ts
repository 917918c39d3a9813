import type { Clock } from "../core/clock.ts";
import type { CallOptions, Executor } from "../core/executor.ts";
import type { Journal } from "../plan/journal.ts";

/** Wraps an Executor so that every call lands in the journal with its result and timing. */
export function journaled(inner: Executor, journal: Journal, clock: Clock): Executor {
  const wrapped: Record<string, unknown> = {};
  for (const op of operationNames(inner)) {
    const fn = (inner as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[op];
    if (typeof fn !== "function") continue;
    wrapped[op] = async (...args: unknown[]) => {
      const t = clock.now();
      const shown = args.filter((a) => !isOptions(a));
      try {
        const r = (await fn.apply(inner, args)) as { ok: boolean; reason?: string; said?: string };
        const reason = r.ok ? (r.said ? { said: r.said } : {}) : { reason: r.reason };
        journal.append({
          kind: "call",
          t,
          op,
          args: shown,
          ms: clock.now() - t,
          ok: r.ok,
          ...reason,
        });
        return r;
      } catch (e) {
        // Aborted (deadline) or a broken transport: the outcome is unknown.
        const reason = e instanceof Error ? e.message : String(e);
        journal.append({ kind: "call", t, op, args: shown, ms: clock.now() - t, ok: null, reason });
        throw e;
      }
    };
  }
  return wrapped as unknown as Executor;
}

function isOptions(a: unknown): a is CallOptions {
  return typeof a === "object" && a !== null && "signal" in a;
}

/** Own and class methods alike: adapters are plain objects or class instances. */
function operationNames(x: Executor): string[] {
  const names = new Set(Object.keys(x));
  for (
    let p = Object.getPrototypeOf(x);
    p && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const n of Object.getOwnPropertyNames(p)) if (n !== "constructor") names.add(n);
  }
  return [...names];
}
