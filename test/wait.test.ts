import { describe, expect, it } from "vitest";
import { AbortedError, SimClock } from "../core/clock.ts";
import { waitFor } from "../core/wait.ts";

describe("waitFor, the one way to wait", () => {
  it("returns the first value the check gives, having looked every everyMs", async () => {
    const clock = new SimClock();
    const looks: number[] = [];
    const waiting = waitFor(
      async () => {
        looks.push(clock.now());
        return looks.length === 3 ? "ready" : undefined;
      },
      { clock, everyMs: 100, deadlineMs: 1000 },
    );
    await clock.runUntilIdle(10_000);
    expect(await waiting).toBe("ready");
    expect(looks).toEqual([0, 100, 200]);
  });

  it("gives up at its deadline with the error it was given, after a last look", async () => {
    const clock = new SimClock();
    const looks: number[] = [];
    const waiting = waitFor(
      async () => {
        looks.push(clock.now());
        return undefined;
      },
      { clock, everyMs: 400, deadlineMs: 1000, timedOut: () => new Error("still not ready") },
    );
    const outcome = waiting.then(
      () => "resolved",
      (e: Error) => e.message,
    );
    await clock.runUntilIdle(10_000);
    expect(await outcome).toBe("still not ready");
    expect(looks).toEqual([0, 400, 800, 1000]);
  });

  it("without a deadline, ends only when its signal aborts", async () => {
    const clock = new SimClock();
    const stop = new AbortController();
    clock.setTimeout(() => stop.abort(), 5000);
    let looks = 0;
    const outcome = waitFor(
      async () => {
        looks++;
        return undefined;
      },
      { clock, everyMs: 1000, signal: stop.signal },
    ).catch((e: unknown) => e);
    await clock.runUntilIdle(60_000);
    expect(await outcome).toBeInstanceOf(AbortedError);
    // Looks at 0, 1000, … 4000; the abort at 5000 comes before the sixth.
    expect(looks).toBe(5);
  });
});
