import { z } from "zod";

/**
 * The inventory of a production pair, as an operator writes it in YAML: how to reach each host
 * over SSH, where its PostgreSQL lives, the VIP, and the plan's settings. Only what the host
 * commands (hosts/commands.ts) can run is accepted: anything else is refused by name.
 */
const nonEmpty = z.string().trim().min(1, "expected a non-empty string");
const absolutePath = z
  .string()
  .regex(/^\/[^\s'"]*$/, "expected an absolute path without spaces or quotes");
const port = z.number().int().min(1).max(65535);
const ipv4 = z.ipv4("expected an IPv4 address");
/** A hostname or address: what ssh and libpq accept, nothing a shell would read. */
const hostName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, "expected a hostname or an IPv4 address");
const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*$/, "expected a lower-case SQL identifier (letters, digits, _)");
const minorVersion = z.string().regex(/^\d+\.\d+$/, 'expected a minor version such as "15.20"');

/** How Postgres is started, stopped and fenced on a host (hosts/control.ts). */
const control = z.enum(["systemd", "pg_ctlcluster", "pg_ctl"], {
  error:
    'expected "systemd" (stock Debian/Ubuntu), "pg_ctlcluster" (postgresql-common without systemd) or "pg_ctl"',
});

/** A postgresql-common cluster as pg_lsclusters names it: "15/main". */
const cluster = z
  .string()
  .regex(
    /^\d+\/[A-Za-z0-9_.][A-Za-z0-9_.]*$/,
    'expected a cluster such as "15/main" (version/name)',
  );

const sshSettings = z.strictObject({
  /** Where sshd listens (default: the node's address). */
  host: hostName.optional(),
  port: port.default(22),
  user: nonEmpty.regex(/^[a-z_][a-z0-9_-]*$/, "expected a login name"),
  /** A private key file (relative paths are relative to the inventory), or the SSH agent. */
  key: nonEmpty.optional(),
  agent: z.boolean().default(false),
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
    persist: z.number().int().positive(),
  })
  .partial();

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
      interface: z.string().regex(/^[A-Za-z0-9_.:-]+$/, "expected a network interface name"),
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
      /** The target minor version; apt-get installs the packages at its Debian version. */
      version: minorVersion,
    }),
    ssh: z
      .strictObject({
        /** OpenSSH known_hosts (relative: to the inventory); default ~/.ssh/known_hosts. */
        knownHosts: nonEmpty.optional(),
        /** Reach Postgres through an SSH tunnel when its port is not reachable from here. */
        tunnel: z.boolean().default(false),
        connectTimeoutMs: z.number().int().positive().default(10_000),
      })
      .prefault({}),
    timeouts: timeouts.prefault({}),
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
    }
  });

export type InventoryFile = z.infer<typeof inventorySchema>;
