/**
 * Time is injected: domain code asks a Clock, never Date.now() or a bare setTimeout,
 * so a simulated run replays exactly. XState's own scheduler takes the same Clock.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export class AbortedError extends Error {
  constructor() {
    super("aborted");
    this.name = "AbortedError";
  }
}

/** Resolves after `ms` on `clock`, or rejects with AbortedError when `signal` aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = () => {
      clock.clearTimeout(id);
      reject(new AbortedError());
    };
    const id = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The wall clock, for runs against real hosts. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
};

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  /** The callback may start promise work: let it settle before the next timer fires. */
  settle: boolean;
}

/**
 * A discrete-event clock: timers fire in (time, insertion) order when the driver advances it,
 * never by themselves. `runUntilIdle` lets every promise chain settle between two timers, so
 * actors, the workload and the world interleave exactly as their simulated times say.
 */
export class SimClock implements Clock {
  private time = 0;
  private seq = 0;
  private heap: Timer[] = [];
  private cancelled = new Set<number>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): number {
    return this.schedule(fn, ms, true);
  }

  /**
   * A timer whose callback is plain synchronous code (a client's write): nothing of it can be
   * pending afterwards, so the driver fires the next timer at once instead of going through
   * the event loop, which is most of the cost of a simulated run.
   */
  setSyncTimeout(fn: () => void, ms: number): number {
    return this.schedule(fn, ms, false);
  }

  private schedule(fn: () => void, ms: number, settle: boolean): number {
    const timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, settle };
    this.push(timer);
    return timer.seq;
  }

  clearTimeout(id: unknown): void {
    if (typeof id === "number") this.cancelled.add(id);
  }

  /** Fires timers until none is left, `until()` holds, or simulated time passes `limit`. */
  async runUntilIdle(limit: number, until: () => boolean = () => false): Promise<void> {
    await settle();
    while (!until()) {
      const next = this.pop();
      if (!next || next.at > limit) {
        if (next) this.push(next);
        this.time = Math.max(this.time, Math.min(limit, next?.at ?? this.time));
        return;
      }
      this.time = next.at;
      next.fn();
      if (next.settle) await settle();
    }
  }

  private pop(): Timer | undefined {
    for (;;) {
      const top = this.heap[0];
      if (!top) return undefined;
      const last = this.heap.pop() as Timer;
      if (this.heap.length > 0) {
        this.heap[0] = last;
        this.siftDown(0);
      }
      if (this.cancelled.delete(top.seq)) continue;
      return top;
    }
  }

  private push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Timer, h[p] as Timer)) break;
      [h[i], h[p]] = [h[p] as Timer, h[i] as Timer];
      i = p;
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as Timer, h[m] as Timer)) m = l;
      if (r < h.length && before(h[r] as Timer, h[m] as Timer)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m] as Timer, h[i] as Timer];
      i = m;
    }
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Lets every pending promise reaction run: setImmediate comes after the microtask queue. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
