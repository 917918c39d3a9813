import { describe, expect, it } from "vitest";
import { SimClock } from "../core/clock.ts";
import { reboot } from "../sim/host.ts";
import { ARP_TTL_MS, appliedWrites, fold, type HostKind, replayedEnd } from "../sim/model.ts";
import { simulatedExecutor } from "../sim/sim-executor.ts";
import { initialWorld, World } from "../sim/world.ts";
import { roleTimeline } from "../sim/world-view.ts";
import { checkSplitBrain } from "../verify/checkers/split-brain.ts";
import { runScenario, type Scenario } from "../verify/scenario.ts";
import type { SimFault } from "../verify/sim-faults.ts";

/**
 * The simulator's PostgreSQL behaviours that the safety properties rest on (design.md, "Event
 * sourcing"). Each test drives the executor as a plan would and advances simulated time.
 */
const TOPOLOGY = { primary: "node1", standby: "node2", version: "15.18", dirty: 100 };

function lab(hosts: HostKind = "debian", pooler = false) {
  const clock = new SimClock();
  const world = new World(initialWorld({ ...TOPOLOGY, hosts, pooler }), clock);
  const exec = simulatedExecutor(world);
  /** Lets `ms` of simulated time pass, even when no timer is pending. */
  const wait = async (ms: number) => {
    clock.setTimeout(() => {}, ms);
    await clock.runUntilIdle(clock.now() + ms);
  };
  /** Runs an operation to its end: the host's timers fire, then its promise settles. */
  const run = async <T>(op: Promise<T>): Promise<T> => {
    await clock.runUntilIdle(clock.now() + 60_000);
    return op;
  };
  const applied = (name: string) => appliedWrites(world.node(name));
  /** Reboots `name`'s host, which boots `downMs` later; lets the boot and its start happen. */
  const rebooted = async (name: string, downMs: number) => {
    const host = reboot(world, name);
    clock.setTimeout(() => host.boot(false), downMs);
    await wait(downMs + 1000);
  };
  return { clock, world, exec, wait, run, applied, rebooted };
}

/** Fast stop of node1, replay on node2, promotion of node2: the switchover's core. */
async function switchedOver(l: ReturnType<typeof lab>) {
  await l.run(l.exec.stopPostgres("node1", { mode: "fast", fence: false }));
  await l.wait(50);
  await l.run(l.exec.promote("node2"));
}

describe("event sourcing", () => {
  it("the live state equals the fold of the world's log", async () => {
    const l = lab();
    l.world.write("vip", "a");
    await l.run(l.exec.checkpoint("node1"));
    l.world.write("node1", "b");
    await switchedOver(l);
    await l.run(l.exec.vipDown("node1"));
    await l.run(l.exec.vipUp("node2", false));
    await l.run(l.exec.configureStandby("node1", "node2"));
    await l.run(l.exec.startPostgres("node1"));
    await l.run(l.exec.stopPostgres("node2", { mode: "immediate", fence: false }));
    await l.run(l.exec.startPostgres("node2"));
    await l.wait(ARP_TTL_MS);
    l.world.write("vip", "c");
    await l.wait(50);
    expect(l.world.log.length).toBeGreaterThan(10);
    expect(fold(() => initialWorld(TOPOLOGY), l.world.log)).toEqual(l.world.state);
  });

  it("the same seeded scenario replays exactly", async () => {
    const cut = { step: "stopPrimary", fraction: 0.1 };
    const scenario: Scenario = {
      ...{ plan: "verified", seed: 7, ratePerSec: 40, directShare: 0.1, dirty: 800 },
      faults: [{ kind: "partition", between: "nodes", at: cut, forMs: 400 }],
    };
    const [first, second] = [await runScenario(scenario), await runScenario(scenario)];
    expect(first.trace.some((line) => line.includes("FAULT"))).toBe(true);
    expect(second.trace).toEqual(first.trace);
    expect(second.checks).toEqual(first.checks);
    expect([second.acked, second.failed, second.indeterminate]).toEqual([
      first.acked,
      first.failed,
      first.indeterminate,
    ]);
  });
});

