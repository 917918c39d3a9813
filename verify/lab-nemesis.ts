import type Docker from "dockerode";
import type { Executor } from "../core/executor.ts";
import { silent } from "../core/progress.ts";
import { execInContainer } from "../hosts/transports/docker-exec.ts";
import { withDeadline } from "../lab/engine.ts";
import { ensureNodeRunning, inspectContainer } from "../lab/nodes.ts";
import { LAYOUTS, type NodeName, type Topology } from "../lab/topology.ts";
import type { PlanSpec } from "../plan/spec.ts";
import type { RunNemesis } from "../run/driver.ts";
import {
  CommandFaults,
  closingStep,
  describeFault,
  type Fault,
  leadsOnlyTo,
  type Role,
  type Trigger,
} from "./sim-nemesis.ts";

/**
 * The faults the lab can strike for real: the simulator's vocabulary (crash, freeze, partition,
 * slow replication, a command that fails or hangs, a reboot: the container stopped, which
 * systemd takes as a clean shutdown, then started, a boot), less the operator's death, plus two
 * that only a real host has: the host losing power (the container killed, then started), and a
 * package upgrade that cannot run.
 */
export type LabFault =
  | Exclude<Fault, { kind: "operatorDies" }>
  | { kind: "hostDown"; node: Role; at: Trigger; forMs: number }
  | { kind: "upgradeFails"; at: Trigger; forMs: number };

export function describeLabFault(f: LabFault): string {
  const when = `${f.at.delayMs} ms into ${f.at.step}`;
  switch (f.kind) {
    case "crash":
      return `the ${f.node}'s postmaster is killed (kill -9) ${when}`;
    case "hostDown":
      return `the ${f.node}'s host loses power (container killed) for ${f.forMs} ms ${when}`;
    case "reboot":
      return `the ${f.node}'s host reboots (container stopped, started ${f.downMs} ms later) ${when}`;
    case "slowReplication":
      // The kernel here has no sch_netem: a bandwidth cap (HTB) between the nodes slows it instead.
      return `replication is throttled to ${THROTTLE} for ${f.forMs} ms ${when}`;
    case "upgradeFails":
      return `package upgrades fail on both hosts (dpkg's lock held) for ${f.forMs} ms ${when}`;
    case "commandFails":
    case "commandHangs":
      return `${f.at.step}'s first command ${f.kind === "commandFails" ? "fails" : "hangs"}`;
    default:
      return describeFault(f);
  }
}

const THROTTLE = "256kbit";
/** Deadline of one nemesis action on the engine or in a container. */
const ACTION_MS = 20_000;
/**
 * A reboot's shutdown: docker stop gives systemd this long (then kills), and a shutdown during
 * an apt-get install waits for dpkg: seen taking over 20 s. The nemesis waits it out.
 */
const SHUTDOWN_S = 70;
/** Holds dpkg's frontend lock (fcntl, as apt takes it) for $ARGV[0] seconds. */
const HOLD_DPKG_LOCK = `open(my $f, ">>", "/var/lib/dpkg/lock-frontend") or die "open: $!";
my $l = pack("ssx4qqix4", F_WRLCK, 0, 0, 0, 0);
fcntl($f, F_SETLK, $l) or die "lock: $!";
sleep($ARGV[0]);`;
const LOCK_PID = "/run/pg-switchover-nemesis-dpkg-lock.pid";

export interface Struck {
  /** ms since the nemesis was made. */
  t: number;
  /** When (ms since the epoch): a run's timeline places it by its own origin. */
  at: number;
  /** The step the plan was in when the fault struck (or was dropped). */
  step: string;
  fault: string;
  /** What became of it: struck, dropped (run over, or its closing step), or failed (why). */
  outcome: string;
}

/**
 * Strikes lab faults on the plan's step events and heals them when their time is up, or all at
 * once when the run ends (before the checkers look). Every action has a deadline; a strike that
 * cannot be carried out is recorded, not thrown.
 */
