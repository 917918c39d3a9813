import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { systemClock } from "../core/clock.ts";
import type { Executor } from "../core/executor.ts";
import { labFaultTimeouts, type Timeouts } from "../core/timeouts.ts";
import { waitFor } from "../core/wait.ts";
import { execInContainer } from "../hosts/transports/docker-exec.ts";
import { dockerExecutor } from "../lab/docker-executor.ts";
import { connectDocker } from "../lab/engine.ts";
import { labUp } from "../lab/lifecycle.ts";
import { LAYOUTS, labNode, labTopology } from "../lab/topology.ts";
import { freshLab, labEnvironment } from "./support/lab-env.ts";

/**
 * A command past its deadline is gone on the host, and a retry never starts while the earlier
 * attempt may still run: a hung upgrade (apt-get held up in a dpkg hook while it holds the dpkg
 * lock) and a hung base backup (its source frozen), each past its deadline, in the real lab.
 */

const MINUTE = 60_000;
const VERSIONS = { from: "15.18", to: "15.20" };
const topology = labTopology();
const progress = (line: string) => process.stderr.write(`  lab: ${line}\n`);
const DATA = LAYOUTS[topology.hostKind].dataDir;
const HOOK = "/etc/apt/apt.conf.d/99pg-switchover-test-hang";

const { skip, problem } = await labEnvironment("hung command lab tests");