describe("replication", () => {
  it("an acknowledged write reaches the standby only once its lag has passed", async () => {
    const l = lab();
    l.world.emit({ type: "replicationLag", receiveLagMs: 40, replayLagMs: 10 });
    expect(l.world.write("vip", "w1")).toEqual({ type: "ok", node: "node1" });
    await l.wait(45);
    expect(l.applied("node2").has("w1")).toBe(false);
    await l.wait(10);
    expect(l.applied("node2").has("w1")).toBe(true);
  });

  it("a fast stop ships the shutdown checkpoint to a connected standby", async () => {
    const l = lab();
    await l.run(l.exec.stopPostgres("node1", { mode: "fast", fence: false }));
    const control = await l.run(l.exec.controlData("node1"));
    await l.wait(10);
    const standby = await l.run(l.exec.replication("node2"));
    expect(control).toMatchObject({ ok: true, state: "shut down" });
    expect(standby).toMatchObject({ ok: true, replayLsn: control.ok && control.checkpointEndLsn });
  });

  it("with the nodes cut apart, the standby never gets the shutdown checkpoint", async () => {
    const l = lab();
    l.world.emit({ type: "link", a: "node1", b: "node2", up: false });
    await l.run(l.exec.stopPostgres("node1", { mode: "fast", fence: false }));
    l.world.emit({ type: "link", a: "node1", b: "node2", up: true });
    await l.wait(100);
    const end = l.world.node("node1").control.checkpointEndLsn;
    expect(replayedEnd(l.world.node("node2"))).toBeLessThan(end);
  });

  it("an immediate stop writes no shutdown checkpoint: pg_control stays in production", async () => {
    const l = lab();
    const before = l.world.node("node1").control.checkpointEndLsn;
    await l.run(l.exec.stopPostgres("node1", { mode: "immediate", fence: false }));
    const control = await l.run(l.exec.controlData("node1"));
    expect(control).toMatchObject({ ok: true, state: "in production", checkpointEndLsn: before });
    expect(l.world.node("node1").records.some((r) => r.kind === "shutdown")).toBe(false);
  });

  it("pg_control says shut down while the postmaster still ships WAL to the standby", async () => {
    const l = lab();
    l.world.emit({ type: "replicationLag", receiveLagMs: 200, replayLagMs: 1 });
    const stop = l.exec.stopPostgres("node1", { mode: "fast", fence: false });
    const shutDown = () => l.world.state.nodes.node1?.control.state === "shut down";
    await l.clock.runUntilIdle(60_000, shutDown);
    const status = l.exec.status("node1");
    await l.clock.runUntilIdle(l.clock.now() + 10);
    expect(await status).toMatchObject({ ok: true, running: true });
    expect(l.world.node("node1").process).toBe("stopping");
    const end = l.world.node("node1").control.checkpointEndLsn;
    expect(replayedEnd(l.world.node("node2"))).toBeLessThan(end);
    await l.run(stop);
    expect(l.world.node("node1").process).toBe("stopped");
    await l.wait(10);
    expect(replayedEnd(l.world.node("node2"))).toBe(end);
  });

  it("a second fast stop during the shutdown writes no second shutdown checkpoint", async () => {
    const l = lab();
    const first = l.exec.stopPostgres("node1", { mode: "fast", fence: false });
    l.clock.setTimeout(() => void l.exec.stopPostgres("node1", { mode: "fast", fence: false }), 2);
    await l.run(first);
    const kinds = l.world.node("node1").records.map((r) => r.kind);
    expect(kinds.filter((k) => k === "shutdown")).toHaveLength(1);
  });

  it("CHECKPOINT on a standby (a restartpoint) leaves it streaming", async () => {
    const l = lab();
    expect(await l.run(l.exec.checkpoint("node2"))).toEqual({ ok: true });
    l.world.write("vip", "after");
    await l.wait(50);
    expect(await l.run(l.exec.replication("node2"))).toMatchObject({ ok: true, streaming: true });
    expect(l.applied("node2").has("after")).toBe(true);
  });
});

