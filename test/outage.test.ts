import { describe, expect, it } from "vitest";
import type { ClientOp } from "../core/history.ts";
import {
  describeOutage,
  latencyDuring,
  outageDuring,
  switchoverWindow,
  writeFigures,
} from "../verify/outage.ts";

/** A write through `target`: invoked at `at`, completed `took` ms later as `type`. */
function write(n: number, at: number, took: number, type: "ok" | "fail" | "info", target = "vip") {
  const id = `w${n}`;
  const done: ClientOp =
    type === "ok"
      ? { type, id, target, t: at + took, node: "node1" }
      : { type, id, target, t: at + took, reason: "connection refused" };
  return [{ type: "invoke", id, target, t: at } satisfies ClientOp, done];
}

/** Writes every 10 ms from `from` to `to` (exclusive), each taking 2 ms. */
function steady(from: number, to: number, type: "ok" | "fail" | "info", first = from) {
  const ops: ClientOp[] = [];
  for (let t = from; t < to; t += 10) ops.push(...write(first + t, t, 2, type));
  return ops;
}

const ms = (n: number) => `${n} ms`;

describe("the write outage, from the client's history", () => {
  it("is the longest stretch between acknowledged writes when writes came back", () => {
    const ops = [
      ...steady(0, 1000, "ok"),
      ...steady(1000, 1300, "fail"),
      ...steady(1300, 2000, "ok"),
    ];
    const { outage, acked, failed } = writeFigures(ops);
    // The last acknowledged write before the failures completed at 992, the next at 1302.
    expect(outage).toEqual({ ms: 310, from: 992, to: 1302, resumed: true });
    expect([acked, failed]).toEqual([170, 30]);
    expect(describeOutage(outage, ms)).toBe("310 ms");
  });

  it("during the switchover is the longest stretch that overlaps its window, not a longer stall elsewhere", () => {
    // A 1 s stall early in the run (a package upgrade), then a 200 ms gap at the switchover.
    const ops = [
      ...steady(0, 500, "ok"),
      ...steady(500, 1500, "info"),
      ...steady(1500, 3000, "ok"),
      ...steady(3000, 3200, "fail"),
      ...steady(3200, 4000, "ok"),
    ];
    expect(writeFigures(ops).outage).toMatchObject({ ms: 1010, from: 492, to: 1502 });
    const during = outageDuring(ops, "vip", { from: 3010, to: 3150 });
    expect(during).toEqual({ ms: 210, from: 2992, to: 3202, resumed: true });
    // Writes through another target are not the VIP's.
    expect(outageDuring(ops, "node1", { from: 3010, to: 3150 }).from).toBeNull();
  });

  it("runs to the end of the client's writing when writes never resumed", () => {
    // A short gap early, then every write failing for the last 6 s of the run.
    const ops = [
      ...steady(0, 500, "ok"),
      ...steady(500, 700, "fail"),
      ...steady(700, 1000, "ok"),
      ...steady(1000, 7000, "fail"),
    ];
    const { outage } = writeFigures(ops);
    // The old figure, the largest gap between acknowledged writes, was the early 210 ms.
    expect(outage).toEqual({ ms: 6992 - 992, from: 992, to: 6992, resumed: false });
    expect(describeOutage(outage, ms)).toBe("6000 ms, writes did not resume");
  });

  it("is the whole of the client's writing when no write was acknowledged", () => {
    const { outage, latencyMs } = writeFigures(steady(100, 600, "info"));
    expect(outage).toEqual({ ms: 492, from: 100, to: 592, resumed: false });
    expect(latencyMs).toBeNull();
  });

  it("counts a slow start, from the first write to the first acknowledgement", () => {
    const ops = [...steady(0, 400, "fail"), ...steady(400, 500, "ok")];
    expect(writeFigures(ops).outage).toEqual({ ms: 402, from: 0, to: 402, resumed: true });
  });

  it("says writes did not resume when the last completed write failed", () => {
    const ops = [...steady(0, 1000, "ok"), ...write(9999, 1000, 1000, "info")];
    expect(writeFigures(ops).outage).toMatchObject({ ms: 1008, resumed: false });
  });

  it("reads only the target's writes, never the plan's probes", () => {
    const probe: ClientOp[] = [
      { type: "invoke", id: "p", target: "vip", t: 3000, probe: true },
      { type: "ok", id: "p", target: "vip", t: 3001, node: "node2", probe: true },
    ];
    const direct = [...write(1, 0, 1, "ok", "node1"), ...write(2, 5000, 1, "fail", "node1")];
    const ops = [...steady(0, 1000, "ok"), ...steady(1000, 4000, "fail"), ...probe, ...direct];
    expect(writeFigures(ops, "vip").outage).toMatchObject({ ms: 3992 - 992, resumed: false });
    expect(writeFigures(ops, "node1")).toMatchObject({ acked: 1, failed: 1 });
  });

  it("is zero for a client that wrote nothing", () => {
    expect(writeFigures([]).outage).toEqual({ ms: 0, from: null, to: null, resumed: true });
  });
});

describe("the latency of acknowledged writes", () => {
  it("gives p50, p99 and max by nearest rank, connecting included", () => {
    // 100 writes: 98 take 2 ms, one 400 ms (it waited on a paused pool), one 900 ms.
    const ops: ClientOp[] = [];
    for (let i = 0; i < 98; i++) ops.push(...write(i, i * 10, 2, "ok"));
    ops.push(...write(98, 980, 400, "ok"), ...write(99, 990, 900, "ok"));
    // A failed write's time is not a latency: it is counted as failed.
    ops.push(...write(100, 2000, 5000, "fail"));
    expect(writeFigures(ops).latencyMs).toEqual({ p50: 2, p99: 400, max: 900 });
  });
});

describe("the switchover's window and the latency in it", () => {
  const window = ["vipDown", "stop", "promote", "vipUp", "verifyWrite", "decideRejoin"];
  const steps = [
    { name: "upgradeStandby", t: 100 },
    { name: "vipDown", t: 5000 },
    { name: "stop", t: 5050 },
    { name: "promote", t: 5300 },
    { name: "vipUp", t: 5400 },
    { name: "verifyWrite", t: 5500 },
    { name: "notify", t: 5600 },
    { name: "decideRejoin", t: 5601 },
  ];

  it("runs from the VIP going down to the first step after the window", () => {
    expect(switchoverWindow(window, steps, 9000)).toEqual({ from: 5000, to: 5600 });
  });

  it("runs to the end of the run when the run never left it, and is null when never entered", () => {
    expect(switchoverWindow(window, steps.slice(0, 4), 9000)).toEqual({ from: 5000, to: 9000 });
    expect(switchoverWindow(window, steps.slice(0, 1), 9000)).toBeNull();
  });

  it("counts the writes in flight at some moment of it, even those invoked before", () => {
    const ops = [
      ...write(1, 1000, 2, "ok"), // long before
      ...write(2, 4900, 400, "ok"), // invoked before, held across the VIP going down
      ...write(3, 5200, 350, "ok"), // waited for the new primary
      ...write(4, 5580, 5, "ok"),
      ...write(5, 5700, 2, "ok"), // after
    ];
    expect(latencyDuring(ops, "vip", { from: 5000, to: 5600 })).toEqual({
      p50: 350,
      p99: 400,
      max: 400,
    });
  });
});
