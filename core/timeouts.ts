/**
 * Every deadline of a run, in ms: the plan's steps and waits, and the host commands they send
 * (a command's own deadline is its step's). One table per setting, all of them here.
 */
export interface Timeouts {
  command: number;
  stop: number;
  start: number;
  upgrade: number;
  stream: number;
  catchUp: number;
  replay: number;
  promote: number;
  rejoin: number;
  /** How long the poolers' PAUSE may wait for the transactions in flight (a long one holds it). */
  pause: number;
  /**
   * From the watchdog's arming (before the poolers are paused) to the moment it takes the run
   * back unless the promotion was claimed: the outage's bound when the operator's process dies.
   * Longer than the window takes (about a second) by far; a live run slower than that is taken
   * back too (safely: it then stops, the old primary serving).
   */
  watchdog: number;
  /** How long a forward-only step keeps retrying; each attempt has the step's own deadline. */
  persist: number;
  /** Pause between two attempts of a step that only goes forward. */
  retryBackoff: number;
  /** How often a wait polls. */
  poll: number;
  /**
   * How often the replay gate polls: on the outage, where the clients wait for it, a look
   * missed by one pause cost 50 ms of the write outage (seen in the lab).
   */
  outagePoll: number;
}

export const productionTimeouts: Timeouts = {
  command: 30_000,
  stop: 60_000,
  start: 60_000,
  upgrade: 600_000,
  stream: 60_000,
  catchUp: 60_000,
  replay: 30_000,
  promote: 60_000,
  rejoin: 3_600_000,
  pause: 5_000,
  watchdog: 60_000,
  persist: 900_000,
  retryBackoff: 1_000,
  poll: 50,
  outagePoll: 10,
};

/**
 * Fault rehearsals in the lab: production's shape, short enough that a hung command costs
 * seconds, not minutes, and long enough for the lab's real work (an upgrade takes ~10 s).
 */
export const labFaultTimeouts: Timeouts = {
  command: 10_000,
  stop: 30_000,
  start: 30_000,
  upgrade: 90_000,
  stream: 30_000,
  catchUp: 30_000,
  replay: 15_000,
  promote: 30_000,
  rejoin: 300_000,
  pause: 5_000,
  watchdog: 20_000,
  persist: 60_000,
  retryBackoff: 1_000,
  poll: 50,
  outagePoll: 10,
};

/** Simulated runs: production's proportions, scaled to the simulator's durations. */
export const simTimeouts: Timeouts = {
  command: 2000,
  stop: 3000,
  start: 3000,
  upgrade: 5000,
  stream: 3000,
  catchUp: 3000,
  replay: 2000,
  promote: 3000,
  rejoin: 10_000,
  pause: 1000,
  watchdog: 4000,
  persist: 20_000,
  retryBackoff: 200,
  poll: 20,
  // The simulator's looks cost no host's time: as often as its other waits.
  outagePoll: 20,
};

/**
 * How a host command's deadline is kept on the host itself (hosts/shell.ts underDeadline): it is
 * sent TERM at `termMs` and KILL `killAfterMs` later, so that it is gone a margin before the
 * deadline passes here (the margin covers the channel's latency and the wrapper's own steps).
 * The plan's step and the command share the deadline (the table above): when the step's passes,
 * its command is gone on the host too.
 */
export function hostDeadline(deadlineMs: number): { termMs: number; killAfterMs: number } {
  const marginMs = Math.min(5000, Math.round(deadlineMs * 0.05));
  const killAfterMs = Math.min(5000, Math.round(deadlineMs * 0.1));
  return { termMs: Math.max(1, deadlineMs - marginMs - killAfterMs), killAfterMs };
}

/**
 * A command's own wait (pg_ctl -t, the stop and promote polls), in whole seconds: it ends before
 * the host's TERM, so the command says what it waited for rather than being cut off.
 */
export function ownWaitS(deadlineMs: number): number {
  return Math.max(1, Math.floor(hostDeadline(deadlineMs).termMs / 1000) - 1);
}
