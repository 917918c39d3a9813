import type { ClusterView, NodeView } from "../../core/cluster-view.ts";
import { upstreamVersion } from "../../core/debian-version.ts";
import { type CheckResult, guarded } from "./verdict.ts";

export interface RunEnd {
  /** How the plan ended; `stuck` if it had not ended by the bound. */
  status: "done" | "aborted" | "stuck";
  lastStep: string;
  targetVersion: string;
  /** The plan refused to start at pre-flight: it changed nothing, so it answers for nothing. */
  refusedAtPreflight: boolean;
  /**
   * Why the plan had to give up (a fault lasted longer than it retries), if it had to: then
   * an abort may leave nothing serving, as long as no two primaries run.
   */
  outlasted?: string | null;
}

/**
 * Termination: `done` means both nodes on the target version, the standby streaming from the
 * primary on its timeline, the VIP on the primary alone; `aborted` means exactly one primary
 * serving through the VIP. Either way a pooler in front of it is not left paused (its clients
 * would wait for ever). Anything else, or no end at all, is a violation.
 */
export function checkTermination(end: RunEnd, final: ClusterView): CheckResult {
  return guarded("stuck", () => {
    if (end.status === "stuck") return violated(`the run never ended: still in ${end.lastStep}`);
    if (end.status === "aborted" && end.refusedAtPreflight) {
      return { kind: "stuck", verdict: "ok", detail: "refused at pre-flight: nothing was changed" };
    }
    const problem = end.status === "done" ? doneProblem(end, final) : servingProblem(final);
    const primaries = final.nodes.filter((n) => n.running && n.primary).length;
    if (problem && end.status === "aborted" && end.outlasted && primaries < 2) {
      return {
        kind: "stuck",
        verdict: "ok",
        detail: `ended aborted, ${problem}: ${end.outlasted}, so it had to give up`,
      };
    }
    if (problem) return violated(`ended ${end.status} (after ${end.lastStep}) but ${problem}`);
    return { kind: "stuck", verdict: "ok", detail: `ended ${end.status}, cluster as it claims` };
  });
}

function servingProblem(final: ClusterView): string | null {
  if (final.poolerPaused) return "the pooler is left paused: its clients wait for ever";
  const primaries = final.nodes.filter((n) => n.running && n.primary);
  if (primaries.length !== 1) return `${primaries.length} running primaries`;
  const p = primaries[0] as NodeView;
  const holders = final.nodes.filter((n) => n.vip);
  if (holders.length !== 1 || holders[0] !== p) {
    return `the VIP is on ${holders.map((n) => n.name).join(", ") || "no node"}, not on the primary ${p.name}`;
  }
  return null;
}

function doneProblem(end: RunEnd, final: ClusterView): string | null {
  const serving = servingProblem(final);
  if (serving) return serving;
  const p = final.nodes.find((n) => n.running && n.primary) as NodeView;
  for (const n of final.nodes) {
    // A node's version is the release its server package is at; the target may be a full
    // Debian version ("15.20-0+deb12u1"), which names the same release.
    if (upstreamVersion(n.version) !== upstreamVersion(end.targetVersion))
      return `${n.name} is on ${n.version}, not ${end.targetVersion}`;
    if (n === p) continue;
    if (!n.running) return `${n.name} is not running`;
    if (n.streamingFrom !== p.name) return `${n.name} is not streaming from ${p.name}`;
    if (n.timeline !== p.timeline)
      return `${n.name} is on timeline ${n.timeline}, ${p.name} on ${p.timeline}`;
  }
  return null;
}

function violated(detail: string): CheckResult {
  return { kind: "stuck", verdict: "violated", detail };
}
