import type { HostSpec } from "./commands.ts";
import {
  clusterConfigDir,
  clusterUnit,
  type DebianCluster,
  fenceMarker,
  readStartConf,
} from "./control.ts";
import type { HostCommand } from "./shell.ts";

/**
 * What runs PostgreSQL on a host, as pre-flight sees it before anything changes: whether systemd
 * is the init, the postgresql-common clusters (pg_lsclusters) with their start.conf and unit.
 * Pre-flight refuses an inventory that says otherwise, naming the field.
 */
export interface ClusterFacts {
  version: string;
  name: string;
  port: number;
  /** pg_lsclusters' status: online, down, online,recovery … */
  status: string;
  owner: string;
  dataDir: string;
  /** start.conf's word, as the systemd generator reads it. */
  startConf: string;
  /** `systemctl is-enabled` / `is-active` of its unit; null without systemd. */
  unitEnabled: string | null;
  unitActive: string | null;
}

export interface HostFacts {
  systemd: boolean;
  clusters: ClusterFacts[];
}

/** Read-only, one line of shell (as a listing shows it); prints `key fields…` lines for parseHostFacts. */
export function hostFactsCommand(): HostCommand {
  return {
    user: "root",
    script: [
      "if [ -d /run/systemd/system ]; then s=yes; else s=no; fi",
      'echo "systemd $s"',
      "command -v pg_lsclusters >/dev/null || exit 0",
      `pg_lsclusters -h | while read -r v c port status owner data log; do echo "cluster $v $c $port $status $owner $data"; f=/etc/postgresql/$v/$c/start.conf; if [ -e "$f" ]; then w=$(${readStartConf('"$f"')}); else w=auto; fi; echo "startconf $v $c $w"; if [ $s = yes ]; then echo "unit $v $c $(systemctl is-enabled "postgresql@$v-$c" 2>/dev/null || true) $(systemctl is-active "postgresql@$v-$c" 2>/dev/null || true)"; fi; done`,
    ].join("; "),
  };
}

export function parseHostFacts(text: string): HostFacts {
  const facts: HostFacts = { systemd: false, clusters: [] };
  const find = (v?: string, c?: string) =>
    facts.clusters.find((x) => x.version === v && x.name === c);
  for (const line of text.split("\n")) {
    const [key, ...f] = line.trim().split(/\s+/);
    if (key === "systemd") facts.systemd = f[0] === "yes";
    if (key === "cluster" && f.length >= 6) {
      const [version, name, port, status, owner, dataDir] = f as [string, ...string[]];
      facts.clusters.push({
        version,
        name: name as string,
        port: Number(port),
        status: status as string,
        owner: owner as string,
        dataDir: dataDir as string,
        startConf: "auto",
        unitEnabled: null,
        unitActive: null,
      });
    }
    const c = find(f[0], f[1]);
    if (key === "startconf" && c) c.startConf = f[2] ?? "";
    if (key === "unit" && c) {
      c.unitEnabled = f[2] ?? "";
      c.unitActive = f[3] ?? "";
    }
  }
  return facts;
}

export interface ControlCheck {
  status: "ok" | "warn" | "fail";
  check: string;
  detail: string;
}

/**
 * Does the host run its server the way the inventory says? Pure: each rule is tested without a
 * host. A disagreement names the inventory's field.
 */
export function judgeControl(h: HostSpec, facts: HostFacts): ControlCheck[] {
  const check = `${h.name} control ${h.control.mode}`;
  const field = (f: string) => `field nodes.${h.name}.${f}`;
  const fail = (detail: string): ControlCheck[] => [{ status: "fail", check, detail }];
  const listed = facts.clusters.map((c) => `${c.version}/${c.name}`).join(", ") || "none";
  if (h.control.mode === "pg_ctl") {
    const owned = facts.clusters.find((c) => c.dataDir === h.dataDir);
    if (owned?.startConf === "auto")
      return fail(
        `${field("control")}: ${h.dataDir} is the postgresql-common cluster ${owned.version}/${owned.name} (start.conf auto): its package scripts and the boot start it and ignore ${fenceMarker(h)}; say control: ${facts.systemd ? "systemd" : "pg_ctlcluster"}, cluster: "${owned.version}/${owned.name}"`,
      );
    return [
      {
        status: "warn",
        check,
        detail: `the fence is ${fenceMarker(h)}: it holds across a reboot only if what starts this server at boot checks it (a unit: ConditionPathExists=!${fenceMarker(h)})`,
      },
    ];
  }
  const want: DebianCluster = h.control.cluster;
  const name = `${want.version}/${want.name}`;
  if (h.control.mode === "systemd" && !facts.systemd)
    return fail(
      `${field("control")}: systemd, but systemd does not run this host: say pg_ctlcluster`,
    );
  if (h.control.mode === "pg_ctlcluster" && facts.systemd)
    return fail(
      `${field("control")}: pg_ctlcluster, but systemd runs this host and starts the cluster through ${clusterUnit(want)}: say systemd`,
    );
  const c = facts.clusters.find((x) => x.version === want.version && x.name === want.name);
  if (!c) return fail(`${field("cluster")}: pg_lsclusters has no ${name} (it lists: ${listed})`);
  if (c.dataDir !== h.dataDir)
    return fail(`${field("dataDir")}: ${h.dataDir}, but ${name}'s data directory is ${c.dataDir}`);
  if (c.port !== h.port)
    return fail(`${field("port")}: ${h.port}, but ${name} listens on ${c.port}`);
  if (c.owner !== h.osUser)
    return fail(`${field("osUser")}: ${h.osUser}, but ${name} belongs to ${c.owner}`);
  if (c.startConf === "disabled")
    return fail(
      `${clusterConfigDir(want)}/start.conf says disabled: pg_ctlcluster refuses to start ${name}`,
    );
  const unit = clusterUnit(want);
  if (h.control.mode === "systemd") {
    if (c.unitEnabled === "enabled")
      return fail(
        `${unit} is enabled by hand: a boot starts it whatever start.conf says, so the fence cannot hold (systemctl disable ${unit}: postgresql.service starts the auto clusters)`,
      );
    if (c.unitEnabled === "masked") return fail(`${unit} is masked: the plan cannot start it`);
    if (c.status.startsWith("online") && c.unitActive !== "active")
      return fail(
        `${name} runs outside ${unit} (${c.unitActive}): systemctl stop would not stop it; stop it and start it with systemctl`,
      );
  }
  const fence = `fenced by start.conf manual (package scripts and boot start only auto clusters)`;
  return [
    c.startConf === "auto"
      ? { status: "ok", check, detail: `${name}, ${c.status}; ${fence}` }
      : {
          status: "warn",
          check,
          detail: `${name}: start.conf says ${c.startConf}; the plan sets it to auto when it starts the cluster`,
        },
  ];
}