describe("promotion and rejoin", () => {
  it("promotion starts timeline 2, forking where the standby's replay ended", async () => {
    const l = lab();
    l.world.write("vip", "w1");
    await l.run(l.exec.stopPostgres("node1", { mode: "fast", fence: false }));
    await l.wait(50);
    const replayEnd = replayedEnd(l.world.node("node2"));
    expect(await l.run(l.exec.promote("node2"))).toEqual({ ok: true, timeline: 2 });
    const fork = await l.run(l.exec.timelineFork("node2"));
    expect(fork).toEqual({ ok: true, timeline: 2, switchpoint: replayEnd });
    expect(await l.run(l.exec.controlData("node2"))).toMatchObject({ timeline: 2 });
  });

  it("a write through the VIP to a node in recovery fails as read-only", async () => {
    const l = lab();
    await l.run(l.exec.vipDown("node1"));
    await l.run(l.exec.vipUp("node2", true));
    const probe = await l.run(l.exec.probeWrite("vip", "p1"));
    expect(probe).toMatchObject({ ok: false, reason: expect.stringContaining("read-only") });
  });

  it("an old primary with WAL past the switch point streams only after pg_rewind, which drops its writes", async () => {
    const l = lab();
    l.world.emit({ type: "link", a: "node1", b: "node2", up: false });
    expect(l.world.write("node1", "orphan")).toMatchObject({ type: "ok" });
    await l.run(l.exec.promote("node2"));
    await l.run(l.exec.stopPostgres("node1", { mode: "immediate", fence: false }));
    l.world.emit({ type: "link", a: "node1", b: "node2", up: true });
    await l.run(l.exec.configureStandby("node1", "node2"));
    await l.run(l.exec.startPostgres("node1"));
    expect(await l.run(l.exec.replication("node1"))).toMatchObject({ ok: true, streaming: false });
    expect(l.world.canStream(l.world.node("node1"), l.world.node("node2"))).toBe(false);

    await l.run(l.exec.stopPostgres("node1", { mode: "fast", fence: false }));
    const rewind = await l.run(l.exec.rewind("node1", "node2"));
    expect(rewind.ok && rewind.bytesCopied).toBeGreaterThan(0);
    await l.run(l.exec.startPostgres("node1"));
    await l.wait(50);
    expect(await l.run(l.exec.replication("node1"))).toMatchObject({ ok: true, streaming: true });
    expect(l.applied("node1").has("orphan")).toBe(false);
  });

  it("a cleanly stopped old primary whose shutdown checkpoint was replayed rejoins directly", async () => {
    const l = lab();
    l.world.write("vip", "kept");
    await switchedOver(l);
    await l.run(l.exec.configureStandby("node1", "node2"));
    await l.run(l.exec.startPostgres("node1"));
    l.world.write("node2", "new");
    await l.wait(50);
    const status = await l.run(l.exec.replication("node1"));
    expect(status).toMatchObject({ ok: true, streaming: true, timeline: 2 });
    expect(l.world.log.some((e) => e.type === "copiedFrom")).toBe(false);
    expect([...l.applied("node1")].sort()).toEqual(["kept", "new"]);
  });

  it("roleTimeline reports two primaries when a standby is promoted under a running primary", async () => {
    const l = lab();
    await l.run(l.exec.promote("node2"));
    const roles = roleTimeline(initialWorld(TOPOLOGY), l.world.log);
    expect(roles.map((o) => o.primaries.sort())).toContainEqual(["node1", "node2"]);
    expect(checkSplitBrain(roles).verdict).toBe("violated");
  });
});

