import type { ClusterView } from "../../core/cluster-view.ts";
import type { ClientOp } from "../../core/history.ts";
import { type CheckResult, guarded } from "./verdict.ts";

/**
 * No lost write: every acknowledged write is on the final primary, and on the final standby
 * once it has caught up. Indeterminate writes (`info`) may or may not be there: not checked.
 * When no node serves, `leftServing` is the node the run's journal leaves as the primary: its
 * rows are checked as they are on disk. Only the simulator's view holds a stopped node's rows.
 */
export function checkLostWrites(
  ops: readonly ClientOp[],
  final: ClusterView,
  leftServing?: string,
): CheckResult {
  return guarded("lostWrite", () => {
    const primaries = final.nodes.filter((n) => n.running && n.primary);
    const primary =
      primaries.length === 1
        ? primaries[0]
        : (final.nodes.find((n) => n.vip) ??
          (primaries.length === 0 ? final.nodes.find((n) => n.name === leftServing) : undefined));
    if (!primary) {
      return {
        kind: "lostWrite",
        verdict: "unknown",
        detail: "no single primary at the end: nothing to check against",
      };
    }
    const acked = ops.filter((o) => o.type === "ok");
    const missing = acked.filter((o) => !primary.writes.has(o.id));
    if (missing.length > 0) return lost(missing, primary.name);
    const standby = final.nodes.find((n) => n !== primary && n.running && !n.primary && n.caughtUp);
    const missingOnStandby = standby ? acked.filter((o) => !standby.writes.has(o.id)) : [];
    if (standby && missingOnStandby.length > 0)
      return lost(missingOnStandby, `${standby.name} (caught-up standby)`);
    const where = standby
      ? `${primary.name} and ${standby.name}`
      : `${primary.name}${primary.running ? "" : " (not running: its rows on disk)"}`;
    return {
      kind: "lostWrite",
      verdict: "ok",
      count: 0,
      detail: `all ${acked.length} acknowledged writes on ${where}`,
    };
  });
}

function lost(missing: readonly ClientOp[], where: string): CheckResult {
  const first = missing[0] as ClientOp;
  const via =
    first.target === "vip"
      ? "through the VIP"
      : first.target === "pooler"
        ? "through the pooler"
        : `through ${first.target}'s own address`;
  const sample = missing
    .slice(0, 5)
    .map((o) => o.id)
    .join(", ");
  return {
    kind: "lostWrite",
    verdict: "violated",
    count: missing.length,
    detail: `${missing.length} acknowledged write(s) missing on ${where}: ${sample}${missing.length > 5 ? ", …" : ""}; first: ${first.id}, acknowledged by ${first.node ?? "?"} at ${Math.round(first.t)} ms ${via}`,
  };
}
