import { type Clock, sleep } from "./clock.ts";

export interface WaitOptions {
  clock: Clock;
  /** Pause between two looks (ms). */
  everyMs: number;
  /**
   * Give up after this long (ms) with `timedOut()`'s error. A plan's wait has none of its own:
   * the step's deadline ends it through `signal`.
   */
  deadlineMs?: number;
  timedOut?: () => Error;
  signal?: AbortSignal;
}

/**
 * The one way to wait: looks with `check` until it returns a value, every `everyMs`, until the
 * deadline passes or `signal` aborts (then it rejects with AbortedError).
 */
export async function waitFor<T>(check: () => Promise<T | undefined>, o: WaitOptions): Promise<T> {
  const giveUpAt =
    o.deadlineMs === undefined ? Number.POSITIVE_INFINITY : o.clock.now() + o.deadlineMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (o.clock.now() >= giveUpAt)
      throw o.timedOut?.() ?? new Error(`gave up waiting after ${o.deadlineMs} ms`);
    await sleep(o.clock, Math.min(o.everyMs, Math.max(0, giveUpAt - o.clock.now())), o.signal);
  }
}
