import { createHash } from "node:crypto";
import ssh2, { type Client, type ClientChannel } from "ssh2";
import { EnvironmentError } from "../../core/errors.ts";
import type { Executor, NodeName } from "../../core/executor.ts";
import type { Timeouts } from "../../core/timeouts.ts";
import { type HostCommand, type HostSpec, shellQuote } from "../commands.ts";
import { type CommandRunner, shellExecutor } from "../host-executor.ts";
import type { Inventory, SshEndpoint, SshTarget } from "../inventory/load.ts";
import { ShellSession, ShellSessions } from "../shell-session.ts";
import type { Endpoint } from "../writes.ts";
import { addKnownHost, checkHostKey, keyType, knownHostName } from "./known-hosts.ts";
import { KeyRing, type PassphraseSource } from "./ssh-keys.ts";
import { openTunnel, type Tunnel } from "./ssh-tunnel.ts";

/** A host's key is not the one known_hosts holds, or is not there: nothing runs on that host. */
export class HostKeyError extends EnvironmentError {
  override readonly name = "HostKeyError";
}

/** sshd refused us or could not be reached: nothing runs on that host. */
export class SshConnectError extends EnvironmentError {
  override readonly name = "SshConnectError";
}

export interface SshOptions {
  targets: Record<NodeName, SshTarget>;
  knownHosts: string;
  /** Trust on first use: an unknown host's key is written to knownHosts (a changed one never is). */
  acceptNewHostKeys: boolean;
  connectTimeoutMs: number;
  /** Hears of each command as it is sent (an audit trail: `SWITCHOVER_SSH_LOG`). */
  onSend?: (host: HostSpec, cmd: HostCommand) => void;
  /** Asks for an encrypted key's passphrase; without it such a key is refused, saying what to do. */
  passphrase?: PassphraseSource | null;
}

/**
 * What a host command becomes on the SSH channel: run as the login user when it is the command's
 * user, else through `sudo -n` (never a password prompt: a missing sudo rule fails at once).
 * `cd /` first, so a tool run as postgres does not complain of the login user's home directory.
 */
export function remoteCommand(login: string, host: HostSpec, cmd: HostCommand): string {
  const user = cmd.user === "postgres" ? host.osUser : "root";
  const sh = `sh -c ${shellQuote(cmd.script)}`;
  if (user === login) return `cd / && ${sh}`;
  return `cd / && sudo -n ${user === "root" ? "" : `-u ${shellQuote(user)} `}${sh}`;
}

/** The connection or the shell could not be opened: the command never left this machine. */
class NotSent extends Error {}

/**
 * sshd's default MaxSessions is 10: stay under it, whatever the plan and the sampler ask at once
 * (commands running, plus up to two idle shells per user).
 */
const MAX_CHANNELS = 6;

/**
 * One SSH connection per node, opened on first use and reused; on it, a shell kept open per user
 * (`sudo -n -u postgres sh`, `sudo -n sh`) runs the commands one at a time: a channel and a sudo
 * per command cost ~80 ms each, on the outage path. A connection that drops is opened again by
 * the next command.
 */
export class SshConnections {
  private readonly clients = new Map<NodeName, Promise<Client>>();
  private readonly slots = new Map<NodeName, { busy: number; waiting: (() => void)[] }>();
  private readonly shells = new ShellSessions();
  private readonly keys: KeyRing;

  constructor(private readonly o: SshOptions) {
    this.keys = new KeyRing(o.passphrase ?? null);
  }

  client(node: NodeName): Promise<Client> {
    let c = this.clients.get(node);
    if (!c) {
      c = this.connect(node);
      this.clients.set(node, c);
      c.catch(() => this.clients.delete(node));
    }
    return c;
  }

  /** Connects to every node (host keys checked): the run's reachability check. */
  async connectAll(): Promise<void> {
    await Promise.all(Object.keys(this.o.targets).map((n) => this.client(n)));
  }

