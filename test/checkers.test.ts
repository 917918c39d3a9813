import { describe, expect, it } from "vitest";
import type { ClusterView, NodeView, RoleObservation } from "../core/cluster-view.ts";
import type { ClientOp } from "../core/history.ts";
import { checkLiveness, type LivenessEnd } from "../verify/checkers/liveness.ts";
import { checkLostWrites } from "../verify/checkers/lost-writes.ts";
import { checkSplitBrain } from "../verify/checkers/split-brain.ts";
import { checkTermination, type RunEnd } from "../verify/checkers/termination.ts";
import { type CheckResult, guarded, overall } from "../verify/checkers/verdict.ts";

/** The checkers over hand-made histories and final cluster views. */
function nodeView(name: string, over: Partial<NodeView> = {}): NodeView {
  return {
    name,
    running: true,
    primary: false,
    version: "15.20",
    timeline: 2,
    streamingFrom: null,
    caughtUp: false,
    vip: false,
    writes: new Set(),
    ...over,
  };
}

/** A finished switchover: node2 promoted with the VIP, node1 streaming from it, caught up. */
function switchedOver(
  primary: Partial<NodeView> = {},
  standby: Partial<NodeView> = {},
): ClusterView {
  const writes = new Set(["w1", "w2"]);
  return {
    nodes: [
      nodeView("node1", { streamingFrom: "node2", caughtUp: true, writes, ...standby }),
      nodeView("node2", { primary: true, vip: true, writes, ...primary }),
    ],
  };
}

function op(type: ClientOp["type"], id: string, extra: Partial<ClientOp> = {}): ClientOp {
  return { type, id, target: "vip", t: 100, ...extra };
}

function end(status: RunEnd["status"], over: Partial<RunEnd> = {}): RunEnd {
  return {
    status,
    lastStep: "someStep",
    targetVersion: "15.20",
    refusedAtPreflight: false,
    ...over,
  };
}

const acked = [op("ok", "w1", { node: "node1" }), op("ok", "w2", { node: "node2" })];

describe("no lost write", () => {
  it("is ok when every acknowledged write is on the primary and the caught-up standby", () => {
    const r = checkLostWrites(acked, switchedOver());
    expect(r).toMatchObject({ kind: "lostWrite", verdict: "ok" });
    expect(r.detail).toContain("all 2 acknowledged writes on node2 and node1");
  });

  it("names a write missing on the primary, who acknowledged it, when and how", () => {
    const ops = [...acked, op("ok", "w3", { node: "node1", t: 1234.4, target: "node1" })];
    const r = checkLostWrites(ops, switchedOver());
    expect(r.verdict).toBe("violated");
    expect(r.detail).toContain("missing on node2: w3");
    expect(r.detail).toContain("acknowledged by node1 at 1234 ms through node1's own address");
  });

  it("does not count indeterminate or failed writes", () => {
    const ops = [...acked, op("info", "w3", { reason: "timeout" }), op("fail", "w4")];
    expect(checkLostWrites(ops, switchedOver()).verdict).toBe("ok");
  });

  it("finds a write missing on a caught-up standby", () => {
    const r = checkLostWrites(acked, switchedOver({}, { writes: new Set(["w1"]) }));
    expect(r.verdict).toBe("violated");
    expect(r.detail).toContain("missing on node1 (caught-up standby): w2");
  });

  it("does not hold a lagging standby to writes it has not replayed yet", () => {
    const lagging = { writes: new Set(["w1"]), caughtUp: false };
    expect(checkLostWrites(acked, switchedOver({}, lagging)).verdict).toBe("ok");
  });

  it("is unknown with no single primary to check against", () => {
    const noPrimary = switchedOver({ running: false, vip: false });
    expect(checkLostWrites(acked, noPrimary).verdict).toBe("unknown");
  });

  it("with nothing serving, reads the node the run left as primary, as its rows are on disk", () => {
    const nothingRuns = switchedOver({ running: false, vip: false }, { running: false });
    const r = checkLostWrites(acked, nothingRuns, "node2");
    expect(r).toMatchObject({ verdict: "ok" });
    expect(r.detail).toContain("on node2 (not running: its rows on disk)");
    const missing = switchedOver({ running: false, vip: false, writes: new Set(["w1"]) });
    expect(checkLostWrites(acked, missing, "node2").detail).toContain("missing on node2: w2");
  });
});

describe("no split-brain", () => {
  const one = (t: number, primaries: string[], vipHolders = primaries): RoleObservation => ({
    t,
    primaries,
    vipHolders,
  });

  it("is ok when one node at a time accepts writes and holds the VIP", () => {
    const r = checkSplitBrain([one(0, ["node1"]), one(50, [], []), one(80, ["node2"])]);
    expect(r).toMatchObject({ kind: "splitBrain", verdict: "ok" });
  });

  it("finds two primaries at once and says when and for how long", () => {
    const r = checkSplitBrain([
      one(0, ["node1"]),
      one(100, ["node1", "node2"]),
      one(400, ["node2"]),
    ]);
    expect(r.verdict).toBe("violated");
    expect(r.detail).toBe("node1 and node2 both accepted writes from 100 ms for 300 ms");
  });

  it("finds two primaries lasting until the end", () => {
    const r = checkSplitBrain([one(0, ["node1"]), one(100, ["node1", "node2"], ["node2"])]);
    expect(r.detail).toContain("until the end");
  });

  it("finds the VIP bound on two nodes", () => {
    const r = checkSplitBrain([one(0, ["node1"], ["node1", "node2"])]);
    expect(r.verdict).toBe("violated");
    expect(r.detail).toContain("VIP was bound on node1 and node2");
  });

  it("is unknown without any observation", () => {
    expect(checkSplitBrain([]).verdict).toBe("unknown");
  });
});

