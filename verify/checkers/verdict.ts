/** A checker's verdict is three-valued: `unknown` is never a pass. */
export type Verdict = "ok" | "violated" | "unknown";

/** `liveness`: a simulated run in which no fault landed did not end done. */
export type CheckKind = "lostWrite" | "splitBrain" | "stuck" | "liveness";

export interface CheckResult {
  kind: CheckKind;
  verdict: Verdict;
  /** Readable evidence: what was lost, when two primaries overlapped, where the run stopped. */
  detail: string;
  /** How many instances were found (lost writes), when the checker counts them. */
  count?: number;
}

/** A checker that throws has not decided anything: its verdict is `unknown`. */
export function guarded(kind: CheckKind, check: () => CheckResult): CheckResult {
  try {
    return check();
  } catch (e) {
    return {
      kind,
      verdict: "unknown",
      detail: `checker failed: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

/** The run's verdict: violated if any check is, else unknown if any is (or none ran), else ok. */
export function overall(results: readonly CheckResult[]): Verdict {
  if (results.length === 0) return "unknown";
  if (results.some((r) => r.verdict === "violated")) return "violated";
  if (results.some((r) => r.verdict === "unknown")) return "unknown";
  return "ok";
}