  /**
   * A host that cannot be reached fails the command as OpenSSH's client does (exit 255): nothing
   * was sent, so the step may try again. A host key that is not the known one still stops the run.
   */
  readonly run: CommandRunner = async (host, cmd, deadlineMs, signal) => {
    await this.acquire(host.name);
    try {
      this.o.onSend?.(host, cmd);
      return await this.shells.run(
        host.name,
        cmd.user,
        cmd.script,
        deadlineMs,
        () =>
          this.openShell(host, cmd.user).catch((e: unknown) => {
            throw e instanceof SshConnectError ? new NotSent(e.message) : e;
          }),
        signal,
      );
    } catch (e) {
      if (e instanceof NotSent) return { code: 255, stdout: "", stderr: e.message };
      throw e;
    } finally {
      this.release(host.name);
    }
  };

  close(): void {
    this.shells.closeAll();
    for (const c of this.clients.values()) c.then((x) => x.end()).catch(() => {});
    this.clients.clear();
  }

  /** A shell as `user` on its own channel; it ends with the channel (or the connection). */
  private async openShell(host: HostSpec, user: HostCommand["user"]): Promise<ShellSession> {
    const node = host.name;
    const client = await this.client(node);
    const line = remoteCommand(this.target(node).user, host, { user, script: "exec sh" });
    return new Promise((resolve, reject) => {
      client.exec(line, (err, channel: ClientChannel) => {
        if (err)
          return reject(new SshConnectError(`${node}: cannot open an ssh channel: ${err.message}`));
        const session = new ShellSession(channel, () => channel.close());
        channel.setEncoding("utf8");
        channel.stderr.setEncoding("utf8");
        channel.on("data", (t: string) => session.received("out", t));
        channel.stderr.on("data", (t: string) => session.received("err", t));
        channel.on("error", (e: Error) => session.end(e));
        channel.on("close", () =>
          session.end(new SshConnectError(`${node}: the ssh shell as ${user} ended`)),
        );
        resolve(session);
      });
    });
  }

  private target(node: NodeName): SshTarget {
    const t = this.o.targets[node];
    if (!t) throw new Error(`no SSH settings for node "${node}"`);
    return t;
  }

  private async acquire(node: NodeName): Promise<void> {
    let s = this.slots.get(node);
    if (!s) {
      s = { busy: 0, waiting: [] };
      this.slots.set(node, s);
    }
    if (s.busy >= MAX_CHANNELS) await new Promise<void>((r) => s.waiting.push(r));
    s.busy++;
  }

  private release(node: NodeName): void {
    const s = this.slots.get(node);
    if (!s) return;
    s.busy--;
    s.waiting.shift()?.();
  }

  /** The node's connection: straight to its sshd, or through its bastion (ProxyJump). */
  private async connect(node: NodeName): Promise<Client> {
    const t = this.target(node);
    if (!t.jump) return this.open(node, node, t);
    const j = t.jump;
    const bastion = await this.open(node, `${node}'s jump host`, j);
    try {
      const sock = await new Promise<ClientChannel>((resolve, reject) =>
        bastion.forwardOut("127.0.0.1", 0, t.host, t.port, (err, channel) =>
          err
            ? reject(
                new SshConnectError(
                  `${node}: the jump host ${j.user}@${j.host} cannot reach ${t.host}:${t.port}: ${err.message}`,
                ),
              )
            : resolve(channel),
        ),
      );
      const client = await this.open(node, node, t, sock);
      client.on("close", () => bastion.end());
      return client;
    } catch (e) {
      bastion.end();
      throw e;
    }
  }