describe("termination", () => {
  it("a run that never ended is a violation naming where it hung", () => {
    const r = checkTermination(end("stuck", { lastStep: "waitStandbyReplayed" }), switchedOver());
    expect(r).toMatchObject({ kind: "stuck", verdict: "violated" });
    expect(r.detail).toContain("still in waitStandbyReplayed");
  });

  it("done is ok when the cluster is switched over on the target version", () => {
    expect(checkTermination(end("done"), switchedOver()).verdict).toBe("ok");
  });

  it.each([
    ["a node on the old version", switchedOver({}, { version: "15.18" }), "node1 is on 15.18"],
    ["the standby down", switchedOver({}, { running: false }), "node1 is not running"],
    ["the standby not streaming", switchedOver({}, { streamingFrom: null }), "not streaming"],
    ["the standby on the old timeline", switchedOver({}, { timeline: 1 }), "timeline 1"],
    ["the VIP on both nodes", switchedOver({}, { vip: true }), "the VIP is on node1, node2"],
    ["the VIP on no node", switchedOver({ vip: false }), "the VIP is on no node"],
    ["two primaries", switchedOver({}, { primary: true }), "2 running primaries"],
  ])("done with %s is a violation", (_, cluster, problem) => {
    const r = checkTermination(end("done"), cluster);
    expect(r.verdict).toBe("violated");
    expect(r.detail).toContain(problem);
  });

  it("aborted is ok with one running primary holding the VIP, whatever the standby", () => {
    const rolledBack = switchedOver({ version: "15.18" }, { running: false, version: "15.20" });
    expect(checkTermination(end("aborted"), rolledBack).verdict).toBe("ok");
  });

  it.each([
    ["no running primary", switchedOver({ running: false })],
    ["two primaries", switchedOver({}, { primary: true })],
    ["the VIP on the standby", switchedOver({ vip: false }, { vip: true })],
  ])("aborted with %s is a violation", (_, cluster) => {
    expect(checkTermination(end("aborted"), cluster).verdict).toBe("violated");
  });

  it("done or aborted with the pooler left paused is a violation; resumed, it is not", () => {
    for (const status of ["done", "aborted"] as const) {
      const paused = { ...switchedOver(), poolerPaused: true };
      const r = checkTermination(end(status), paused);
      expect(r.verdict).toBe("violated");
      expect(r.detail).toContain("the pooler is left paused");
      expect(checkTermination(end(status), { ...paused, poolerPaused: false }).verdict).toBe("ok");
    }
  });

  it("a refusal at pre-flight is ok: it changed nothing", () => {
    const r = checkTermination(end("aborted", { refusedAtPreflight: true }), { nodes: [] });
    expect(r.verdict).toBe("ok");
  });

  it("aborted with nothing serving is ok when a fault outlasted the plan's retries, not with two primaries", () => {
    const why = "a freeze of 21000 ms outlasted the plan's retry budget (20000 ms)";
    const nothing = switchedOver({ running: false, vip: false });
    const r = checkTermination(end("aborted", { outlasted: why }), nothing);
    expect(r).toMatchObject({ verdict: "ok", detail: expect.stringContaining(why) });
    const two = switchedOver({}, { primary: true });
    expect(checkTermination(end("aborted", { outlasted: why }), two).verdict).toBe("violated");
    expect(checkTermination(end("done", { outlasted: why }), nothing).verdict).toBe("violated");
  });
});

describe("liveness", () => {
  const run = (over: Partial<LivenessEnd>): LivenessEnd => ({
    status: "done",
    lastStep: "confirmStreamingAtEnd",
    failure: null,
    faultFree: true,
    ...over,
  });

  it("a run with no fault that ends done is ok", () => {
    expect(checkLiveness(run({}))).toMatchObject({ kind: "liveness", verdict: "ok" });
  });

  it("a run with no fault that gives up is a violation, with why it gave up", () => {
    const failure = { step: "confirmPrimaryStopped", reason: "node1 did not shut down cleanly" };
    const r = checkLiveness(
      run({ status: "aborted", lastStep: "verifyWriteOnOldPrimary", failure }),
    );
    expect(r.verdict).toBe("violated");
    expect(r.detail).toBe(
      "no fault landed, yet the run ended aborted after verifyWriteOnOldPrimary (confirmPrimaryStopped: node1 did not shut down cleanly)",
    );
    expect(checkLiveness(run({ status: "stuck" })).verdict).toBe("violated");
  });

  it("a run struck by a fault may give up", () => {
    expect(checkLiveness(run({ status: "aborted", faultFree: false })).verdict).toBe("ok");
  });
});

describe("verdicts", () => {
  it("a checker that throws has decided nothing: unknown, with the reason", () => {
    const r = guarded("stuck", () => {
      throw new Error("pg_controldata printed nothing");
    });
    expect(r).toEqual({
      kind: "stuck",
      verdict: "unknown",
      detail: "checker failed: pg_controldata printed nothing",
    });
  });

  it("a checker fed a view it cannot read is unknown, not a pass", () => {
    const unreadable = { nodes: [null] } as unknown as ClusterView;
    expect(checkLostWrites(acked, unreadable).verdict).toBe("unknown");
    expect(checkTermination(end("done"), unreadable).verdict).toBe("unknown");
  });

  it("overall: any violation wins, then any unknown, else ok", () => {
    const r = (verdict: CheckResult["verdict"]): CheckResult => ({
      kind: "stuck",
      verdict,
      detail: "",
    });
    expect(overall([r("ok"), r("unknown"), r("violated")])).toBe("violated");
    expect(overall([r("unknown"), r("ok")])).toBe("unknown");
    expect(overall([r("ok"), r("ok")])).toBe("ok");
  });
});
