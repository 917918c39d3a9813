import { describe, expect, it } from "vitest";
import { connectDocker } from "../lab/engine.ts";
import { labStatus } from "../lab/lifecycle.ts";
import { LAB_LABEL } from "../lab/topology.ts";
import type { RealRunReport } from "../verify/run-report.ts";
import { labEnvironment } from "./support/lab-env.ts";
import { switchoverCli } from "./support/switchover-cli.ts";

/**
 * The whole switchover against the real lab, as a user runs it: `switchover rehearse` (15.18 →
 * 15.20 with apt-get while a client writes through the VIP), `run --lab`, and the classic
 * runbook for comparison: on stock Debian hosts (the default), where its upgrade of the stopped
 * old primary brings it back as a second primary, and on pg_ctl hosts, where nothing starts it.
 * Each rehearsal starts from a fresh lab at 15.18.
 */
const MINUTE = 60_000;
const { skip } = await labEnvironment("rehearsal tests");

const switchover = (args: string[]) => switchoverCli(args, 15 * MINUTE);

async function report(args: string[]): Promise<RealRunReport> {
  const r = await switchover(args);
  if (r.code !== 0) process.stderr.write(r.stderr.slice(-4000));
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as RealRunReport;
}

describe.skipIf(skip)("rehearsal against the lab (real PostgreSQL 15.18 → 15.20)", () => {
  it(
    "verified plan: no write lost, both nodes on 15.20, timeline 2, the old primary rejoined directly and streams",
    async () => {
      const r = await report(["rehearse", "--json", "--keep"]);
      expect(r).toMatchObject({
        plan: "verified",
        status: "done",
        verdict: "ok",
        lostWrites: 0,
        versions: { node1: "15.20", node2: "15.20" },
        timeline: 2,
        rejoin: { method: "direct", bytesCopied: 0 },
      });
      expect(r.acked).toBeGreaterThan(1000);
      expect(r.steps.map((s) => s.name)).toEqual(
        expect.arrayContaining(["upgradeStandby", "waitStandbyReplayed", "promoteStandby"]),
      );
      const lab = await labStatus();
      expect(lab.vip.holder).toBe("node2");
      const node = (name: string) => lab.nodes.find((n) => n.name === name);
      expect(node("node2")).toMatchObject({ role: "primary", timeline: 2, version: "15.20" });
      expect(node("node1")).toMatchObject({
        role: "standby",
        walReceiver: "streaming",
        timeline: 2,
        version: "15.20",
        // Fenced while it was down, started again as a standby: start.conf back to auto.
        hostKind: "debian",
        startConf: "auto",
        fenced: false,
      });
    },
    15 * MINUTE,
  );

  it(
    "run --lab switches the upgraded pair back without the built-in client",
    async () => {
      const r = await report(["run", "--lab", "--yes", "--json"]);
      expect(r).toMatchObject({ status: "done", verdict: "ok", timeline: 3, acked: 0 });
      expect((await labStatus()).vip.holder).toBe("node1");
    },
    10 * MINUTE,
  );

  it(
    "seed plan on stock Debian: the old primary's upgrade starts it again as a second primary",
    async () => {
      const run = await switchover(["rehearse", "--json", "--plan", "seed"]);
      expect(run.code).toBe(1);
      const r = JSON.parse(run.stdout) as RealRunReport;
      expect(r).toMatchObject({ plan: "seed", verdict: "violated" });
      const check = (kind: string) => r.checks.find((c) => c.kind === kind)?.verdict;
      expect(check("splitBrain")).toBe("violated");
    },
    15 * MINUTE,
  );

  it(
    "seed plan on pg_ctl hosts (the classic runbook): rejoins by a full base backup; lab down leaves nothing",
    async () => {
      const r = await report(["rehearse", "--json", "--plan", "seed", "--host", "pg_ctl"]);
      expect(r).toMatchObject({ plan: "seed", status: "done", timeline: 2 });
      expect(r.rejoin?.method).toBe("baseBackup");
      expect(r.rejoin?.bytesCopied).toBeGreaterThan(1024 * 1024);
      const docker = await connectDocker();
      const filters = { label: [`${LAB_LABEL}=1`] };
      expect(await docker.listContainers({ all: true, filters })).toEqual([]);
      expect(await docker.listNetworks({ filters })).toEqual([]);
      expect((await docker.listVolumes({ filters })).Volumes ?? []).toEqual([]);
    },
    15 * MINUTE,
  );
});
