import Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { silent } from "../core/progress.ts";
import type { HostCommand } from "../hosts/commands.ts";
import { describeFailure, runHostCommand } from "../hosts/transports/docker-exec.ts";
import { labHost } from "../lab/hosts.ts";
import { labStatus, labUp } from "../lab/lifecycle.ts";
import { ensureNodeRunning } from "../lab/nodes.ts";
import { labTopology, type NodeName } from "../lab/topology.ts";
import { freshLab, labEnvironment } from "./support/lab-env.ts";

/**
 * What the verified plan relies on of a stock Debian host, pinned against the real thing (the
 * lab's default host: systemd, postgresql-common, maintainer scripts live), so that a change in
 * Debian is noticed: upgrading postgresql-15 stops every cluster of 15 and starts every `auto`
 * one again, and a boot starts every `auto` one; a cluster fenced as the plan fences it
 * (start.conf manual while it runs, then the fast stop) stays down through both.
 */

const MINUTE = 60_000;
const VERSIONS = { from: "15.18", to: "15.20" };
const topology = labTopology("debian");
const progress = (line: string) => process.stderr.write(`  debian-host: ${line}\n`);
const { skip, problem } = await labEnvironment("Debian host tests");

const docker = new Docker();
const commands = (name: NodeName) => labHost(topology, name).commands;

async function sh(name: NodeName, cmd: HostCommand, deadlineMs = 5 * MINUTE): Promise<string> {
  const r = await runHostCommand(docker, topology.nodes[name].container, cmd, deadlineMs);
  if (r.exitCode !== 0)
    throw new Error(`${name}: ${cmd.script.slice(0, 120)}: ${describeFailure(r, deadlineMs)}`);
  return r.stdout;
}

const root = (script: string): HostCommand => ({ user: "root", script });

/** The node as `lab status` shows it. */
async function node(name: NodeName) {
  const n = (await labStatus()).nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no ${name} in lab status`);
  return n;
}

/** A reboot: the container restarted, then waited for until systemd has finished booting. */
async function reboot(name: NodeName): Promise<void> {
  const c = docker.getContainer(topology.nodes[name].container);
  await c.restart({ t: 70 });
  const image = (await c.inspect()).Config.Image;
  await ensureNodeRunning(docker, topology, name, image, silent);
}

describe.skipIf(skip)("a stock Debian host (the lab's default)", () => {
  const lab = freshLab(() => labUp(VERSIONS, progress), progress, problem);

  it("is a postgresql-common cluster run by systemd, as lab status says", async () => {
    expect(lab().hostKind).toBe("debian");
    for (const n of lab().nodes) {
      expect(n).toMatchObject({
        hostKind: "debian",
        control: "systemd",
        unit: "postgresql@15-main",
        startConf: "auto",
        fenced: false,
        postgres: "up",
      });
    }
    const facts = await sh(
      "node1",
      root(
        "test ! -e /usr/sbin/policy-rc.d && readlink /proc/1/exe && pg_lsclusters -h && systemctl is-enabled postgresql@15-main",
      ),
    );
    expect(facts).toMatch(/systemd/);
    expect(facts).toMatch(/^15 +main +5432 +online +postgres +\/var\/lib\/postgresql\/15\/main /m);
    // Wanted at boot through postgresql.service, by postgresql-common's generator (start.conf).
    expect(facts.trim().split("\n").at(-1)).toBe("enabled-runtime");
  });

  it(
    "fenced (start.conf manual) and stopped: an upgrade, an umbrella start and a reboot leave it down",
    async () => {
      expect(lab().vip.holder).toBe("node1");
      // As the verified plan does: the fence while it serves, then the fast stop.
      await sh("node1", commands("node1").fence);
      expect(await node("node1")).toMatchObject({ postgres: "up", fenced: true });
      await sh("node1", commands("node1").stop({ mode: "fast", fence: false }, 60));
      expect(await node("node1")).toMatchObject({
        postgres: "down",
        startConf: "manual",
        fenced: true,
      });
      expect(
        (await sh("node1", root("systemctl is-enabled postgresql@15-main || true"))).trim(),
      ).toBe("disabled");
      // systemd sent the SIGINT; the unit's ExecStop then found the cluster stopped (exit 2).
      const unit = await sh(
        "node1",
        root(
          'until ! systemctl is-active -q postgresql@15-main && [ "$(systemctl show -p ActiveState --value postgresql@15-main)" != deactivating ]; do sleep 0.05; done; systemctl show -p ActiveState,Result postgresql@15-main',
        ),
        MINUTE,
      );
      expect(unit).toMatch(/ActiveState=failed/);
      // Another operator's (or a tool's) start of every cluster.
      await sh("node1", root("systemctl start postgresql"));
      expect((await node("node1")).postgres).toBe("down");
      // The package's prerm stops every 15 cluster; its postinst starts every auto one.
      const upgrade = await sh("node1", commands("node1").upgrade(VERSIONS.to), 10 * MINUTE);
      expect(upgrade).toMatch(/Setting up postgresql-15 \(15\.20/);
      expect(await node("node1")).toMatchObject({
        postgres: "down",
        packageVersion: "15.20-0+deb12u1",
      });
      await reboot("node1");
      expect(await node("node1")).toMatchObject({ running: true, postgres: "down", fenced: true });
      // A reboot drops the VIP, as on a real host.
      expect((await labStatus()).vip.holders).toEqual([]);
    },
    15 * MINUTE,
  );

  it(
    "unfenced (start.conf auto) and stopped: the upgrade brings it up, and so does a reboot",
    async () => {
      await sh("node2", commands("node2").stop({ mode: "fast", fence: false }, 60));
      expect(await node("node2")).toMatchObject({ postgres: "down", startConf: "auto" });
      await sh("node2", commands("node2").upgrade(VERSIONS.to), 10 * MINUTE);
      expect(await node("node2")).toMatchObject({
        postgres: "up",
        version: "15.20",
        role: "standby",
      });
      await sh("node2", commands("node2").stop({ mode: "fast", fence: false }, 60));
      await reboot("node2");
      expect(await node("node2")).toMatchObject({ postgres: "up", role: "standby" });
      // The plan's start lifts the fence: start.conf auto again, and a reboot brings it back.
      await sh("node1", commands("node1").start(60));
      await sh("node1", commands("node1").stop({ mode: "fast", fence: false }, 60));
      expect(await node("node1")).toMatchObject({ postgres: "down", startConf: "auto" });
      await reboot("node1");
      expect(await node("node1")).toMatchObject({
        postgres: "up",
        role: "primary",
        version: "15.20",
        fenced: false,
      });
    },
    15 * MINUTE,
  );
});
