import { z } from "zod";
import { isTargetVersion, TARGET_VERSION_SHAPE } from "../../core/debian-version.ts";
import { DEFAULT_HOOK_DEADLINE_MS, HOOK_NAMES, hookPolicies } from "../../core/hooks.ts";

/**
 * The inventory of a production pair, as an operator writes it in YAML: how to reach each host
 * over SSH, where its PostgreSQL lives, the VIP, and the plan's settings. Only what the host
 * commands (hosts/commands.ts) can run is accepted: anything else is refused by name.
 */
const nonEmpty = z.string().trim().min(1, "expected a non-empty string");
/**
 * Every value below that reaches a host command is quoted there (hosts/shell.ts shellQuote) and
 * checked here for what it means. A path: absolute, each segment a name (no `.`, `..` or empty
 * one, so `<data>.new` and `<data>.old` are siblings of the data directory), no control
 * character, and none of `" $ \` \\`, which pg_ctl's own shell line (-D "…", -l "…") would read.
 */
const absolutePath = z
  .string()
  .refine(
    (p) =>
      p.length <= 4096 &&
      /^(\/[^/\p{Cc}\p{Cs}"$`\\]+)+$/u.test(p) &&
      p.split("/").every((seg) => seg !== "." && seg !== ".." && seg.length <= 255),
    'expected an absolute path (no ".", ".." or empty segment, no trailing /, no control character, none of " $ ` \\)',
  );
const port = z.number().int().min(1).max(65535);
const ipv4 = z.ipv4("expected an IPv4 address");
/** A hostname or address: what ssh and libpq accept, nothing a shell would read. */
const hostName = z
  .string()
  .regex(
    /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    "expected a hostname or an IPv4 address",
  );
const identifier = z
  .string()
  .regex(
    /^[a-z_][a-z0-9_]{0,62}$/,
    "expected a lower-case SQL identifier (letters, digits, _; at most 63)",
  );
const targetVersion = z.string().refine(isTargetVersion, `expected ${TARGET_VERSION_SHAPE}`);

/** How Postgres is started, stopped and fenced on a host (hosts/control.ts). */
const control = z.enum(["systemd", "pg_ctlcluster", "pg_ctl"], {
  error:
    'expected "systemd" (stock Debian/Ubuntu), "pg_ctlcluster" (postgresql-common without systemd) or "pg_ctl"',
});

/** A postgresql-common cluster as pg_lsclusters names it: "15/main". */
const cluster = z
  .string()
  .regex(
    /^\d{1,3}\/(?!\.\.?$)[A-Za-z0-9_.][A-Za-z0-9_.-]{0,62}$/,
    'expected a cluster such as "15/main" (version/name; the name of letters, digits, _ . -, not "." or "..")',
  );

const login = {
  port: port.default(22),
  user: nonEmpty.regex(/^[a-z_][a-z0-9_-]{0,31}$/, "expected a login name"),
  /** A private key file (relative paths are relative to the inventory), or the SSH agent. */
  key: nonEmpty.optional(),
  agent: z.boolean().default(false),
};

/** A bastion the node is reached through (OpenSSH's ProxyJump): its own login and host key. */
const jumpHost = z.strictObject({ host: hostName, ...login });

const sshSettings = z.strictObject({
  /** Where sshd listens (default: the node's address). */
  host: hostName.optional(),
  ...login,
  /** Through a bastion (default: the top-level ssh.jump, if any). */
  jump: jumpHost.optional(),
});

/**
 * Paths left out follow from the control mode: a postgresql-common cluster's from its version
 * and name (bin, data, config, log); a pg_ctl host's from Debian's layout for 15/main.
 */
const node = z.strictObject({
  /** Where the other node and the clients reach this host's Postgres. */
  address: hostName,
  ssh: sshSettings,
  control: control.default("systemd"),
  /** systemd and pg_ctlcluster only (default "15/main"). */
  cluster: cluster.optional(),
  pgBin: absolutePath.optional(),
  dataDir: absolutePath.optional(),
  /** pg_ctl only: a postgresql.conf outside the data directory. */
  configFile: absolutePath.optional(),
  port: port.default(5432),
  socketDir: absolutePath.default("/var/run/postgresql"),
  logFile: absolutePath.optional(),
  osUser: identifier.default("postgres"),
});

const timeouts = z
  .strictObject({
    command: z.number().int().positive(),
    stop: z.number().int().positive(),
    start: z.number().int().positive(),
    upgrade: z.number().int().positive(),
    stream: z.number().int().positive(),
    catchUp: z.number().int().positive(),
    replay: z.number().int().positive(),
    promote: z.number().int().positive(),
    rejoin: z.number().int().positive(),
    pause: z.number().int().positive(),
    watchdog: z.number().int().positive(),
    persist: z.number().int().positive(),
  })
  .partial();

/** A command on the operator's machine at a moment of the run (core/hooks.ts): a line, or in full. */
const hook = z.union(
  [
    nonEmpty,
    z.strictObject({
      run: nonEmpty,
      /** Seconds before its process group is killed. */
      deadline: z
        .number()
        .positive()
        .default(DEFAULT_HOOK_DEADLINE_MS / 1000),
      onFailure: z.enum(["continue", "rollback"]).optional(),
    }),
  ],
  { error: 'expected a command line, or {run, deadline, onFailure: "continue" | "rollback"}' },
);

/**
 * A PgBouncer in front of the VIP (its [databases] pointing at the VIP), reached directly from
 * the operator's machine: the plan pauses `database` before the VIP goes down and resumes it on
 * the new primary. `adminUser` must be in its admin_users.
 */
const pooler = z.strictObject({
  host: hostName,
  port: port.default(6432),
  adminUser: nonEmpty.regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, "expected a user name"),
  /** As the pooler's [databases] names it: what PAUSE and RESUME take. */
  database: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "expected a pooled database name (letters, digits, _)"),
});

