import { seededRng } from "../core/rng.ts";
import type { PlanSpec } from "../plan/spec.ts";
import { faultFreePath } from "./critical-window.ts";
import { finishing, type LabFault } from "./lab-nemesis.ts";
import { leadsOnlyTo, type Role, type Trigger } from "./sim-nemesis.ts";

/**
 * In turn: seeds S to S+9 strike each kind once (a reboot twice: the host fault real upgrades
 * bring, one in each of the two places it decides safety, see rebootAt), so a corpus of
 * consecutive seeds covers them; six from a multiple of ten hold both reboots.
 */
const KINDS: LabFault["kind"][] = [
  "reboot",
  "crash",
  "partition",
  "commandHangs",
  "freeze",
  "reboot",
  "commandFails",
  "hostDown",
  "slowReplication",
  "upgradeFails",
];

/**
 * Where a reboot decides safety: the old primary's host, between its stop and the promotion (the
 * first reboot of a turn) or during its own upgrade (the second). Unfenced, either boot starts it
 * as a primary beside the new one.
 */
function rebootAt(spec: PlanSpec, path: string[], second: boolean, delayMs: number): Trigger {
  const actor = (s: string) => spec.steps[s]?.actor;
  const promote = path.findIndex((s) => actor(s) === "promote");
  if (second) {
    const upgrade = path.filter((s, i) => i > promote && actor(s) === "upgradePackages").at(-1);
    return { step: upgrade ?? (path.at(-1) as string), delayMs };
  }
  const vipDown = path.findIndex((s) => actor(s) === "vipDown");
  const stop = path.findIndex((s, i) => i > vipDown && actor(s) === "stopPostgres");
  const between = path.slice(stop + 1, promote + 1);
  return { step: between[delayMs % between.length] ?? (path[promote] as string), delayMs };
}

/**
 * The switchover itself: from taking the VIP down to putting it up again. Where a plan's gates
 * matter most, so two thirds of the aimed faults land there.
 */
function criticalSteps(spec: PlanSpec, path: string[]): string[] {
  const first = path.findIndex((s) => spec.steps[s]?.actor === "vipDown");
  const last = path.findIndex((s) => spec.steps[s]?.actor === "vipUp");
  return first >= 0 && last >= first ? path.slice(first, last + 1) : path;
}

/**
 * A finishing step, or one that leads only to finishing steps: the run is over within a few
 * hundred milliseconds (a direct rejoin's removeSetAside, then the last checks), before a
 * fault aimed there with its delay would land.
 */
function nearTheEnd(spec: PlanSpec, step: string): boolean {
  return finishing(spec, step) || leadsOnlyTo(spec, step, (t) => finishing(spec, t));
}

/** A random moment: this long after the run starts (a rehearsal's plan takes ~20–40 s). */
const RANDOM_MOMENT_MS = 30_000;

/**
 * The fault of one rehearsal, drawn from its seed: the same seed gives the same kind of fault
 * on either plan, aimed at a step of that plan's own path. The kind takes turns with the seed.
 * Most are aimed at a step (two thirds of those within the switchover itself); one in five
 * strikes at a random moment instead. A command fault strikes the first command of a step of the
 * switchover, the steps taking turns with the seed too: what a plan does after a failed or hung
 * step there (VIP down, stop, promote) is where the runbook's risks are.
 */
export function drawLabFault(seed: number, spec: PlanSpec): LabFault {
  const rng = seededRng(seed);
  const turn = Math.floor(seed / KINDS.length);
  const kind = KINDS[seed - turn * KINDS.length] as LabFault["kind"];
  const path = faultFreePath(spec).filter((s) => !nearTheEnd(spec, s));
  const node = rng.pick<Role>(["primary", "standby"]);
  const forMs = rng.int(2_000, 12_000);
  const critical = criticalSteps(spec, path);
  const aimed = { step: rng.pick(rng.chance(2 / 3) ? critical : path), delayMs: rng.int(0, 300) };
  const at = rng.chance(0.2)
    ? { step: spec.initial, delayMs: rng.int(0, RANDOM_MOMENT_MS) }
    : aimed;
  switch (kind) {
    case "crash":
      return { kind, node, at };
    case "hostDown":
      return { kind, node, at, forMs };
    case "reboot": {
      const at = rebootAt(spec, path, seed % KINDS.length !== 0, rng.int(0, 300));
      return { kind, node: "primary", at, downMs: rng.int(0, 3_000) };
    }
    case "freeze":
      return { kind, node, at, forMs };
    case "partition": {
      const between = rng.pick(["nodes", "client-primary", "client-standby"] as const);
      return { kind, between, at, forMs };
    }
    case "slowReplication":
      return { kind, at, forMs, lagMs: 0 };
    case "upgradeFails": {
      // Aimed at an upgrade, before its apt-get install: elsewhere it would change nothing.
      const upgrades = path.filter((s) => spec.steps[s]?.actor === "upgradePackages");
      return { kind, at: { step: rng.pick(upgrades), delayMs: rng.int(0, 500) }, forMs };
    }
    case "commandFails":
    case "commandHangs":
      return { kind, at: { step: critical[turn % critical.length] as string, delayMs: 0 } };
  }
}
