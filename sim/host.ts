import { sleep } from "../core/clock.ts";
import type { NodeName } from "../core/executor.ts";
import { type HostAction, node, type SimNode } from "./model.ts";
import { POOLER, type World } from "./world.ts";

/**
 * What a host does to its PostgreSQL server by itself, per host kind (model.ts `HostKind`): the
 * package scripts of an upgrade, a reboot, the boot. And the shutdown and the start that every
 * stopper and starter shares: a command, the package scripts, systemd.
 *
 * Where the model simplifies, and what real behaviour that hides:
 * - A reboot is a clean `systemctl reboot`: systemd stops postgresql@15-main with its ExecStop
 *   (`pg_ctlcluster -m fast stop`), so the shutdown checkpoint is written and shipped to a
 *   connected standby. A power loss or a hard reset is a crash instead, with no shutdown
 *   checkpoint (the `crash` fault, though that one is not followed by a boot). On a pg_ctl host
 *   without a unit the init's SIGTERM asks for a *smart* shutdown, which a client's session can
 *   hold up until the SIGKILL that follows: a crash too. Both kinds are stopped fast here.
 * - A frozen host reboots only once it thaws: a hung host that is reset is a crash, not this.
 * - The boot starts an `auto` cluster as soon as the host is up; systemd really waits for its
 *   ordering (network-online.target) and may give up after TimeoutStartSec.
 * - The package scripts are one stop and one start of the node's one cluster. Really prerm
 *   stops every cluster of the version, one after another, and postinst starts every `auto` one
 *   in turn; a cluster that fails to start fails the postinst and leaves the package
 *   half-configured. Here a cluster without a data directory is simply not started.
 * - A command whose host reboots under it fails ("connection lost") and its effect stops there.
 *   A reboot during an upgrade leaves the old version installed (really dpkg may leave the
 *   package half-configured, `dpkg --configure -a` pending). pg_rewind interrupted so leaves
 *   the target directory unusable for real; here it is unchanged (after a failed rewind the
 *   plan takes a base backup into a new directory either way).
 * - The VIP, added with `ip addr add`, goes with the host's network at the end of the shutdown,
 *   and the boot does not add it again (no keepalived, no network configuration names it).
 */

/** Simulated durations (ms), in the proportions of the real operations; each drawn per use (World.duration). */
export const CHECKPOINT_BASE = 20;
export const CHECKPOINT_PER_PAGE = 0.2;
export const START = 60;
export const CRASH_RECOVERY = 200;
export const UPGRADE = 1500;
const POLL = 10;

/** The host went down under a command: its session, and the command's reply, are lost. */
export class HostLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostLost";
  }
}

/** Lets `ms` pass on a host; a frozen host makes no progress until it thaws. */
export type Pass = (ms: number) => Promise<void>;

/** Time for what runs in a session on the host (a command, the package scripts, a boot's start). */
export interface Session {
  /** Rejects with HostLost if the host went down meanwhile. */
  pass: Pass;
  /** Waits for work that outlives the session (a shutdown), then answers as `pass` does. */
  during<T>(work: Promise<T>): Promise<T>;
}

export function session(world: World, name: NodeName): Session {
  const lostIfRebooted = (boots: number) => {
    const n = node(world.state, name);
    if (n.boots !== boots || !n.hostUp)
      throw new HostLost(`${name}: connection lost (the host went down)`);
  };
  return {
    pass: async (ms) => {
      const boots = node(world.state, name).boots;
      await sleep(world.clock, ms);
      await world.whenThawed(name);
      lostIfRebooted(boots);
    },
    during: async (work) => {
      const boots = node(world.state, name).boots;
      const result = await work;
      lostIfRebooted(boots);
      return result;
    },
  };
}

/** Time for the postmaster itself: its shutdown goes on when the host goes down around it. */
function serverTime(world: World, name: NodeName): Pass {
  return async (ms) => {
    await sleep(world.clock, ms);
    await world.whenThawed(name);
  };
}

/** Whether the host starts this server by itself (boot, package scripts): start.conf `auto`. */
export function startsByItself(n: SimNode): boolean {
  return n.hostKind === "debian" && n.hostUp && !n.fenced && n.hasData && n.process === "stopped";
}

/**
 * A fast shutdown, whoever asked for it (`pg_ctl stop -m fast`, the unit's ExecStop): a primary
 * writes its shutdown checkpoint and its walsenders ship it to the connected standbys before
 * the postmaster exits, so pg_control already says "shut down" during that window. A shutdown
 * already under way is waited for, not begun again. Resolves once the postmaster has exited.
 */
export async function shutDown(world: World, name: NodeName, by?: HostAction): Promise<void> {
  const pass = serverTime(world, name);
  const n = world.node(name);
  if (n.process === "stopped") return;
  if (n.process === "stopping") {
    while (world.node(name).process === "stopping") await pass(POLL);
    return;
  }
  world.emit(by ? { type: "stopping", node: name, by } : { type: "stopping", node: name });
  if (!n.inRecovery) {
    await pass(world.duration(CHECKPOINT_BASE + n.dirty * CHECKPOINT_PER_PAGE));
    if (world.node(name).process !== "stopping") return;
    const record = world.newRecord(name, "shutdown", 114);
    world.emit({ type: "checkpointed", node: name, record, state: "shut down" });
    if (world.streamingStandbys(name).length > 0) await pass(world.state.receiveLagMs + 1);
  }
  if (world.node(name).process === "stopping")
    world.emit({ type: "stopped", node: name, clean: true });
}

