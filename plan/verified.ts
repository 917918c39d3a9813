import type { PlanSpec } from "./spec.ts";

const ROLLBACK = "startOldPrimary";
const RESUME_AND_STOP = "resumePoolersOnWayBack";

/**
 * The verified switchover. Before promotion every failure rolls back (the old primary serves
 * again, with the VIP); after it the plan only goes forward, the old primary fenced.
 *
 * On a stock Debian host the package scripts of an upgrade, like a boot, start every cluster
 * whose start.conf is not `manual`, even one stopped on purpose. So the old primary is fenced
 * before its stop (a reboot cannot bring it back), and it is upgraded only once it is made a
 * standby of the new primary: whatever starts it then, it can only start as a standby.
 */
export const verifiedPlan: PlanSpec = {
  id: "verified",
  title: "verified switchover",
  initial: "preflight",
  steps: {
    preflight: {
      does: "both nodes up, roles as expected, standby streaming with lag under the bound, VIP on the primary",
      actor: "preflight",
      input: (c) => ({ primary: c.primary, standby: c.standby, maxLagBytes: c.maxLagBytes }),
      deadline: "command",
      done: "stopStandby",
      fail: "aborted",
    },
    stopStandby: {
      does: "stop the standby (fast)",
      actor: "stopPostgres",
      input: (c) => ({ node: c.standby, mode: "fast", fence: false }),
      deadline: "stop",
      done: "upgradeStandby",
      fail: "restartStandby",
    },
    upgradeStandby: {
      does: "upgrade the standby's packages to the target version (tried again while dpkg's lock is busy, say)",
      actor: "upgradePackages",
      input: (c) => ({ node: c.standby, version: c.targetVersion }),
      deadline: "upgrade",
      retry: true,
      done: "startStandby",
      fail: "restartStandby",
    },
    startStandby: {
      does: "start the standby on the new binaries",
      actor: "startPostgres",
      input: (c) => ({ node: c.standby }),
      deadline: "start",
      done: "waitStandbyStreaming",
      fail: "restartStandby",
    },
    waitStandbyStreaming: {
      does: "wait until the standby streams from the primary again",
      actor: "waitForStreaming",
      input: (c) => ({ node: c.standby, upstream: c.primary, poll: c.timeouts.poll }),
      deadline: "stream",
      done: "checkpointPrimary",
      fail: "restartStandby",
    },
    restartStandby: {
      does: "bring the standby back up after a failed upgrade; the primary was not touched",
      actor: "startPostgres",
      input: (c) => ({ node: c.standby }),
      deadline: "start",
      retry: true,
      done: "verifyWriteOnOldPrimary",
      fail: "verifyWriteOnOldPrimary",
    },
    checkpointPrimary: {
      does: "CHECKPOINT on the primary while it still serves, so the shutdown checkpoint is short (tried again while a slow disk makes it outlast its deadline)",
      actor: "checkpoint",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
      // Its length grows with the dirty pages: one attempt's deadline is no reason to give up.
      retry: true,
      done: "waitStandbyCaughtUp",
      fail: ROLLBACK,
    },
    waitStandbyCaughtUp: {
      does: "wait until the standby's replay lag is under the bound, so the drain is short",
      actor: "waitForCatchUp",
      input: (c) => ({
        primary: c.primary,
        standby: c.standby,
        maxLagBytes: c.maxLagBytes,
        poll: c.timeouts.poll,
      }),
      deadline: "catchUp",
      done: "fencePrimary",
      fail: ROLLBACK,
    },
    // The fence costs a daemon-reload on systemd hosts (100–200 ms), so it is set while the
    // primary still serves, not on the outage. A fenced primary that runs is safe: a package
    // script or a reboot would stop it and not start it again (an outage, never a second
    // primary), and every way back to it (the rollback's start, ensureServing's) unfences it.
    fencePrimary: {
      does: "fence the primary while it still serves (what its host honours: start.conf manual, or the marker of a pg_ctl host): from its stop on it stays down through package scripts and reboots until the plan starts it",
      actor: "fence",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
      done: "armWatchdog",
      fail: ROLLBACK,
    },
    // Before the clients wait (the pause) and before the outage, so that an operator's process
    // that dies from here on leaves an outage bounded by the watchdog's deadline, not one that
    // lasts until someone resumes the run.
    armWatchdog: {
      does: "arm the watchdog on the primary's host: unless the run claims the promotion in time, it takes the run back there (primary started and unfenced, VIP up, poolers resumed) and refuses the run's later commands",
      actor: "armWatchdog",
      input: (c) => ({
        node: c.primary,
        runId: c.runId,
        afterMs: c.timeouts.watchdog,
        poolers: c.poolers,
      }),
      deadline: "command",
      done: "pausePoolers",
      fail: ROLLBACK,
    },
    // Before the VIP goes down, so that no application sees the switchover as errors: its
    // queries wait in the pooler and run once it is resumed, on whichever node then has the VIP.
    // After the fence, so that the clients do not wait out its reload too.
    pausePoolers: {
      does: "pause the poolers the inventory names (PgBouncer PAUSE, none: nothing): the transactions in flight finish, new ones wait in the pooler; past its deadline (a long transaction holds it) the pause is undone and the plan rolls back, nothing changed",
      actor: "pausePoolers",
      input: (c) => ({ poolers: c.poolers }),
      deadline: "pause",
      done: "vipDownPrimary",
      fail: ROLLBACK,
    },
    vipDownPrimary: {
      does: "take the VIP off the primary, verified: the write outage starts here",
      actor: "vipDown",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
      done: "stopPrimary",
      fail: ROLLBACK,
    },
    stopPrimary: {
      does: "stop the fenced primary (fast): it writes its shutdown checkpoint and ships it to the standby",
      actor: "stopPostgres",
      input: (c) => ({ node: c.primary, mode: "fast", fence: false }),
      deadline: "stop",
      done: "confirmPrimaryStopped",
      fail: ROLLBACK,
    },
    confirmPrimaryStopped: {
      does: "confirm the postmaster exited and pg_control says 'shut down'; read where the shutdown checkpoint ends",
      actor: "confirmStopped",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
      save: "shutdownCheckpoint",
      done: "waitStandbyReplayed",
      fail: ROLLBACK,
    },
    waitStandbyReplayed: {
      does: "gate: wait until the standby has replayed up to the end of that checkpoint",
      actor: "waitForReplay",
      input: (c) => ({
        node: c.standby,
        lsn: c.shutdownCheckpoint?.endLsn ?? 0,
        // A journal written before outagePoll existed, resumed, has only poll.
        poll: c.timeouts.outagePoll ?? c.timeouts.poll,
      }),
      deadline: "replay",
      done: [
        {
          target: "claimPromotion",
          guard: "canPromote",
          example: { replayLsn: Number.MAX_SAFE_INTEGER },
        },
        { target: ROLLBACK, example: { replayLsn: -1 } },
      ],
      fail: ROLLBACK,
    },
    // On the primary's host, atomically against its watchdog: either the run promotes or the
    // watchdog takes the run back, never both (a slow operator's run, not a dead one, included).
    claimPromotion: {
      does: "claim the promotion on the primary's host, against the watchdog: once claimed, the watchdog does nothing; if it took the run back first, the run stops there",
      actor: "claimPromotion",
      input: (c) => ({ node: c.primary, runId: c.runId }),
      deadline: "command",
      done: "promoteStandby",
      fail: ROLLBACK,
    },
    promoteStandby: {
      does: "promote the standby: a new timeline starts",
      actor: "promote",
      input: (c) => ({ node: c.standby }),
      deadline: "promote",
      save: "promotion",
      done: "vipUpNewPrimary",
      fail: "checkPromotion",
    },
    checkPromotion: {
      does: "the promote's outcome is unknown: look whether the standby left recovery",
      actor: "observeRole",
      input: (c) => ({ node: c.standby }),
      deadline: "promote",
      retry: true,
      save: "promotion",
      done: [
        {
          target: "vipUpNewPrimary",
          guard: "isPromoted",
          example: { inRecovery: false, timeline: 2 },
        },
        { target: "fenceStandby", example: { inRecovery: true, timeline: 1 } },
      ],
      // Unknown whether it promoted: neither going on nor rolling back is safe.
      fail: RESUME_AND_STOP,
    },
    fenceStandby: {
      does: "the standby did not promote: stop and fence it before the old primary comes back",
      actor: "stopPostgres",
      input: (c) => ({ node: c.standby, mode: "fast", fence: true }),
      deadline: "stop",
      // A lost or hung stop must not strand the cluster with no primary: try it again.
      retry: true,
      done: ROLLBACK,
      fail: RESUME_AND_STOP,
    },
    vipUpNewPrimary: {
      does: "put the VIP on the new primary and announce it (gratuitous ARP)",
      actor: "vipUp",
      input: (c) => ({ node: c.standby, announce: true }),
      deadline: "command",
      retry: true,
      done: "verifyWriteOnNewPrimary",
      fail: RESUME_AND_STOP,
    },
    verifyWriteOnNewPrimary: {
      does: "write through the VIP and check the new primary committed it (start it or re-announce the VIP if not): the outage ends here",
      actor: "ensureServing",
      input: (c) => ({ node: c.standby }),
      deadline: "command",
      retry: true,
      done: "resumePoolers",
      fail: RESUME_AND_STOP,
    },
    resumePoolers: {
      does: "make the poolers drop their server connections (RECONNECT) and RESUME them: the transactions waiting there run on the new primary",
      actor: "resumePoolers",
      input: (c) => ({ poolers: c.poolers }),
      deadline: "command",
      retry: true,
      done: "notifyApplications",
      // A reboot meanwhile may have taken the VIP off the new primary: it is made to serve first.
      fail: "keepNewPrimaryServing",
    },
    notifyApplications: {
      does: "tell the applications to reconnect (operator hook)",
      actor: "notify",
      input: (c) => ({ message: `${c.standby} is the primary now` }),
      deadline: "command",
      done: "decideRejoin",
      fail: "decideRejoin",
    },
    decideRejoin: {
      does: "decide how the old primary rejoins: directly, with pg_rewind, or from a fresh base backup",
      actor: "decideRejoin",
      input: (c) => ({ node: c.primary, source: c.standby }),
      deadline: "command",
      retry: true,
      save: "rejoin",
      done: [
        { target: "configureOldPrimary", guard: "rejoinDirect", example: { method: "direct" } },
        { target: "rewindOldPrimary", guard: "rejoinRewind", example: { method: "rewind" } },
        { target: "baseBackupOldPrimary", example: { method: "baseBackup" } },
      ],
      fail: "keepNewPrimaryServing",
    },
    rewindOldPrimary: {
      does: "pg_rewind the old primary onto the new timeline",
      actor: "rewind",
      input: (c) => ({ node: c.primary, source: c.standby }),
      deadline: "rejoin",
      save: "rejoin",
      done: "configureOldPrimary",
      fail: "baseBackupOldPrimary",
    },
    baseBackupOldPrimary: {
      does: "pg_basebackup into a new directory, verified, then swapped in (the old one kept aside)",
      actor: "baseBackup",
      input: (c) => ({ node: c.primary, source: c.standby }),
      deadline: "rejoin",
      retry: true,
      save: "rejoin",
      done: "configureOldPrimary",
      fail: "keepNewPrimaryServing",
    },
    configureOldPrimary: {
      does: "make the old primary a standby of the new one (standby.signal, primary_conninfo)",
      actor: "configureStandby",
      input: (c) => ({ node: c.primary, upstream: c.standby }),
      deadline: "command",
      retry: true,
      done: "upgradeOldPrimary",
      fail: "keepNewPrimaryServing",
    },
    upgradeOldPrimary: {
      does: "upgrade the old primary's packages, still fenced and now a standby: package scripts that start it anyway start a standby, never a second primary",
      actor: "upgradePackages",
      input: (c) => ({ node: c.primary, version: c.targetVersion }),
      deadline: "upgrade",
      retry: true,
      done: "startOldPrimaryAsStandby",
      fail: "keepNewPrimaryServing",
    },
    startOldPrimaryAsStandby: {
      does: "unfence the old primary and start it as a standby",
      actor: "startPostgres",
      input: (c) => ({ node: c.primary }),
      deadline: "start",
      retry: true,
      done: "waitOldPrimaryStreaming",
      fail: "keepNewPrimaryServing",
    },
    waitOldPrimaryStreaming: {
      does: "wait until it streams from the new primary on the new timeline",
      actor: "waitForStreaming",
      input: (c) => ({ node: c.primary, upstream: c.standby, poll: c.timeouts.poll }),
      deadline: "stream",
      done: "removeSetAside",
      fail: "stopOldPrimaryForCopy",
    },
    stopOldPrimaryForCopy: {
      does: "it cannot follow the new timeline: stop it to rejoin by copy instead",
      actor: "stopPostgres",
      input: (c) => ({ node: c.primary, mode: "fast", fence: true }),
      deadline: "stop",
      retry: true,
      done: "baseBackupOldPrimary",
      fail: "keepNewPrimaryServing",
    },
    removeSetAside: {
      does: "delete the data directory a base backup set aside, now that its replacement streams",
      actor: "removeSetAside",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
      done: "verifyServingAtEnd",
      fail: "verifyServingAtEnd",
    },
    verifyServingAtEnd: {
      does: "before saying done, write through the VIP once more: a primary restarted during the rejoin comes back without its VIP (re-announce it if so)",
      actor: "ensureServing",
      input: (c) => ({ node: c.standby }),
      deadline: "command",
      retry: true,
      done: "confirmStreamingAtEnd",
      fail: "aborted",
    },
    confirmStreamingAtEnd: {
      does: "before saying done, check once more that the old primary streams from the new one",
      actor: "waitForStreaming",
      input: (c) => ({ node: c.primary, upstream: c.standby, poll: c.timeouts.poll }),
      deadline: "stream",
      done: "done",
      fail: "aborted",
    },
    keepNewPrimaryServing: {
      does: "the old primary could not rejoin: make sure the new primary still serves through the VIP, then stop",
      actor: "ensureServing",
      input: (c) => ({ node: c.standby }),
      deadline: "command",
      retry: true,
      done: "aborted",
      fail: "aborted",
    },
    startOldPrimary: {
      does: "roll back: start the old primary again (nothing if it still runs)",
      actor: "startPostgres",
      input: (c) => ({ node: c.primary }),
      deadline: "start",
      retry: true,
      done: "vipUpOldPrimary",
      fail: RESUME_AND_STOP,
    },
    vipUpOldPrimary: {
      does: "roll back: put the VIP back on the old primary and announce it",
      actor: "vipUp",
      input: (c) => ({ node: c.primary, announce: true }),
      deadline: "command",
      retry: true,
      done: "verifyWriteOnOldPrimary",
      fail: RESUME_AND_STOP,
    },
    verifyWriteOnOldPrimary: {
      does: "write through the VIP and check the old primary committed it (start it or re-announce the VIP if not)",
      actor: "ensureServing",
      input: (c) => ({ node: c.primary }),
      deadline: "command",
      retry: true,
      done: RESUME_AND_STOP,
      fail: RESUME_AND_STOP,
    },
    // Every way back after the pause, and every abort before the poolers were resumed, ends
    // here: a pooler is never left holding the applications' queries.
    resumePoolersOnWayBack: {
      does: "the run stops here (rolled back, or aborted): RESUME the poolers (nothing where none is paused), so that no application is left waiting in one",
      actor: "resumePoolers",
      input: (c) => ({ poolers: c.poolers }),
      deadline: "command",
      retry: true,
      done: "endWatchdog",
      fail: "endWatchdog",
    },
    // A watchdog left armed would take back, when its time comes, a pair the next run may be
    // switching over by then.
    endWatchdog: {
      does: "the run stops where it started: stop the watchdog (nothing if none was armed), so that it never acts",
      actor: "endWatchdog",
      input: (c) => ({ node: c.primary, runId: c.runId }),
      deadline: "command",
      done: "aborted",
      fail: "aborted",
    },
  },
};
