import { fromPromise, type InputFrom, type OutputFrom } from "xstate";
import type { Clock } from "../core/clock.ts";
import {
  type CallOptions,
  call,
  type Executor,
  type ExecutorCall,
  type NodeName,
  type Outcome,
  type Pooler,
} from "../core/executor.ts";
import type { History } from "../core/history.ts";
import { waitFor } from "../core/wait.ts";
import type { RejoinMethod } from "../plan/context.ts";
import { type ActorName, type PlanActors, planActors } from "../plan/effects.ts";

/** A step's operation answered `{ ok: false }`: the step failed, with the host's reason. */
export class StepFailed extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "StepFailed";
  }
}

export interface ActorDeps {
  executor: Executor;
  clock: Clock;
  /** Probe writes are writes: they go into the run's history like the workload's. */
  history?: History;
  probeId: () => string;
  /** Every call of the run carries it (CallOptions.runId): its watchdog's refusal reaches it. */
  runId: string;
}

function must<T>(r: Outcome<T>): T {
  if (!r.ok) throw new StepFailed(r.reason);
  return r as T;
}

/** Polls `probe` until it returns a value. The plan's deadline ends the wait through `signal`. */
function until<T>(
  clock: Clock,
  every: number,
  signal: AbortSignal,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  return waitFor(probe, { clock, everyMs: every, signal });
}

/**
 * The plans' effects, performed through one Executor: the same code for simulation, lab and
 * production. `depsOf` finds the run's dependencies from the actor system the effect runs in,
 * so a plan is provided with its effects once, not once per run: `machine.provide()` rebuilds
 * the whole machine, which cost more than the simulated run itself.
 */
export function implementActors(depsOf: (system: object) => ActorDeps): PlanActors {
  const actors: Record<string, unknown> = {};
  for (const name of ACTOR_NAMES) {
    actors[name] = fromPromise(({ input, signal, system }) => {
      const deps = depsOf(system);
      const impl = effects(deps)[name] as Impl<ActorName>;
      return impl(input as never, { signal, runId: deps.runId });
    });
  }
  return actors as PlanActors;
}

const ACTOR_NAMES = Object.keys(planActors) as ActorName[];
const cache = new WeakMap<ActorDeps, Impls>();

function effects(d: ActorDeps): Impls {
  const known = cache.get(d);
  if (known) return known;
  const impls = makeEffects(d);
  cache.set(d, impls);
  return impls;
}

