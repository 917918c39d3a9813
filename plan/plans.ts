import { seedPlan } from "./runbook.ts";
import type { PlanSpec } from "./spec.ts";
import { verifiedPlan } from "./verified.ts";

export type PlanName = "verified" | "seed";
export const PLAN_NAMES: readonly PlanName[] = ["verified", "seed"];
export const PLANS: Record<PlanName, PlanSpec> = { verified: verifiedPlan, seed: seedPlan };