describe("the host: package scripts, reboots and the fence", () => {
  const UPGRADE_TO = "15.20";

  it("on stock Debian, upgrading a stopped, unfenced node starts it again, as a primary: two primaries", async () => {
    const l = lab("debian");
    await switchedOver(l);
    await l.run(l.exec.upgradePackages("node1", UPGRADE_TO));
    expect(l.world.node("node1")).toMatchObject({
      process: "running",
      inRecovery: false,
      runningVersion: UPGRADE_TO,
    });
    expect(l.world.write("node1", "orphan")).toEqual({ type: "ok", node: "node1" });
    const roles = roleTimeline(initialWorld(TOPOLOGY), l.world.log);
    expect(checkSplitBrain(roles).verdict).toBe("violated");
  });

  it("on stock Debian, a fenced node stays down through its upgrade, and a start unfences it", async () => {
    const l = lab("debian");
    await l.run(l.exec.stopPostgres("node1", { mode: "fast", fence: true }));
    await l.run(l.exec.upgradePackages("node1", UPGRADE_TO));
    expect(l.world.node("node1")).toMatchObject({
      process: "stopped",
      fenced: true,
      installed: UPGRADE_TO,
    });
    await l.run(l.exec.startPostgres("node1"));
    expect(l.world.node("node1")).toMatchObject({ process: "running", fenced: false });
  });

  it("on stock Debian, the package scripts start a node configured as a standby as a standby", async () => {
    const l = lab("debian");
    await switchedOver(l);
    await l.run(l.exec.configureStandby("node1", "node2"));
    await l.run(l.exec.upgradePackages("node1", UPGRADE_TO));
    await l.wait(50);
    expect(await l.run(l.exec.replication("node1"))).toMatchObject({
      ok: true,
      inRecovery: true,
      streaming: true,
      timeline: 2,
    });
  });

  it("on stock Debian, upgrading a running primary stops it fast (its shutdown checkpoint reaches the standby) and starts it again", async () => {
    const l = lab("debian");
    await l.run(l.exec.upgradePackages("node1", UPGRADE_TO));
    const shutdown = l.world.node("node1").records.find((r) => r.kind === "shutdown");
    expect(shutdown).toBeDefined();
    expect(l.world.node("node2").records.some((r) => r.rid === shutdown?.rid)).toBe(true);
    expect(l.world.node("node1")).toMatchObject({ process: "running", runningVersion: UPGRADE_TO });
    const by = l.world.log.flatMap((e) => ("by" in e ? [`${e.type} ${e.by}`] : []));
    expect(by).toEqual(["stopping packageScripts", "started packageScripts"]);
  });

  it("on a pg_ctl host an upgrade leaves the server as it was: stopped stays stopped, running keeps its binaries", async () => {
    const l = lab("pg_ctl");
    await l.run(l.exec.stopPostgres("node1", { mode: "fast", fence: false }));
    await l.run(l.exec.upgradePackages("node1", UPGRADE_TO));
    expect(l.world.node("node1")).toMatchObject({ process: "stopped", installed: UPGRADE_TO });
    await l.run(l.exec.upgradePackages("node2", UPGRADE_TO));
    expect(l.world.node("node2")).toMatchObject({ process: "running", runningVersion: "15.18" });
  });

  it("a reboot of a stock Debian host starts its cluster again unless it is fenced", async () => {
    const l = lab("debian");
    await l.rebooted("node2", 500);
    expect(l.world.node("node2")).toMatchObject({
      hostUp: true,
      process: "running",
      inRecovery: true,
    });
    await switchedOver(l);
    await l.rebooted("node1", 500);
    expect(l.world.node("node1")).toMatchObject({ process: "running", inRecovery: false });

    const fenced = lab("debian");
    await fenced.run(fenced.exec.stopPostgres("node1", { mode: "fast", fence: true }));
    await fenced.rebooted("node1", 500);
    expect(fenced.world.node("node1")).toMatchObject({ hostUp: true, process: "stopped" });
  });

  it("a reboot of a pg_ctl host leaves its server down", async () => {
    const l = lab("pg_ctl");
    await l.rebooted("node1", 500);
    expect(l.world.node("node1")).toMatchObject({ hostUp: true, process: "stopped" });
    expect(await l.run(l.exec.controlData("node1"))).toMatchObject({ state: "shut down" });
  });

  it("a reboot stops the server cleanly and drops the VIP, which the boot does not add again", async () => {
    const l = lab("debian");
    l.world.write("vip", "before");
    const host = reboot(l.world, "node1");
    await l.wait(10);
    expect(await l.run(l.exec.status("node1"))).toMatchObject({ ok: false });
    expect(l.world.write("node1", "during")).toMatchObject({ type: "info" });
    await l.wait(500);
    host.boot(false);
    await l.wait(500);
    expect(l.world.node("node1")).toMatchObject({ process: "running", vip: false });
    expect(await l.run(l.exec.status("node1"))).toMatchObject({ ok: true, vipBound: false });
    expect(l.applied("node2").has("before")).toBe(true);
    await l.wait(ARP_TTL_MS);
    expect(l.world.write("vip", "after")).toMatchObject({ type: "fail" });
  });

  it("a command under way when its host goes down fails, and its effect stops there", async () => {
    const l = lab("debian");
    await l.run(l.exec.stopPostgres("node2", { mode: "fast", fence: false }));
    const upgrade = l.exec.upgradePackages("node2", UPGRADE_TO);
    await l.wait(200);
    const host = reboot(l.world, "node2");
    await l.wait(2000);
    expect(await upgrade).toMatchObject({ ok: false, reason: expect.stringContaining("lost") });
    host.boot(false);
    await l.wait(500);
    expect(l.world.node("node2")).toMatchObject({ installed: "15.18", process: "running" });
  });

  it("the live state equals the fold of the world's log, reboots and package scripts included", async () => {
    const l = lab("debian");
    await switchedOver(l);
    await l.run(l.exec.stopPostgres("node2", { mode: "fast", fence: true }));
    await l.run(l.exec.upgradePackages("node1", UPGRADE_TO));
    await l.rebooted("node1", 300);
    await l.rebooted("node2", 300);
    expect(l.world.log.some((e) => e.type === "hostUp")).toBe(true);
    expect(fold(() => initialWorld({ ...TOPOLOGY, hosts: "debian" }), l.world.log)).toEqual(
      l.world.state,
    );
  });
});

