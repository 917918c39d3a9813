import type { PlanSpec, StepSpec } from "./spec.ts";

/**
 * The classic runbook, literally: its order, its `sent == replay` check while the primary
 * still runs, no gate, no deadline on its wait, `rm -Rf` then a base backup. An operator
 * following it goes on to the next line whatever the last one printed. It exists so the
 * tests can show what the verified plan's gates buy.
 */
const order: Array<[string, Omit<StepSpec, "done" | "fail">]> = [
  [
    "stopStandby",
    {
      does: "stop the standby",
      actor: "stopPostgres",
      input: (c) => ({ node: c.standby, mode: "fast", fence: false }),
      deadline: "stop",
    },
  ],
  [
    "upgradeStandby",
    {
      does: "upgrade the standby's packages",
      actor: "upgradePackages",
      input: (c) => ({ node: c.standby, version: c.targetVersion }),
      deadline: "upgrade",
    },
  ],
  [
    "startStandby",
    {
      does: "start the standby",
      actor: "startPostgres",
      input: (c) => ({ node: c.standby }),
      deadline: "start",
    },
  ],
  [
    "vipDownPrimary",
    {
      does: "ifconfig the VIP down on the primary",
      actor: "vipDown",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
    },
  ],
  [
    "checkpointPrimary",
    {
      does: "CHECKPOINT on the primary (after the VIP went down)",
      actor: "checkpoint",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
    },
  ],
  [
    "waitSentEqualsReplay",
    {
      does: "wait, periodically, until pg_stat_replication says sent == replay",
      actor: "waitSentEqualsReplay",
      input: (c) => ({ primary: c.primary, poll: c.timeouts.poll }),
      deadline: null,
    },
  ],
  [
    "stopPrimary",
    {
      does: "pg_ctl stop -m fast on the primary",
      actor: "stopPostgres",
      input: (c) => ({ node: c.primary, mode: "fast", fence: false }),
      deadline: "stop",
    },
  ],
  [
    "promoteStandby",
    {
      does: "pg_ctl promote on the standby",
      actor: "promote",
      input: (c) => ({ node: c.standby }),
      deadline: "promote",
      save: "promotion",
    },
  ],
  [
    "vipUpStandby",
    {
      does: "ifconfig the VIP up on the new primary (no gratuitous ARP)",
      actor: "vipUp",
      input: (c) => ({ node: c.standby, announce: false }),
      deadline: "command",
    },
  ],
  [
    "notifyApplications",
    {
      does: "tell the applications to reconnect",
      actor: "notify",
      input: (c) => ({ message: `${c.standby} is the primary now` }),
      deadline: "command",
    },
  ],
  [
    "upgradeOldPrimary",
    {
      does: "upgrade the old primary's packages",
      actor: "upgradePackages",
      input: (c) => ({ node: c.primary, version: c.targetVersion }),
      deadline: "upgrade",
    },
  ],
  [
    "removeOldData",
    {
      does: "rm -Rf the old primary's data directory",
      actor: "removeDataDir",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
    },
  ],
  [
    "baseBackupOldPrimary",
    {
      does: "pg_basebackup from the new primary into the emptied directory",
      actor: "baseBackup",
      input: (c) => ({ node: c.primary, source: c.standby }),
      deadline: "rejoin",
      save: "rejoin",
    },
  ],
  [
    "startOldPrimary",
    {
      does: "start the old primary as a standby",
      actor: "startPostgres",
      input: (c) => ({ node: c.primary }),
      deadline: "start",
    },
  ],
];

function chain(): Record<string, StepSpec> {
  const steps: Record<string, StepSpec> = {};
  order.forEach(([id, step], i) => {
    const next = order[i + 1]?.[0] ?? "done";
    steps[id] = { ...step, done: next, fail: next };
  });
  return steps;
}

export const seedPlan: PlanSpec = {
  id: "seed",
  title: "classic runbook (seed)",
  initial: "stopStandby",
  steps: chain(),
};
