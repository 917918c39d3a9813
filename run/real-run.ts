import { systemClock } from "../core/clock.ts";
import type { ClusterView, RoleObservation } from "../core/cluster-view.ts";
import type { Executor, NodeName } from "../core/executor.ts";
import { History } from "../core/history.ts";
import type { Timeouts } from "../core/timeouts.ts";
import { startWorkload } from "../hosts/workload.ts";
import type { Endpoint } from "../hosts/writes.ts";
import { leftToDo, type PlanContext, type PlanInput } from "../plan/context.ts";
import { type Journal, type StepRecord, stepsFromJournal } from "../plan/journal.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { checkLostWrites } from "../verify/checkers/lost-writes.ts";
import { checkSplitBrain } from "../verify/checkers/split-brain.ts";
import { checkTermination } from "../verify/checkers/termination.ts";
import { type CheckResult, guarded, overall, type Verdict } from "../verify/checkers/verdict.ts";
import { type RunTimeline, runTimeline } from "../verify/timeline.ts";
import { journaled } from "./journaled.ts";
import { type RunHandle, type RunOptions, resumeRun, startRun } from "./machine.ts";
import { observeCluster, observeRoles } from "./observe.ts";

export interface RealRunOptions {
  executor: Executor;
  spec: PlanSpec;
  primary: NodeName;
  standby: NodeName;
  targetVersion: string;
  timeouts: Timeouts;
  maxLagBytes: number;
  journal: Journal;
  /** The built-in client writing through the VIP while the plan runs; none for `run`. */
  workload?: { endpoint: Endpoint; ratePerSec: number };
  /** Called as each step starts and when the run ends. */
  onStep?: (step: string, context: PlanContext) => void;
  /** Ctrl-C: the plan stops where it is (its journal stays), the checkers still look. */
  signal?: AbortSignal;
  /** Continue a run whose process died, at the step reconciled from its journal. */
  resume?: { step: string; context: PlanContext };
  /** Faults struck while the plan runs; healed once it has ended, before the checkers look. */
  nemesis?: RunNemesis;
}

/** A fault injector driven by the run: see lab/nemesis.ts. */
export interface RunNemesis {
  /** The plan's executor, through which a step's command is made to fail or hang. */
  wrap(x: Executor): Executor;
  /** Each step as it starts: faults aimed at it are scheduled. */
  onStep(step: string): void;
  /** The run has ended: nothing strikes any more, and every fault still in force ends. */
  heal(): Promise<void>;
}

export interface RealRunReport {
  plan: string;
  status: "done" | "aborted" | "interrupted";
  verdict: Verdict;
  checks: CheckResult[];
  /** Acknowledged writes missing at the end; null when that could not be checked. */
  lostWrites: number | null;
  acked: number;
  failed: number;
  indeterminate: number;
  /** The largest gap between two acknowledged writes (ms): the outage clients felt. */
  outageMs: number;
  rejoin: { method: string; bytesCopied: number } | null;
  versions: Record<NodeName, string>;
  /** The final primary's timeline. */
  timeline: number | null;
  steps: StepRecord[];
  failure: { step: string; reason: string } | null;
  leftToDo: string[];
  /** Wall time of the plan itself (ms). */
  planMs: number;
  /** The nodes, the client's writes and the gaps over time (compare's HTML report). */
  overTime: RunTimeline;
}

/** How often the split-brain sampler looks at both nodes while the plan runs. */
const SAMPLE_EVERY_MS = 200;
/** After the run: how long the rejoined standby gets to replay everything before the check. */
const CATCH_UP_MS = 30_000;

/**
 * Runs a plan against a real cluster (lab or production) through its executor, with the
 * workload writing meanwhile, then judges it with the same checkers as the simulator: every
 * acknowledged write on the final primary (and the caught-up standby), never two primaries
 * or two VIP holders in any sample, and an end that is what it claims.
 */