export const inventorySchema = z
  .strictObject({
    nodes: z
      .record(z.string().regex(/^[a-z][a-z0-9_-]*$/, "expected a node name"), node)
      .refine((n) => Object.keys(n).length === 2, "expected exactly two nodes"),
    primary: nonEmpty,
    standby: nonEmpty,
    vip: z.strictObject({
      address: ipv4,
      prefix: z.number().int().min(1).max(32),
      interface: z
        .string()
        .regex(
          /^(?!-)(?!\.\.?$)[A-Za-z0-9_.-]{1,15}$/,
          "expected a network interface name (at most 15 letters, digits, _ . -)",
        ),
    }),
    postgres: z
      .strictObject({
        superuser: identifier.default("postgres"),
        replicationUser: identifier.default("replicator"),
        database: identifier.default("postgres"),
        /** Default: postgresql-V and postgresql-client-V, V the clusters' version (15). */
        packages: z
          .array(z.string().regex(/^[a-z0-9][a-z0-9.+-]*$/, "expected a Debian package name"))
          .min(1)
          .optional(),
      })
      .prefault({}),
    upgrade: z.strictObject({
      /** A bare release, resolved on each host by pre-flight (apt-cache madison), or a full version. */
      version: targetVersion,
    }),
    ssh: z
      .strictObject({
        /** OpenSSH known_hosts (relative: to the inventory); default ~/.ssh/known_hosts. */
        knownHosts: nonEmpty.optional(),
        /** A bastion for every node without its own. */
        jump: jumpHost.optional(),
        /** Reach Postgres through an SSH tunnel when its port is not reachable from here. */
        tunnel: z.boolean().default(false),
        connectTimeoutMs: z.number().int().positive().default(10_000),
      })
      .prefault({}),
    timeouts: timeouts.prefault({}),
    poolers: z.array(pooler).default([]),
    hooks: z.partialRecord(z.enum(HOOK_NAMES), hook).default({}),
    /** Pre-flight refuses to start when the standby lags more, or a disk has less free. */
    maxLagBytes: z
      .number()
      .int()
      .nonnegative()
      .default(16 * 1024 * 1024),
    minFreeBytes: z
      .number()
      .int()
      .nonnegative()
      .default(1024 ** 3),
  })
  .superRefine((inv, ctx) => {
    const names = Object.keys(inv.nodes);
    for (const role of ["primary", "standby"] as const) {
      if (!names.includes(inv[role]))
        ctx.addIssue({
          code: "custom",
          path: [role],
          message: `expected one of the nodes (${names.join(", ")})`,
        });
    }
    for (const [name, h] of Object.entries(inv.hooks)) {
      const allowed = hookPolicies(name as (typeof HOOK_NAMES)[number]).allowed;
      if (typeof h === "object" && h.onFailure && !allowed.includes(h.onFailure))
        ctx.addIssue({
          code: "custom",
          path: ["hooks", name, "onFailure"],
          message: `expected ${allowed.map((a) => `"${a}"`).join(" or ")} (only beforeVipDown can still roll back)`,
        });
    }
    if (inv.primary === inv.standby)
      ctx.addIssue({ code: "custom", path: ["standby"], message: "expected the other node" });
    for (const [name, n] of Object.entries(inv.nodes)) {
      const at = (field: string) => ["nodes", name, field];
      if (n.control === "pg_ctl" && n.cluster)
        ctx.addIssue({
          code: "custom",
          path: at("cluster"),
          message: `a postgresql-common cluster is run by control systemd or pg_ctlcluster, not pg_ctl`,
        });
      if (n.control !== "pg_ctl" && n.configFile)
        ctx.addIssue({
          code: "custom",
          path: at("configFile"),
          message: `control ${n.control} reads the cluster's own /etc/postgresql/<version>/<name>/postgresql.conf`,
        });
      if (!n.ssh.key && !n.ssh.agent)
        ctx.addIssue({
          code: "custom",
          path: ["nodes", name, "ssh"],
          message: "expected a key file (key:) or agent: true",
        });
      const jump = n.ssh.jump ?? inv.ssh.jump;
      if (jump && !jump.key && !jump.agent)
        ctx.addIssue({
          code: "custom",
          path: n.ssh.jump ? ["nodes", name, "ssh", "jump"] : ["ssh", "jump"],
          message: "expected a key file (key:) or agent: true",
        });
    }
  });

export type InventoryFile = z.infer<typeof inventorySchema>;