function makeEffects(d: ActorDeps): Impls {
  const x = d.executor;
  return {
    preflight: async ({ primary, standby, maxLagBytes }, o) => {
      const p = must(await x.status(primary, o));
      const s = must(await x.status(standby, o));
      if (!p.running) throw new StepFailed(`${primary} is not running`);
      if (!s.running) throw new StepFailed(`${standby} is not running`);
      if (!p.vipBound) throw new StepFailed(`the VIP is not on ${primary}`);
      if (s.vipBound) throw new StepFailed(`the VIP is also bound on ${standby}`);
      const pr = must(await x.replication(primary, o));
      const sr = must(await x.replication(standby, o));
      if (pr.inRecovery) throw new StepFailed(`${primary} is in recovery, not a primary`);
      if (!sr.inRecovery) throw new StepFailed(`${standby} is not a standby`);
      if (!sr.streaming) throw new StepFailed(`${standby} is not streaming from ${primary}`);
      const lag = pr.lsn - (sr.replayLsn ?? 0);
      if (lag > maxLagBytes)
        throw new StepFailed(`${standby} lags ${lag} bytes (bound ${maxLagBytes})`);
    },
    stopPostgres: async ({ node, mode, fence }, o) =>
      void must(await x.stopPostgres(node, { mode, fence }, o)),
    startPostgres: async ({ node }, o) => void must(await x.startPostgres(node, o)),
    fence: async ({ node }, o) => void must(await x.fence(node, o)),
    upgradePackages: async ({ node, version }, o) =>
      void must(await x.upgradePackages(node, version, o)),
    checkpoint: async ({ node }, o) => void must(await x.checkpoint(node, o)),
    waitForStreaming: ({ node, poll }, o) =>
      until(d.clock, poll, o.signal, async () => {
        const r = await x.replication(node, o);
        return r.ok && r.inRecovery && r.streaming ? { timeline: r.timeline } : undefined;
      }),
    waitForCatchUp: ({ primary, standby, maxLagBytes, poll }, o) =>
      until(d.clock, poll, o.signal, async () => {
        const r = await x.replication(primary, o);
        // By name: pg_stat_replication may list other clients too (Barman, pg_receivewal).
        const s = r.ok ? r.standbys.find((b) => b.client === standby) : undefined;
        return r.ok && s && r.lsn - s.replayLsn <= maxLagBytes ? true : undefined;
      }).then(() => undefined),
    waitSentEqualsReplay: ({ primary, poll }, o) =>
      until(d.clock, poll, o.signal, async () => {
        const r = await x.replication(primary, o);
        return r.ok && r.standbys.some((s) => s.sentLsn === s.replayLsn) ? true : undefined;
      }).then(() => undefined),
    // The host command reads the device again and fails while it still shows the VIP.
    vipDown: async ({ node }, o) => void must(await x.vipDown(node, o)),
    // Whether a postmaster runs and what pg_control says, read by one command: on the outage.
    confirmStopped: async ({ node }, o) => {
      const cd = must(await x.controlData(node, o));
      if (cd.running) throw new StepFailed(`${node}: the postmaster is still running`);
      if (cd.state !== "shut down")
        throw new StepFailed(`${node} did not shut down cleanly (pg_control: ${cd.state})`);
      return { lsn: cd.checkpointLsn, endLsn: cd.checkpointEndLsn };
    },
    waitForReplay: ({ node, lsn, poll }, o) =>
      until(d.clock, poll, o.signal, async () => {
        const r = await x.replication(node, o);
        return r.ok && r.replayLsn !== null && r.replayLsn >= lsn
          ? { replayLsn: r.replayLsn }
          : undefined;
      }),
    promote: async ({ node }, o) => ({ timeline: must(await x.promote(node, o)).timeline }),
    observeRole: async ({ node }, o) => {
      if (must(await x.status(node, o)).running) {
        const r = must(await x.replication(node, o));
        return { inRecovery: r.inRecovery, timeline: r.timeline };
      }
      // Down: pg_control still tells whether it left recovery before it stopped.
      const cd = must(await x.controlData(node, o));
      return {
        inRecovery: cd.state !== "in production" && cd.state !== "shut down",
        timeline: cd.timeline,
      };
    },
    vipUp: async ({ node, announce }, o) => void must(await x.vipUp(node, announce, o)),
    ensureServing: async ({ node }, o) => {
      const landed = await probeWrite(d, o).catch((e: unknown) =>
        e instanceof StepFailed ? e : Promise.reject(e),
      );
      if (landed === node) return;
      // Not served yet: repair what this step may repair (the node is the one primary the plan
      // allows, so starting it and re-announcing the VIP is safe), then fail this attempt.
      const st = must(await x.status(node, o));
      if (!st.running) must(await x.startPostgres(node, o));
      must(await x.vipUp(node, true, o));
      const why = landed instanceof StepFailed ? landed.message : `it landed on ${landed}`;
      throw new StepFailed(`a write through the VIP did not land on ${node}: ${why}`);
    },
    notify: async ({ message }, o) => void must(await x.notify(message, o)),
    decideRejoin: async ({ node, source }, o) => ({
      method: await decideRejoin(x, node, source, o),
    }),
    configureStandby: async ({ node, upstream }, o) =>
      void must(await x.configureStandby(node, upstream, o)),
    rewind: async ({ node, source }, o) => ({
      method: "rewind" as const,
      bytesCopied: must(await x.rewind(node, source, o)).bytesCopied,
    }),
    baseBackup: async ({ node, source }, o) => ({
      method: "baseBackup" as const,
      bytesCopied: must(await x.baseBackup(node, source, o)).bytesCopied,
    }),
    removeDataDir: async ({ node }, o) => void must(await x.removeDataDir(node, o)),
    removeSetAside: async ({ node }, o) => void must(await x.removeSetAside(node, o)),
    // Side by side: each pooler's clients wait from its PAUSE on, so none is paused for long.
    pausePoolers: ({ poolers }, o) =>
      eachPooler(poolers, async (p) => void must(await x.pausePooler(p, o))),
    resumePoolers: ({ poolers }, o) =>
      eachPooler(poolers, async (p) => {
        must(await x.reconnectPooler(p, o));
        must(await x.resumePooler(p, o));
      }),
    armWatchdog: async ({ node, ...w }, o) => void must(await x.armWatchdog(node, w, o)),
    claimPromotion: async ({ node, runId }, o) => void must(await x.claimPromotion(node, runId, o)),
    endWatchdog: async ({ node, runId }, o) => void must(await x.endWatchdog(node, runId, o)),
  };
}

