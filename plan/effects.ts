import { fromPromise } from "xstate";
import type { Lsn, NodeName, Pooler, Stop, Watchdog } from "../core/executor.ts";
import type { RejoinMethod } from "./context.ts";

/**
 * The effects the plans name. Each is declared here with its input and output, and performs
 * nothing: run/effect-impls.ts implements them over an Executor and plugs them in with
 * `machine.provide({ actors })`.
 */
function effect<TOutput, TInput>(name: string) {
  return fromPromise<TOutput, TInput>(async () => {
    throw new Error(`effect ${name} has no implementation: provide one with machine.provide()`);
  });
}

type On = { node: NodeName };

export const planActors = {
  preflight: effect<void, { primary: NodeName; standby: NodeName; maxLagBytes: number }>(
    "preflight",
  ),
  stopPostgres: effect<void, On & Stop>("stopPostgres"),
  fence: effect<void, On>("fence"),
  startPostgres: effect<void, On>("startPostgres"),
  upgradePackages: effect<void, On & { version: string }>("upgradePackages"),
  waitForStreaming: effect<{ timeline: number }, On & { upstream: NodeName; poll: number }>(
    "waitForStreaming",
  ),
  checkpoint: effect<void, On>("checkpoint"),
  waitForCatchUp: effect<
    void,
    { primary: NodeName; standby: NodeName; maxLagBytes: number; poll: number }
  >("waitForCatchUp"),
  waitSentEqualsReplay: effect<void, { primary: NodeName; poll: number }>("waitSentEqualsReplay"),
  vipDown: effect<void, On>("vipDown"),
  confirmStopped: effect<{ lsn: Lsn; endLsn: Lsn }, On>("confirmStopped"),
  waitForReplay: effect<{ replayLsn: Lsn }, On & { lsn: Lsn; poll: number }>("waitForReplay"),
  promote: effect<{ timeline: number }, On>("promote"),
  observeRole: effect<{ inRecovery: boolean; timeline: number }, On>("observeRole"),
  vipUp: effect<void, On & { announce: boolean }>("vipUp"),
  ensureServing: effect<void, { node: NodeName }>("ensureServing"),
  notify: effect<void, { message: string }>("notify"),
  decideRejoin: effect<{ method: RejoinMethod }, On & { source: NodeName }>("decideRejoin"),
  configureStandby: effect<void, On & { upstream: NodeName }>("configureStandby"),
  rewind: effect<{ method: RejoinMethod; bytesCopied: number }, On & { source: NodeName }>(
    "rewind",
  ),
  baseBackup: effect<{ method: RejoinMethod; bytesCopied: number }, On & { source: NodeName }>(
    "baseBackup",
  ),
  removeDataDir: effect<void, On>("removeDataDir"),
  removeSetAside: effect<void, On>("removeSetAside"),
  pausePoolers: effect<void, { poolers: Pooler[] }>("pausePoolers"),
  resumePoolers: effect<void, { poolers: Pooler[] }>("resumePoolers"),
  armWatchdog: effect<void, On & Watchdog>("armWatchdog"),
  claimPromotion: effect<void, On & { runId: string }>("claimPromotion"),
  endWatchdog: effect<void, On & { runId: string }>("endWatchdog"),
};

export type PlanActors = typeof planActors;
export type ActorName = keyof PlanActors;