describe("VIP", () => {
  it("without gratuitous ARP clients reach the old holder until the ARP entry expires", async () => {
    const l = lab();
    await switchedOver(l);
    await l.run(l.exec.vipDown("node1"));
    await l.run(l.exec.vipUp("node2", false));
    expect(l.world.write("vip", "early")).toMatchObject({ type: "info" });
    await l.wait(ARP_TTL_MS);
    expect(l.world.write("vip", "late")).toEqual({ type: "ok", node: "node2" });
  });

  it("with gratuitous ARP clients reach the new holder at once", async () => {
    const l = lab();
    await switchedOver(l);
    await l.run(l.exec.vipDown("node1"));
    await l.run(l.exec.vipUp("node2", true));
    expect(l.world.write("vip", "w")).toEqual({ type: "ok", node: "node2" });
  });
});

describe("hosts that hang, callers that give up", () => {
  it("an operation on a frozen host hangs until the host thaws", async () => {
    const l = lab();
    l.world.emit({ type: "frozen", node: "node1", frozen: true });
    const stop = l.exec.stopPostgres("node1", { mode: "fast", fence: false });
    await l.wait(30_000);
    expect(await Promise.race([stop, "pending"])).toBe("pending");
    expect(l.world.node("node1").process).toBe("running");
    l.world.emit({ type: "frozen", node: "node1", frozen: false });
    expect(await l.run(stop)).toEqual({ ok: true });
    expect(l.world.node("node1").process).toBe("stopped");
  });

  it("a stop whose caller gave up still stops the node", async () => {
    const l = lab();
    l.world.emit({ type: "frozen", node: "node1", frozen: true });
    const caller = new AbortController();
    const stop = l.exec.stopPostgres(
      "node1",
      { mode: "fast", fence: false },
      { signal: caller.signal },
    );
    await l.wait(1000);
    caller.abort();
    await expect(stop).rejects.toThrow();
    l.world.emit({ type: "frozen", node: "node1", frozen: false });
    await l.wait(1000);
    expect(l.world.node("node1").process).toBe("stopped");
    expect(l.world.node("node1").control.state).toBe("shut down");
  });
});