/** `act` on every pooler, all of them tried; the first failure fails the step. */
async function eachPooler(poolers: Pooler[], act: (p: Pooler) => Promise<void>): Promise<void> {
  const failed = (await Promise.allSettled(poolers.map(act))).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** The stand-in for the id a probe write gets as it runs. */
export const PROBE_ID = "<probe id>";

const when = (c: ExecutorCall, w: string): ExecutorCall => ({ ...c, when: w });

/**
 * The executor calls each effect of makeEffects makes, in order, with when it makes them:
 * `switchover plan` and the dry run list these with the commands each sends (hosts/host-calls.ts).
 * Keep them next to the effects: a test runs the plans on the simulator and holds every call an
 * effect makes to this list.
 */
export const effectCalls: {
  [K in ActorName]: (input: InputFrom<PlanActors[K]>) => ExecutorCall[];
} = {
  preflight: ({ primary, standby }) => [
    call("status", primary),
    call("status", standby),
    call("replication", primary),
    call("replication", standby),
  ],
  stopPostgres: ({ node, mode, fence }) => [call("stopPostgres", node, { mode, fence })],
  startPostgres: ({ node }) => [call("startPostgres", node)],
  fence: ({ node }) => [call("fence", node)],
  upgradePackages: ({ node, version }) => [call("upgradePackages", node, version)],
  checkpoint: ({ node }) => [call("checkpoint", node)],
  waitForStreaming: ({ node, poll }) => [
    when(call("replication", node), `every ${poll} ms until it streams`),
  ],
  waitForCatchUp: ({ primary, standby, maxLagBytes, poll }) => [
    when(
      call("replication", primary),
      `every ${poll} ms until ${standby}'s replay lag is at most ${maxLagBytes} bytes`,
    ),
  ],
  waitSentEqualsReplay: ({ primary, poll }) => [
    when(
      call("replication", primary),
      `every ${poll} ms until a standby has replayed all it was sent`,
    ),
  ],
  vipDown: ({ node }) => [call("vipDown", node)],
  confirmStopped: ({ node }) => [call("controlData", node)],
  waitForReplay: ({ node, poll }) => [
    when(
      call("replication", node),
      `every ${poll} ms until it has replayed up to the end of the shutdown checkpoint`,
    ),
  ],
  promote: ({ node }) => [call("promote", node)],
  observeRole: ({ node }) => [
    call("status", node),
    when(call("replication", node), "if it runs"),
    when(call("controlData", node), "if it is down"),
  ],
  vipUp: ({ node, announce }) => [call("vipUp", node, announce)],
  ensureServing: ({ node }) => [
    call("probeWrite", "vip", PROBE_ID),
    when(call("status", node), `if the write did not land on ${node}, to repair`),
    when(call("startPostgres", node), "if it is down"),
    when(call("vipUp", node, true), "then, and this attempt fails"),
  ],
  notify: ({ message }) => [call("notify", message)],
  decideRejoin: ({ node, source }) => [call("controlData", node), call("timelineFork", source)],
  configureStandby: ({ node, upstream }) => [call("configureStandby", node, upstream)],
  rewind: ({ node, source }) => [call("rewind", node, source)],
  baseBackup: ({ node, source }) => [call("baseBackup", node, source)],
  removeDataDir: ({ node }) => [call("removeDataDir", node)],
  removeSetAside: ({ node }) => [call("removeSetAside", node)],
  pausePoolers: ({ poolers }) => poolers.map((p) => call("pausePooler", p)),
  resumePoolers: ({ poolers }) =>
    poolers.flatMap((p) => [call("reconnectPooler", p), call("resumePooler", p)]),
  armWatchdog: ({ node, ...w }) => [call("armWatchdog", node, w)],
  claimPromotion: ({ node, runId }) => [call("claimPromotion", node, runId)],
  endWatchdog: ({ node, runId }) => [call("endWatchdog", node, runId)],
};

type Impl<K extends ActorName> = (
  input: InputFrom<PlanActors[K]>,
  o: CallOptions & { signal: AbortSignal },
) => Promise<OutputFrom<PlanActors[K]>>;
type Impls = { [K in ActorName]: Impl<K> };

async function probeWrite(d: ActorDeps, o: CallOptions): Promise<NodeName> {
  const id = d.probeId();
  d.history?.add({ type: "invoke", id, target: "vip", t: d.clock.now(), probe: true });
  const r = await d.executor.probeWrite("vip", id, o);
  const t = d.clock.now();
  if (r.ok) d.history?.add({ type: "ok", id, target: "vip", t, node: r.node, probe: true });
  else d.history?.add({ type: "fail", id, target: "vip", t, reason: r.reason, probe: true });
  return must(r).node;
}

/**
 * Direct rejoin copies nothing, and is safe exactly when the old primary stopped cleanly on the
 * timeline the new one forked from, no later than the fork: then its WAL is a prefix of the new
 * primary's history. Otherwise pg_rewind (the cluster has data checksums or wal_log_hints).
 */
async function decideRejoin(
  x: Executor,
  node: NodeName,
  source: NodeName,
  o: CallOptions,
): Promise<RejoinMethod> {
  const cd = must(await x.controlData(node, o));
  const fork = must(await x.timelineFork(source, o));
  const clean = cd.state === "shut down";
  if (clean && cd.timeline === fork.timeline - 1 && cd.checkpointEndLsn <= fork.switchpoint)
    return "direct";
  return "rewind";
}
