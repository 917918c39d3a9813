import type { NodeName } from "./executor.ts";

/**
 * What clients saw, Jepsen-style: each write is invoked, then completes as `ok` (acknowledged),
 * `fail` (definitely not applied) or `info` (indeterminate: may or may not have been applied).
 */
export type OpType = "invoke" | "ok" | "fail" | "info";

export interface ClientOp {
  type: OpType;
  /** Unique id of the write: the row the checkers look for afterwards. */
  id: string;
  /** Where the client sent it: through the VIP, or straight to a node's own address. */
  target: NodeName | "vip";
  /** Time in ms: simulated, or since the run started. */
  t: number;
  /** On ok: the node that committed it. */
  node?: NodeName;
  reason?: string;
  /** A probe the plan itself wrote to verify a step, not a workload write. */
  probe?: boolean;
}

export class History {
  readonly ops: ClientOp[] = [];

  add(op: ClientOp): void {
    this.ops.push(op);
  }

  acknowledged(): ClientOp[] {
    return this.ops.filter((o) => o.type === "ok");
  }

  /** The clients' writes of one type (sent to `target`, or anywhere); the plan's probes are not counted. */
  count(type: OpType, target?: ClientOp["target"]): number {
    return this.ops.reduce((n, o) => n + (o.type === type && sentTo(o, target) ? 1 : 0), 0);
  }
}

function sentTo(o: ClientOp, target: ClientOp["target"] | undefined): boolean {
  return !o.probe && (target === undefined || o.target === target);
}