describe("the pooler in front of the VIP", () => {
  const POOLER = { host: "pooler", port: 6432, adminUser: "postgres", database: "app" };
  /** A write through the pooler, and what it answered once it did. */
  const pooled = (l: ReturnType<typeof lab>, id: string) => {
    const seen: { outcome?: unknown } = {};
    l.world.writeThroughPooler(id, (o) => {
      seen.outcome = o;
    });
    return seen;
  };

  it("paused, it holds its clients' writes without an error; resumed, they run on whoever then has the VIP", async () => {
    const l = lab("debian", true);
    expect(await l.run(l.exec.pausePooler(POOLER))).toEqual({ ok: true });
    await l.run(l.exec.vipDown("node1"));
    const held = pooled(l, "a");
    await switchedOver(l);
    await l.run(l.exec.vipUp("node2", true));
    expect(held.outcome).toBeUndefined();
    expect(await l.run(l.exec.resumePooler(POOLER))).toEqual({ ok: true });
    expect(held.outcome).toEqual({ type: "ok", node: "node2" });
    expect(l.applied("node2").has("a")).toBe(true);
  });

  it("its server connection to a node that lost the VIP is broken: that write is indeterminate, the next one reconnects", async () => {
    const l = lab("debian", true);
    expect(pooled(l, "a").outcome).toEqual({ type: "ok", node: "node1" });
    await l.run(l.exec.vipDown("node1"));
    await switchedOver(l);
    await l.run(l.exec.vipUp("node2", true));
    expect(pooled(l, "b").outcome).toMatchObject({ type: "info" });
    expect(pooled(l, "c").outcome).toEqual({ type: "ok", node: "node2" });
  });

  it("a PAUSE waits for a transaction in flight; a restart forgets the pause and drops the held writes", async () => {
    const l = lab("debian", true);
    l.world.emit({ type: "pooler", change: { busyUntil: 500 } });
    const pause = l.exec.pausePooler(POOLER);
    await l.wait(300);
    expect(await Promise.race([pause, "pending"])).toBe("pending");
    expect(await l.run(pause)).toEqual({ ok: true });
    expect(l.clock.now()).toBeGreaterThanOrEqual(500);
    const held = pooled(l, "a");
    l.world.emit({ type: "pooler", change: { up: false, paused: false, server: null } });
    expect(held.outcome).toMatchObject({ type: "info" });
    expect(pooled(l, "b").outcome).toMatchObject({ type: "fail" });
  });

  const run = (...faults: SimFault[]) =>
    runScenario({
      plan: "verified",
      seed: 3,
      faults,
      ratePerSec: 50,
      directShare: 0,
      dirty: 800,
      pooler: true,
    });

  it("the verified plan through it, with no fault: done, and not one write failed or left unknown", async () => {
    const r = await run();
    expect(r).toMatchObject({ status: "done", verdict: "ok", failed: 0, indeterminate: 0 });
    expect(r.steps.map((s) => s.name)).toEqual(
      expect.arrayContaining(["pausePoolers", "resumePoolers"]),
    );
  });

  it("a transaction holding PAUSE past its deadline: the plan rolls back, resumes the pooler, and nothing fails", async () => {
    const r = await run({
      kind: "longTransaction",
      at: { step: "waitStandbyCaughtUp", fraction: 0 },
      forMs: 3000,
    });
    expect(r).toMatchObject({ status: "aborted", verdict: "ok", failed: 0, indeterminate: 0 });
    expect(r.trace.at(-1)).toContain("pausePoolers: deadline passed");
    expect(r.steps.map((s) => s.name)).toContain("resumePoolersOnWayBack");
  });

  it("a console out of reach at RESUME: the step tries again until it answers, and the run ends done", async () => {
    const r = await run({
      kind: "poolerUnreachable",
      at: { step: "resumePoolers", fraction: 0 },
      forMs: 3000,
    });
    expect(r).toMatchObject({ status: "done", verdict: "ok", failed: 0, indeterminate: 0 });
  });
});