  /** One SSH connection, its host key checked against known_hosts under the name it was dialled by. */
  private async open(
    node: NodeName,
    label: string,
    t: SshEndpoint,
    sock?: ClientChannel,
  ): Promise<Client> {
    const name = knownHostName(t.host, t.port);
    const auth = t.keyFile ? await this.keys.load(t.keyFile) : null;
    let refused: string | null = null;
    const hostVerifier = (key: Buffer): boolean => {
      const seen = checkHostKey(this.o.knownHosts, name, key);
      if (seen.ok) return true;
      if (seen.why === "unknown" && this.o.acceptNewHostKeys) {
        addKnownHost(this.o.knownHosts, name, key);
        return true;
      }
      const fp = `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
      const shown = `${keyType(key)} ${fp}`;
      refused = {
        changed: `${label} (${name}): its host key (${shown}) is NOT the one in ${this.o.knownHosts}: the host was reinstalled, or someone is in the middle. Check it, then fix that file`,
        revoked: `${label} (${name}): its host key (${shown}) is @revoked in ${this.o.knownHosts}: nothing runs on it`,
        caOnly: `${label} (${name}): ${this.o.knownHosts} trusts this host only through an @cert-authority line, and host certificates cannot be verified here (the ssh2 library): add the host's own key (${shown}, once checked) as a plain line`,
        unknown: `${label} (${name}): unknown host key (${shown}), not in ${this.o.knownHosts}: check it and add it, or pass --accept-new-host-keys`,
      }[seen.why];
      return false;
    };
    const client = new ssh2.Client();
    return new Promise<Client>((resolve, reject) => {
      client.once("ready", () => {
        client.removeAllListeners("error");
        // A later transport error ends the connection; the next command opens a new one.
        client.on("error", () => this.clients.delete(node));
        client.on("close", () => this.clients.delete(node));
        resolve(client);
      });
      client.once("error", (e) => {
        if (refused) reject(new HostKeyError(refused));
        else reject(new SshConnectError(`${label}: ssh ${t.user}@${name}: ${e.message}`));
      });
      try {
        client.connect({
          host: t.host,
          port: t.port,
          username: t.user,
          ...(sock ? { sock } : {}),
          ...(auth ?? {}),
          ...(t.agent ? { agent: process.env.SSH_AUTH_SOCK } : {}),
          readyTimeout: this.o.connectTimeoutMs,
          keepaliveInterval: 5000,
          keepaliveCountMax: 3,
          hostVerifier,
        });
      } catch (e) {
        reject(new SshConnectError(`${label}: ssh ${t.user}@${name}: ${(e as Error).message}`));
      }
    });
  }
}

export interface SshExecutorOptions {
  acceptNewHostKeys?: boolean;
  /** The run's deadlines (default: the inventory's). */
  timeouts?: Timeouts;
  onSend?: SshOptions["onSend"];
  passphrase?: PassphraseSource | null;
}

export type SshExecutor = Executor & {
  connections: SshConnections;
  endpoint(target: NodeName | "vip"): Endpoint;
  close(): void;
};

/**
 * The Executor over SSH, from an inventory: the host commands of commands.ts on each node's own
 * connection, and clients (probes, the checkers' reads) reaching Postgres directly, or through
 * a tunnel over those connections when the inventory says the port is not reachable from here.
 */
export async function sshExecutor(
  inv: Inventory,
  o: SshExecutorOptions = {},
): Promise<SshExecutor> {
  const connections = new SshConnections({
    targets: inv.ssh,
    knownHosts: inv.knownHosts,
    acceptNewHostKeys: o.acceptNewHostKeys ?? false,
    connectTimeoutMs: inv.connectTimeoutMs,
    ...(o.onSend ? { onSend: o.onSend } : {}),
    passphrase: o.passphrase ?? null,
  });
  const c = inv.cluster;
  const direct: Record<string, { host: string; port: number }> = {
    vip: { host: c.vip.address, port: c.nodes[0]?.port ?? 5432 },
  };
  for (const n of c.nodes) direct[n.name] = { host: n.address, port: n.port };
  const tunnels: Tunnel[] = [];
  const reach = { ...direct };
  if (inv.tunnel) {
    const names = c.nodes.map((n) => n.name);
    for (const [target, to] of Object.entries(direct)) {
      // A node's port through its own host; the VIP through whichever host answers.
      const via = target === "vip" ? names : [target];
      const t = await openTunnel((i) => connections.client(via[i % via.length] as string), to);
      tunnels.push(t);
      reach[target] = { host: "127.0.0.1", port: t.port };
    }
  }
  const endpoint = (target: NodeName | "vip"): Endpoint => {
    const r = reach[target];
    if (!r) throw new Error(`no node "${target}" in the inventory`);
    return { ...r, user: c.superuser, database: c.database };
  };
  const executor = shellExecutor({
    cluster: c,
    run: connections.run,
    endpoint,
    timeouts: o.timeouts ?? inv.timeouts,
  });
  return Object.assign(executor, {
    connections,
    endpoint,
    close: () => {
      for (const t of tunnels) t.close();
      connections.close();
    },
  });
}
