import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import ssh2 from "ssh2";
import { stringify } from "yaml";
import type { Progress } from "../core/progress.ts";
import { type HostSpec, shellQuote } from "../hosts/commands.ts";
import { stateDir } from "../hosts/state-dir.ts";
import { describeFailure, execInContainer } from "../hosts/transports/docker-exec.ts";
import { labPooler } from "./pooler.ts";
import type { LabStatus } from "./status.ts";
import { labCluster, NODE_NAMES, PG, type Topology } from "./topology.ts";

/**
 * The lab as production: each host accepts SSH logins of a `deploy` user with a key `lab up`
 * generates, and may sudo without a password, as on hosts where root cannot log in; a
 * known_hosts holds the hosts' own keys, read through `docker exec` (not over SSH), so host
 * key verification is real; and an inventory describes the pair for `switchover run --inventory`.
 */
export const LAB_LOGIN = "deploy";

export const labFiles = () => {
  const dir = stateDir("lab");
  return {
    dir,
    key: join(dir, "id_ed25519"),
    publicKey: join(dir, "id_ed25519.pub"),
    knownHosts: join(dir, "known_hosts"),
    inventory: join(dir, "inventory.yaml"),
  };
};

const EXEC_DEADLINE_MS = 30_000;

export async function ensureLabSsh(
  docker: Docker,
  topology: Topology,
  status: LabStatus,
  targetVersion: string,
  progress: Progress,
): Promise<string> {
  const f = labFiles();
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  if (!existsSync(f.key) || !existsSync(f.publicKey)) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "pg-switchover lab" });
    // Written whole, then renamed into place: a run reading the key never sees half of one.
    writeFileSync(`${f.key}.new`, pair.private, { mode: 0o600 });
    writeFileSync(`${f.publicKey}.new`, `${pair.public}\n`);
    renameSync(`${f.publicKey}.new`, f.publicKey);
    renameSync(`${f.key}.new`, f.key);
    progress(`generated the lab's SSH key ${f.key}`);
  }
  chmodSync(f.key, 0o600);
  const publicKey = readFileSync(f.publicKey, "utf8").trim();
  const known: string[] = [];
  for (const name of NODE_NAMES) {
    const node = topology.nodes[name];
    const r = await execInContainer(docker, node.container, ["sh", "-c", loginSetup(publicKey)], {
      deadlineMs: EXEC_DEADLINE_MS,
    });
    if (r.exitCode !== 0) {
      throw new Error(
        `${node.container}: setting up the ${LAB_LOGIN} login: ${describeFailure(r, EXEC_DEADLINE_MS)}`,
      );
    }
    for (const line of r.stdout.split("\n")) {
      const [type, key] = line.trim().split(/\s+/);
      if (type && key) known.push(`${node.address} ${type} ${key}`);
    }
  }
  writeFileSync(f.knownHosts, `${known.join("\n")}\n`, { mode: 0o600 });
  writeFileSync(f.inventory, labInventory(topology, status, targetVersion));
  progress(`lab inventory (SSH as ${LAB_LOGIN}, host keys in known_hosts): ${f.inventory}`);
  return f.inventory;
}

/** Idempotent: the user, its one authorized key, its sudo rule; prints the host's public keys. */
function loginSetup(publicKey: string): string {
  const home = `/home/${LAB_LOGIN}`;
  return [
    "set -e",
    `id ${LAB_LOGIN} >/dev/null 2>&1 || useradd -m -s /bin/sh ${LAB_LOGIN}`,
    // "*": no password to log in with, yet not a locked account (sshd refuses those keys too).
    `usermod -p '*' ${LAB_LOGIN}`,
    `install -d -m 700 -o ${LAB_LOGIN} -g ${LAB_LOGIN} ${home}/.ssh`,
    `echo ${shellQuote(publicKey)} > ${home}/.ssh/authorized_keys`,
    `chown ${LAB_LOGIN}:${LAB_LOGIN} ${home}/.ssh/authorized_keys && chmod 600 ${home}/.ssh/authorized_keys`,
    // The executor keeps a shell open per user (`sudo -n sh`, `sudo -n -u postgres sh`): systemctl,
    // start.conf, apt-get and ip as root; pg_ctl, psql and the data directory as postgres.
    `echo '${LAB_LOGIN} ALL=(root,postgres) NOPASSWD: ALL' > /etc/sudoers.d/pg-switchover-${LAB_LOGIN}`,
    `chmod 440 /etc/sudoers.d/pg-switchover-${LAB_LOGIN}`,
    "cat /etc/ssh/ssh_host_*_key.pub",
  ].join("\n");
}

/**
 * The lab's inventory: primary is the node holding the VIP now. A Debian host needs only its
 * cluster (paths follow from it, as on any stock server); a pg_ctl host spells out its own.
 */
function labInventory(topology: Topology, status: LabStatus, targetVersion: string): string {
  const c = labCluster(topology);
  const primary = status.vip.holder ?? "node1";
  const node = (h: HostSpec) => {
    const ssh = { user: LAB_LOGIN, key: "id_ed25519" };
    if (h.control.mode !== "pg_ctl") {
      const { version, name } = h.control.cluster;
      return { address: h.address, ssh, control: h.control.mode, cluster: `${version}/${name}` };
    }
    const { name: _name, control, ...paths } = h;
    return {
      ...paths,
      ssh,
      control: control.mode,
      ...(control.configFile ? { configFile: control.configFile } : {}),
    };
  };
  const inventory = {
    nodes: Object.fromEntries(c.nodes.map((h) => [h.name, node(h)])),
    primary,
    standby: c.nodes.find((n) => n.name !== primary)?.name ?? "node2",
    vip: { address: c.vip.address, prefix: c.vip.prefix, interface: c.vip.device },
    postgres: {
      superuser: c.superuser,
      replicationUser: c.replicationUser,
      database: PG.database,
      packages: c.packages,
    },
    upgrade: { version: targetVersion },
    ssh: { knownHosts: "known_hosts" },
    ...(status.pooler ? { poolers: [labPooler(topology)] } : {}),
  };
  return `# Written by \`switchover lab up\`: the Docker lab as a production pair.\n${stringify(inventory)}`;
}

export function removeLabSsh(progress: Progress): void {
  const { dir } = labFiles();
  if (!existsSync(dir)) return;
  rmSync(dir, { recursive: true, force: true });
  progress(`removed ${dir} (the lab's SSH key, known_hosts and inventory)`);
}