export class LabNemesis implements RunNemesis {
  readonly log: Struck[] = [];
  private readonly commands = new CommandFaults();
  private readonly heals = new Map<string, () => Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly pending: LabFault[];
  /** Aimed, waiting for their delay: recorded as dropped if the run ends first. */
  private readonly scheduled = new Set<LabFault>();
  private readonly origin = Date.now();
  private step = "";
  private over = false;

  constructor(
    private readonly docker: Docker,
    private readonly topology: Topology,
    private readonly roles: Record<Role, NodeName>,
    private readonly spec: PlanSpec,
    faults: readonly LabFault[],
  ) {
    this.pending = [...faults];
  }

  wrap(x: Executor): Executor {
    return this.commands.wrap(x);
  }

  onStep(step: string): void {
    this.step = step;
    for (const f of this.pending.filter((f) => f.at.step === step)) {
      this.pending.splice(this.pending.indexOf(f), 1);
      // No delay: now, before the step's effect issues its first command (a command fault hits it).
      if (f.at.delayMs === 0) void this.strike(f);
      else {
        this.scheduled.add(f);
        this.later(f.at.delayMs, () => this.strike(f));
      }
    }
  }

  /** The run is over: nothing strikes any more, and every fault still in force ends. */
  async heal(): Promise<void> {
    this.over = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const f of this.scheduled) this.record(f, "dropped: the run ended first");
    this.scheduled.clear();
    this.commands.arm(null);
    for (const heal of [...this.heals.values()]) await heal();
  }

  private later(ms: number, act: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void act();
    }, ms);
    this.timers.add(timer);
  }

  private record(f: LabFault, outcome: string): void {
    const fault = describeLabFault(f);
    this.log.push({ t: Date.now() - this.origin, at: Date.now(), step: this.step, fault, outcome });
  }

  private async strike(f: LabFault): Promise<void> {
    this.scheduled.delete(f);
    if (this.over || finishing(this.spec, this.step)) return this.record(f, "dropped");
    try {
      await this.act(f);
      this.record(f, "struck");
    } catch (e) {
      this.record(f, `failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async act(f: LabFault): Promise<void> {
    switch (f.kind) {
      case "commandFails":
      case "commandHangs":
        return this.commands.arm(f.kind === "commandFails" ? "fails" : "hangs");
      case "crash":
        // The postmaster's pid is the first line of postmaster.pid; no server, nothing to kill.
        return this.sh(
          f.node,
          `pid=$(head -1 ${LAYOUTS[this.topology.hostKind].dataDir}/postmaster.pid 2>/dev/null) || exit 0; kill -9 "$pid"`,
        );
      case "hostDown":
      case "reboot": {
        const c = this.container(f.node);
        // A stop is systemd's clean shutdown (SIGRTMIN+3), a kill a power loss; the start boots.
        const reboot = f.kind === "reboot";
        await engine(
          reboot ? c.stop({ t: SHUTDOWN_S }) : c.kill(),
          `${reboot ? "stop" : "kill"} ${c.id}`,
          reboot ? (SHUTDOWN_S + 20) * 1000 : ACTION_MS,
        );
        const downMs = reboot ? f.downMs : f.forMs;
        return this.healAfter(downMs, `host:${f.node}`, () => this.restart(f.node));
      }
      case "freeze": {
        const c = this.container(f.node);
        await engine(c.pause(), `pause ${c.id}`);
        return this.healAfter(f.forMs, `freeze:${f.node}`, () =>
          engine(c.unpause(), `unpause ${c.id}`),
        );
      }
      case "partition":
        return this.partition(f.between, f.forMs);
      case "slowReplication": {
        const to = this.address("standby");
        await this.sh(
          "primary",
          `tc qdisc add dev eth0 root handle 1: htb default 1 && tc class add dev eth0 parent 1: classid 1:1 htb rate 10gbit && tc class add dev eth0 parent 1: classid 1:2 htb rate ${THROTTLE} && tc filter add dev eth0 parent 1: protocol ip u32 match ip dst ${to}/32 flowid 1:2`,
        );
        return this.healAfter(f.forMs, "throttle", () =>
          this.sh("primary", "tc qdisc del dev eth0 root 2>/dev/null; true"),
        );
      }
      case "upgradeFails": {
        // The holder ends by itself shortly after forMs, should the heal never run.
        const seconds = Math.ceil(f.forMs / 1000) + 5;
        const hold = `perl -MFcntl -e "$0" "$1" >/dev/null 2>&1 & echo $! > ${LOCK_PID}`;
        for (const r of ROLES) await this.sh(r, hold, [HOLD_DPKG_LOCK, String(seconds)]);
        return this.healAfter(f.forMs, "dpkgLock", async () => {
          for (const r of ROLES) await this.sh(r, `kill $(cat ${LOCK_PID}) 2>/dev/null; true`);
        });
      }
    }
  }

  /** Blackhole routes: inside a node to the other node, or to the gateway (this host: the client). */
  private async partition(between: "nodes" | "client-primary" | "client-standby", forMs: number) {
    const cuts: Array<[Role, string]> =
      between === "nodes"
        ? [
            ["primary", this.address("standby")],
            ["standby", this.address("primary")],
          ]
        : [[between === "client-primary" ? "primary" : "standby", this.topology.gateway]];
    for (const [r, to] of cuts) await this.sh(r, `ip route add blackhole ${to}/32`);
    return this.healAfter(forMs, `link:${between}`, async () => {
      for (const [r, to] of cuts)
        await this.sh(r, `ip route del blackhole ${to}/32 2>/dev/null; true`);
    });
  }

  private healAfter(ms: number, key: string, heal: () => Promise<unknown>): void {
    let done = false;
    const once = async () => {
      if (done) return;
      done = true;
      this.heals.delete(key);
      try {
        await heal();
      } catch (e) {
        this.log.push({
          t: Date.now() - this.origin,
          at: Date.now(),
          step: this.step,
          fault: key,
          outcome: `heal failed: ${e instanceof Error ? e.message : String(e)}`,
        });
      }
    };
    this.heals.set(key, once);
    this.later(ms, once);
  }

  /** Starts a stopped (or paused) node's container again and waits for its entrypoint. */
  private async restart(r: Role): Promise<void> {
    const name = this.roles[r];
    const info = await inspectContainer(this.docker, this.topology.nodes[name].container);
    if (info?.State.Paused) await engine(this.container(r).unpause(), "unpause");
    const image = info?.Config.Image ?? "";
    await withDeadline(
      ensureNodeRunning(this.docker, this.topology, name, image, silent),
      200_000,
      `restarting ${name}`,
    );
  }

  private container(r: Role): Docker.Container {
    return this.docker.getContainer(this.topology.nodes[this.roles[r]].container);
  }

  private address(r: Role): string {
    return this.topology.nodes[this.roles[r]].address;
  }

  private async sh(r: Role, script: string, args: string[] = []): Promise<void> {
    const c = this.topology.nodes[this.roles[r]].container;
    const res = await execInContainer(this.docker, c, ["sh", "-c", script, ...args], {
      deadlineMs: ACTION_MS,
    });
    if (res.exitCode !== 0) {
      const said = (res.stderr || res.stdout).trim().slice(-300);
      throw new Error(`${c}: ${res.timedOut ? "timed out" : `exit ${res.exitCode}`} ${said}`);
    }
  }
}

const ROLES: Role[] = ["primary", "standby"];

/**
 * The closing step, or one that only leads there. As in the simulator, a fault is dropped in the
 * closing step: it would land after the plan's last look. In the lab a strike takes 0.1–0.3 s to
 * land (a docker exec), so one struck in the step before would land there too.
 */
export function finishing(spec: PlanSpec, step: string): boolean {
  if (!spec.steps[step] || closingStep(spec, step)) return true;
  return leadsOnlyTo(spec, step, (t) => closingStep(spec, t));
}

function engine<T>(p: Promise<T>, what: string, ms = ACTION_MS): Promise<T> {
  return withDeadline(p, ms, what);
}