describe.skipIf(skip)("hung commands (real containers)", () => {
  freshLab(() => labUp(VERSIONS, progress), progress, problem);
  let docker: Docker;
  const executor = (t: Partial<Timeouts>): Executor & { close(): void } =>
    dockerExecutor(docker, topology, { ...labFaultTimeouts, ...t });

  async function sh(node: "node1" | "node2", script: string): Promise<string> {
    docker ??= await connectDocker();
    const r = await execInContainer(
      docker,
      labNode(topology, node).container,
      ["sh", "-c", script],
      {
        deadlineMs: 30_000,
      },
    );
    if (r.exitCode !== 0) throw new Error(`${script}: exit ${r.exitCode}: ${r.stderr}`);
    return r.stdout;
  }
  /** The command lines of every process on the node whose line matches `pattern` (ERE). */
  const processes = async (node: "node1" | "node2", pattern: string) =>
    (
      await sh(
        node,
        `for p in /proc/[0-9]*; do tr '\\0' ' ' <"$p/cmdline" 2>/dev/null; echo; done | grep -E ${`'${pattern}'`} | grep -v grep || true`,
      )
    )
      .split("\n")
      .filter((l) => l.trim() !== "");
  const systemId = async (node: "node1" | "node2", dir: string) =>
    (
      await sh(
        node,
        `LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D ${dir} | sed -n 's/^Database system identifier: *//p'`,
      )
    ).trim();

  it(
    "a hung upgrade is stopped on the host at its deadline; a retry waits for an attempt still running, then upgrades",
    async () => {
      docker ??= await connectDocker();
      // Fresh package lists first, so that the upgrade below takes the lab's usual seconds.
      await sh("node2", "apt-get update -q >/dev/null");
      // apt-get holds its lock while its update hook runs: a hung upgrade, as a mirror that
      // stopped answering makes one.
      await sh("node2", `echo 'APT::Update::Pre-Invoke { "sleep 600"; };' > ${HOOK}`);
      const short = executor({ upgrade: 8_000 });
      const started = Date.now();
      const hung = await short.upgradePackages("node2", VERSIONS.to);
      const took = Date.now() - started;
      short.close();
      expect(hung.ok).toBe(false);
      expect(hung.ok ? "" : hung.reason).toMatch(/stopped on the host at its deadline/);
      expect(took).toBeLessThan(8_000);
      expect(await processes("node2", "apt-get|dpkg|sleep 600")).toEqual([]);

      // An attempt the operator abandoned (its step's deadline passed here, its channel closed)
      // still runs on the host until its own deadline: the retry waits for it to be gone.
      const long = executor({ upgrade: 20_000 });
      const abandoned = new AbortController();
      const first = long.upgradePackages("node2", VERSIONS.to, { signal: abandoned.signal });
      await waitFor(
        async () => ((await processes("node2", "sleep 600")).length > 0 ? true : undefined),
        { clock: systemClock, everyMs: 100, deadlineMs: 15_000 },
      );
      abandoned.abort();
      await expect(first).rejects.toThrow();
      await sh("node2", `rm -f ${HOOK}`);
      const retry = executor({ upgrade: 240_000 });
      const retried = Date.now();
      const upgraded = await retry.upgradePackages("node2", VERSIONS.to);
      const waited = Date.now() - retried;
      long.close();
      if (!upgraded.ok)
        process.stderr.write(
          `${await processes("node2", "apt|dpkg|sleep|timeout")}\n${await sh("node2", "tail -n 5 /run/pg-switchover/commands/* 2>&1 || true")}\n`,
        );
      expect(upgraded).toEqual({ ok: true });
      // The first attempt is stopped ~17 s (20 s less the margins) after it began: the retry
      // waited for that, so it took longer than the upgrade alone.
      expect(waited).toBeGreaterThan(8_000);
      expect(await processes("node2", "apt-get|dpkg|sleep 600")).toEqual([]);
      const status = await retry.status("node2");
      retry.close();
      expect(status).toMatchObject({ ok: true, version: VERSIONS.to });
      process.stderr.write(
        `  hung upgrade stopped after ${took} ms (deadline 8000: ${hung.ok ? "" : hung.reason}); retry waited, then upgraded, in ${waited} ms\n`,
      );
    },
    6 * MINUTE,
  );

  it(
    "a hung base backup is stopped at its deadline: no pg_basebackup left, the data and its set-aside copy intact, the retry swaps",
    async () => {
      docker ??= await connectDocker();
      const x = executor({ rejoin: 60_000 });
      expect(await x.stopPostgres("node2", { mode: "fast", fence: false })).toEqual({ ok: true });
      // A first rebuild: the standby's data goes aside as <data>.old.
      const first = await x.baseBackup("node2", "node1");
      expect(first.ok).toBe(true);
      // Copies of one primary share its system identifier: a file in each tells them apart.
      await sh(
        "node2",
        `touch ${DATA}/pgs-current ${DATA}.old/pgs-aside && chown postgres: ${DATA}/pgs-current ${DATA}.old/pgs-aside`,
      );
      const current = await systemId("node2", DATA);
      // Its source freezes mid-copy: the next base backup hangs.
      const node1 = docker.getContainer(labNode(topology, "node1").container);
      const hungX = executor({ rejoin: 6_000 });
      await node1.pause();
      let hung: Awaited<ReturnType<Executor["baseBackup"]>>;
      const started = Date.now();
      try {
        hung = await hungX.baseBackup("node2", "node1");
      } finally {
        await node1.unpause();
      }
      const took = Date.now() - started;
      hungX.close();
      expect(hung.ok).toBe(false);
      expect(hung.ok ? "" : hung.reason).toMatch(/stopped on the host at its deadline/);
      expect(took).toBeLessThan(6_000);
      expect(await processes("node2", "pg_basebackup")).toEqual([]);
      expect(await systemId("node2", DATA)).toBe(current);
      await sh(
        "node2",
        `test -e ${DATA}/pgs-current && test -e ${DATA}.old/pgs-aside && test -f ${DATA}.old/PG_VERSION`,
      );
      // The retry: a fresh copy swapped in, the one it replaced kept aside.
      const again = await x.baseBackup("node2", "node1");
      expect(again.ok).toBe(true);
      await sh("node2", `test ! -e ${DATA}/pgs-current && test -e ${DATA}.old/pgs-current`);
      expect(await x.startPostgres("node2")).toEqual({ ok: true });
      x.close();
      process.stderr.write(`  hung base backup stopped after ${took} ms (deadline 6000)\n`);
    },
    3 * MINUTE,
  );
});
