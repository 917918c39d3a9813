import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SimClock, systemClock } from "../core/clock.ts";
import { type Hooks, hookFromLine } from "../core/hooks.ts";
import { MemoryJournal } from "../plan/journal.ts";
import { type HookedRun, type HookFacts, hookFailure, runHook, withHooks } from "../run/hooks.ts";
import { vipHolders } from "../sim/model.ts";
import { simulatedExecutor } from "../sim/sim-executor.ts";
import { initialWorld, World } from "../sim/world.ts";

/** The operator's hooks, run by a real `sh` on this machine, around the simulator's executor. */
const facts: HookFacts = {
  oldPrimary: { name: "node1", address: "10.0.0.11" },
  newPrimary: { name: "node2", address: "10.0.0.12" },
  vip: "10.0.0.10",
  targetVersion: "15.20-0+deb12u1",
  journal: "/runs/r.jsonl",
};

function simulated() {
  const clock = new SimClock();
  const world = new World(
    initialWorld({ primary: "node1", standby: "node2", version: "15.18", dirty: 10 }),
    clock,
  );
  return { clock, world, executor: simulatedExecutor(world) };
}

/** Awaits `p` while the simulator's clock runs (its calls sleep on it; the hook runs for real). */
async function onSim<T>(clock: SimClock, p: Promise<T>): Promise<T> {
  let done = false;
  void p.finally(() => {
    done = true;
  });
  while (!done) {
    await clock.runUntilIdle(clock.now() + 1000);
    await new Promise((r) => setTimeout(r, 5));
  }
  return p;
}

describe("hooks", () => {
  it("a hook gets the run's facts in its environment, and its output and exit status", async () => {
    const r = await runHook(
      "beforeVipDown",
      hookFromLine(
        "beforeVipDown",
        'echo "$SWITCHOVER_OLD_PRIMARY>$SWITCHOVER_NEW_PRIMARY $SWITCHOVER_VIP"; echo bad >&2; exit 3',
      ),
      {
        SWITCHOVER_OLD_PRIMARY: "node1",
        SWITCHOVER_NEW_PRIMARY: "node2",
        SWITCHOVER_VIP: "10.0.0.10",
      },
      systemClock,
    );
    expect(r).toMatchObject({ code: 3, stdout: "node1>node2 10.0.0.10\n", stderr: "bad\n" });
    expect(hookFailure(r)).toBe("hook beforeVipDown failed (exit 3): bad");
  });

  it("at its deadline the hook's whole process group is killed, children too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pgs-hook-"));
    const pidFile = join(dir, "child.pid");
    const started = Date.now();
    const r = await runHook(
      "onDone",
      { run: `sleep 30 & echo $! > ${pidFile}; wait`, deadlineMs: 300, onFailure: "continue" },
      {},
      systemClock,
    );
    expect(r.code).toBeNull();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(hookFailure(r)).toMatch(/^hook onDone failed \(killed at its deadline after \d+ ms\)$/);
    const child = Number(readFileSync(pidFile, "utf8"));
    await new Promise((res) => setTimeout(res, 200));
    // Gone, or a zombie its new parent has not reaped yet: either way it runs no more.
    const stat = existsSync(`/proc/${child}`) ? readFileSync(`/proc/${child}/stat`, "utf8") : "";
    expect(stat === "" || / Z /.test(stat)).toBe(true);
  });

  const around = (hooks: Hooks) => {
    const sim = simulated();
    const journal = new MemoryJournal();
    const o: HookedRun = { hooks, facts, journal, clock: systemClock };
    return { ...sim, journal, x: withHooks(sim.executor, o) };
  };

  it("beforeVipDown failing under rollback keeps the VIP where it is; under continue the VIP moves", async () => {
    const rollback = around({ beforeVipDown: hookFromLine("beforeVipDown", "exit 1") });
    const refused = await onSim(rollback.clock, rollback.x.vipDown("node1"));
    expect(refused).toEqual({
      ok: false,
      reason: "hook beforeVipDown failed (exit 1): the VIP stays on node1",
    });
    expect(vipHolders(rollback.world.state)).toEqual(["node1"]);
    expect(rollback.journal.entries()).toMatchObject([
      { kind: "hook", hook: "beforeVipDown", code: 1 },
    ]);

    const goOn = around({
      beforeVipDown: { run: "exit 1", deadlineMs: 5000, onFailure: "continue" },
    });
    expect(await onSim(goOn.clock, goOn.x.vipDown("node1"))).toEqual({ ok: true });
    expect(vipHolders(goOn.world.state)).toEqual([]);
  });

  it("beforeVipDown runs once, before the old primary's first VIP down only; afterPromote is the notify", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pgs-hook-"));
    const log = join(dir, "log");
    const line = `echo "$SWITCHOVER_HOOK $SWITCHOVER_MESSAGE" >> ${log}`;
    const h = around({
      beforeVipDown: hookFromLine("beforeVipDown", line),
      afterPromote: hookFromLine("afterPromote", line),
    });
    await onSim(h.clock, h.x.vipDown("node2"));
    await onSim(h.clock, h.x.vipDown("node1"));
    await onSim(h.clock, h.x.vipDown("node1"));
    expect(await onSim(h.clock, h.x.notify("node2 is the primary now"))).toEqual({ ok: true });
    expect(readFileSync(log, "utf8")).toBe(
      "beforeVipDown \nafterPromote node2 is the primary now\n",
    );
  });
});