/**
 * Starts a stopped server: in recovery if standby.signal is there (a standby of its configured
 * upstream), else as a primary. A start by the host itself (`by`) still honours a fence set
 * while it was under way.
 */
export async function startServer(
  world: World,
  name: NodeName,
  pass: Pass,
  by?: HostAction,
): Promise<void> {
  const n = world.node(name);
  await pass(world.duration(START + (n.control.state === "in production" ? CRASH_RECOVERY : 0)));
  const m = world.node(name);
  if (m.process !== "stopped" || (by !== undefined && !startsByItself(m))) return;
  world.emit(by ? { type: "started", node: name, by } : { type: "started", node: name });
}

/**
 * `apt-get install postgresql-15=<version>`. On a debian host the maintainer scripts stop the
 * cluster (prerm) and start it again (postinst) unless start.conf says `manual`, whatever its
 * state before: a cluster stopped on purpose comes back, as a primary unless standby.signal is
 * there. On a pg_ctl host nothing stops or starts it: a running server keeps its old binaries.
 */
export async function upgradePackages(
  world: World,
  name: NodeName,
  version: string,
  s: Session,
): Promise<void> {
  const debian = node(world.state, name).hostKind === "debian";
  if (debian && world.node(name).process !== "stopped")
    await s.during(shutDown(world, name, "packageScripts"));
  await s.pass(world.duration(UPGRADE));
  world.emit({ type: "upgraded", node: name, version });
  if (debian && startsByItself(world.node(name)))
    await startServer(world, name, s.pass, "packageScripts");
}

/**
 * `systemctl reboot` on `name`'s host: from its start the host answers no command; systemd
 * stops the server (a fast shutdown), then the network goes and the VIP with it. `boot` is
 * called once the downtime is over: the host comes up as soon as its shutdown has ended, and on
 * a debian host systemd starts the cluster unless it is fenced; on a pg_ctl host nothing
 * starts. `atOnce`: the server starts at the same moment (the run is over, nothing is waiting).
 */
export function reboot(world: World, name: NodeName): { boot(atOnce: boolean): void } {
  let shutDownEnded = false;
  let bootAsked: boolean | null = null;
  const bootWhenReady = () => {
    if (!shutDownEnded || bootAsked === null) return;
    world.emit({ type: "hostUp", node: name });
    if (!startsByItself(world.node(name))) return;
    if (bootAsked) return world.emit({ type: "started", node: name, by: "boot" });
    startServer(world, name, session(world, name).pass, "boot").catch(ignoreHostLost);
  };
  const goDown = async () => {
    await world.whenThawed(name);
    // Another reboot got there first while the host was frozen: that one boots it.
    if (!world.node(name).hostUp) return;
    world.emit({ type: "hostDown", node: name });
    await shutDown(world, name, "reboot");
    if (world.node(name).vip)
      world.emit({ type: "vip", node: name, bound: false, announce: false });
    shutDownEnded = true;
    bootWhenReady();
  };
  void goDown();
  return {
    boot: (atOnce) => {
      if (bootAsked !== null) return;
      bootAsked = atOnce;
      bootWhenReady();
    },
  };
}

/**
 * The run's watchdog, `arms`-th armed, when its time comes (hosts/watchdog.ts): unless a later
 * arm replaced it, a reboot ended it, or the decision was taken (the run claimed the promotion,
 * or ended), it takes the run back: decides `watchdog` (the run's later commands there are
 * refused), waits for a shutdown under way, starts the server (unfenced), puts the VIP up with
 * a gratuitous ARP, and RESUMEs the pooler if it reaches it. A frozen host fires it as it thaws.
 * It first waits for the run's commands on the host to end, as the real one waits for their pid
 * files. What that hides: a real command is gone at its deadline (killed on the host), and the
 * real watchdog waits at most 60 s; a simulated command runs to its end, and is waited for.
 */
export async function watchdogFires(world: World, arms: number): Promise<void> {
  const armed = world.state.watchdog;
  if (armed?.arms !== arms) return;
  const name = armed.node;
  await world.whenThawed(name);
  const w = world.state.watchdog;
  const n = world.node(name);
  if (w?.arms !== arms || w.decision !== null || n.boots !== w.boots || !n.hostUp) return;
  world.emit({ type: "watchdog", watchdog: { ...w, decision: "watchdog" } });
  const s = session(world, name);
  try {
    // The run's commands on the host end first (those still on their way are refused there).
    while (world.commandsRunning(name) > 0 || world.node(name).process === "stopping")
      await s.pass(POLL);
    if (world.node(name).fenced) world.emit({ type: "fenced", node: name, fenced: false });
    const m = world.node(name);
    if (m.process === "stopped" && m.hasData) await startServer(world, name, s.pass);
    if (world.node(name).process !== "running") return;
    world.emit({ type: "vip", node: name, bound: true, announce: true });
    const p = world.state.pooler;
    if (p?.up && p.paused && world.connected(name, POOLER))
      world.emit({ type: "pooler", change: { paused: false } });
  } catch (e) {
    ignoreHostLost(e);
  }
}

function ignoreHostLost(e: unknown): void {
  if (!(e instanceof HostLost)) throw e;
}