export async function runAgainstCluster(o: RealRunOptions): Promise<RealRunReport> {
  const origin = Date.now();
  const nodes = [o.primary, o.standby];
  const history = new History();
  const nemesis = o.nemesis;
  const executor = journaled(
    nemesis ? nemesis.wrap(o.executor) : o.executor,
    o.journal,
    systemClock,
  );
  const observations: RoleObservation[] = [];
  const sampler = sample(o.executor, nodes, origin, observations);
  const workload = o.workload
    ? startWorkload({
        ...o.workload,
        target: "vip",
        history,
        origin,
        idPrefix: `r${origin.toString(36)}-`,
      })
    : null;
  let probes = 0;
  const run = begin(
    o,
    {
      spec: o.spec,
      journal: o.journal,
      deps: {
        executor,
        clock: systemClock,
        history,
        probeId: () => `r${origin.toString(36)}-probe${probes++}`,
      },
      onStep: (step: string, context: PlanContext) => {
        nemesis?.onStep(step);
        o.onStep?.(step, context);
      },
    },
    {
      primary: o.primary,
      standby: o.standby,
      targetVersion: o.targetVersion,
      timeouts: o.timeouts,
      maxLagBytes: o.maxLagBytes,
    },
  );
  const interrupted = new Promise<"interrupted">((resolve) => {
    if (o.signal?.aborted) resolve("interrupted");
    o.signal?.addEventListener("abort", () => resolve("interrupted"), { once: true });
  });
  const ended = await Promise.race([run.result, interrupted]);
  const planMs = Date.now() - origin;
  if (ended === "interrupted") run.kill();
  await workload?.stop();
  // Healed while the sampler still looks: what a healed fault brings back is judged too.
  await nemesis?.heal();
  await sampler.stop();
  // Interrupted: the operator wants out, so one look at the cluster, no wait for a catch-up.
  const final = await settled(o.executor, nodes, ended === "interrupted" ? 0 : CATCH_UP_MS);
  const context = ended === "interrupted" ? null : ended.context;
  const status = ended === "interrupted" ? "interrupted" : ended.status;
  const checks = [
    guarded("lostWrite", () => checkLostWrites(history.ops, final.view())),
    checkSplitBrain(observations),
    guarded("stuck", () =>
      checkTermination(
        {
          status: status === "interrupted" ? "stuck" : status,
          lastStep: run.step(),
          targetVersion: o.targetVersion,
          refusedAtPreflight: context?.failure?.step === "preflight",
        },
        final.view(),
      ),
    ),
  ];
  const view = final.ok ? final.view() : null;
  const primary = view?.nodes.find((n) => n.running && n.primary);
  return {
    plan: o.spec.id,
    status,
    verdict: overall(checks),
    checks,
    lostWrites: checks[0]?.count ?? null,
    acked: history.count("ok"),
    failed: history.count("fail"),
    indeterminate: history.count("info"),
    outageMs: history.largestGapMs(),
    rejoin: context?.rejoin ?? null,
    versions: Object.fromEntries((view?.nodes ?? []).map((n) => [n.name, n.version])),
    timeline: primary?.timeline ?? null,
    steps: stepsFromJournal(o.journal.entries()),
    failure: context?.failure ?? null,
    leftToDo:
      status === "done"
        ? []
        : context
          ? leftToDo(context)
          : [`the run was interrupted in ${run.step()}: resume it from its journal`],
    planMs,
    overTime: runTimeline(origin, o.journal.entries(), observations, history.ops),
  };
}

/** A fresh run, or one resumed where its journal stopped (`run --resume`). */
function begin(o: RealRunOptions, r: RunOptions, input: PlanInput): RunHandle {
  return o.resume ? resumeRun(r, o.resume.step, o.resume.context) : startRun(r, input);
}

/** Samples roles every SAMPLE_EVERY_MS until stopped; a failed look is skipped, not guessed. */
function sample(
  x: Executor,
  nodes: NodeName[],
  origin: number,
  into: RoleObservation[],
): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now() - origin;
      try {
        into.push(await observeRoles(x, nodes, t));
      } catch {
        // A node that cannot be reached says nothing about roles; the next sample will.
      }
      await new Promise((r) => setTimeout(r, SAMPLE_EVERY_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/**
 * The cluster once the standby has replayed everything (or `waitMs` passed): the view the
 * checkers judge. A view that cannot be taken makes the checkers answer `unknown`.
 */
async function settled(
  x: Executor,
  nodes: NodeName[],
  waitMs: number,
): Promise<{ ok: boolean; view: () => ClusterView }> {
  const deadline = Date.now() + waitMs;
  let last: unknown = null;
  for (;;) {
    try {
      const view = await observeCluster(x, nodes);
      const standbys = view.nodes.filter((n) => n.running && !n.primary);
      if (standbys.every((n) => n.caughtUp) || Date.now() > deadline)
        return { ok: true, view: () => view };
    } catch (e) {
      last = e;
      if (Date.now() > deadline) {
        return {
          ok: false,
          view: () => {
            throw last;
          },
        };
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
