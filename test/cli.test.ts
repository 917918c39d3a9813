import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ownWaitS, productionTimeouts } from "../core/timeouts.ts";
import { buildMachine } from "../plan/build.ts";
import { initialContext, newRunId } from "../plan/context.ts";
import type { JournalEntry } from "../plan/journal.ts";
import { seedPlan } from "../plan/runbook.ts";
import { branchesOf, type PlanSpec } from "../plan/spec.ts";
import { verifiedPlan } from "../plan/verified.ts";

/**
 * The CLI as a user sees it: `node bin/switchover.js …` in a child process, judged by its exit
 * code, its stdout and its stderr. Exit codes: 0 ok, 1 violated, 2 unknown, 3 usage error,
 * 4 a run rolled back.
 */
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = fileURLToPath(new URL("../bin/switchover.js", import.meta.url));

interface Exit {
  code: number;
  stdout: string;
  stderr: string;
}

function switchover(args: string[], deadlineMs = 90_000): Promise<Exit> {
  // Progress lines are part of what a user sees: make sure a quiet environment does not hide them.
  const { SWITCHOVER_QUIET: _quiet, ...env } = process.env;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env, timeout: deadlineMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          const why = error.killed ? `passed its ${deadlineMs} ms deadline` : error.message;
          reject(new Error(`switchover ${args.join(" ")} ${why}\n${stderr}`));
        } else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/** One run shared by the tests that look at it from different sides. */
function once(args: string[]): () => Promise<Exit> {
  let run: Promise<Exit> | undefined;
  return () => {
    run ??= switchover(args);
    return run;
  };
}

interface Report {
  plan: string;
  runs: number;
  seed: number;
  violations: number;
  unknown: number;
  byKind: Record<string, number>;
  outcomes: Record<string, number>;
  coverage: { struck: number; window: string[]; byStep: Record<string, Record<string, number>> };
  scenariosPerSecond: number;
  counterexample: {
    seed: number;
    path: string;
    faults: string[];
    violations: Array<{ kind: string; detail: string }>;
    trace: string[];
  } | null;
}

/** stdout must be one JSON value and nothing else: JSON.parse rejects anything around it. */
function report(exit: Exit): Report {
  return JSON.parse(exit.stdout) as Report;
}

const stepIds = (spec: PlanSpec) => Object.keys(spec.steps);

// 300 scenarios of the runbook from seed 1 find violations of every kind (in ~5 s). On pg_ctl
// hosts, where nothing starts a server by itself, each needs a fault; on stock Debian the
// runbook's own upgrade of the old primary makes two primaries (test/properties.test.ts).
const PG_CTL = ["--host", "pg_ctl"];
const SEED_RUN = ["simulate", "--runs", "300", "--seed", "1", "--plan", "seed", ...PG_CTL];
const seedJson = once([...SEED_RUN, "--json"]);
const seedJsonAgain = once([...SEED_RUN, "--json"]);
const seedText = once(SEED_RUN);

describe.concurrent("switchover simulate", () => {
  it("finds no violation of the verified plan, and says so in one JSON object", async () => {
    const args = ["simulate", "--runs", "300", "--seed", "1", "--plan", "verified", "--json"];
    const exit = await switchover(args);
    expect(exit.code).toBe(0);
    const r = report(exit);
    expect(r).toBeTypeOf("object");
    expect(Object.keys(r)).toEqual(
      expect.arrayContaining([
        "plan",
        "runs",
        "seed",
        "violations",
        "byKind",
        "scenariosPerSecond",
        "counterexample",
      ]),
    );
    expect(Object.keys(r.byKind).sort()).toEqual(["liveness", "lostWrite", "splitBrain", "stuck"]);
    expect(r).toMatchObject({ plan: "verified", runs: 300, seed: 1, violations: 0 });
    expect(r.byKind).toEqual({ lostWrite: 0, splitBrain: 0, stuck: 0, liveness: 0 });
    // Where the faults landed: most scenarios, most of them in the critical window.
    expect(r.coverage.struck).toBeGreaterThan(200);
    expect(r.coverage.window).toContain("promoteStandby");
    expect(r.coverage.byStep.promoteStandby?.commandFails).toBeGreaterThan(0);
    expect(r.counterexample).toBeNull();
    expect(r.scenariosPerSecond).toBeGreaterThan(0);
    // Every scenario ended one way or another.
    expect(Object.values(r.outcomes).reduce((a, b) => a + b, 0)).toBe(300);
  });

  it("finds violations of the runbook, with a counterexample that names the step and the fault", async () => {
    const exit = await seedJson();
    expect(exit.code).toBe(1);
    const r = report(exit);
    expect(r).toMatchObject({ plan: "seed", runs: 300, seed: 1 });
    expect(r.violations).toBeGreaterThan(0);
    const c = r.counterexample;
    expect(c).not.toBeNull();
    if (!c) return;
    expect(c.faults.length).toBeGreaterThan(0);
    expect(c.violations.length).toBeGreaterThan(0);
    for (const v of c.violations) {
      // The kind shown was counted, and the detail says what went wrong.
      expect(r.byKind[v.kind]).toBeGreaterThan(0);
      if (v.kind === "lostWrite") expect(v.detail).toMatch(/missing on node\d: w\d+/);
      if (v.kind === "splitBrain") expect(v.detail).toMatch(/both accepted writes/);
    }
    // The trace walks steps of the runbook, and shows each fault where it struck.
    const steps = c.trace.flatMap((t) => /\bstep (\w+)$/.exec(t)?.[1] ?? []);
    expect(steps.length).toBeGreaterThan(0);
    expect(stepIds(seedPlan)).toEqual(expect.arrayContaining(steps));
    for (const f of c.faults)
      expect(c.trace).toContainEqual(expect.stringContaining(`FAULT: ${f}`));
    // "… 12 ms (40%) into stopPrimary", "the first command of stopPrimary fails".
    const struck = c.faults.map((f) => / (?:into|command of) (\w+)/.exec(f)?.[1]);
    expect(stepIds(seedPlan)).toEqual(expect.arrayContaining(struck));
  });

  it("gives the same result for the same seed", async () => {
    const [first, second] = await Promise.all([seedJson(), seedJsonAgain()]);
    const { scenariosPerSecond: _a, ...a } = report(first);
    const { scenariosPerSecond: _b, ...b } = report(second);
    expect(b).toEqual(a);
    expect(second.code).toBe(first.code);
  });

  it("without --json, shows progress on stderr and the summary and counterexample on stdout", async () => {
    const [text, json] = await Promise.all([seedText(), seedJson()]);
    const r = report(json);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain(`simulate seed: 300/300 scenarios, ${r.violations} violated`);
    expect(text.stderr).not.toContain("verdict");
    expect(text.stdout).not.toContain("/300 scenarios");
    expect(text.stdout).toContain("plan seed: 300 scenarios from seed 1");
    expect(text.stdout).toContain(`violations: ${r.violations} (`);
    expect(text.stdout).toContain("counterexample");
    for (const v of r.counterexample?.violations ?? [])
      expect(text.stdout).toContain(`${v.kind}: ${v.detail}`);
    expect(text.stdout).toMatch(/^ +\d+ ms {2}FAULT: /m);
    expect(text.stdout.trimEnd().split("\n").at(-1)).toBe("verdict: violated");
  });

  it("replays the counterexample with the command it prints", async () => {
    const text = await seedText();
    const replay = /^ {2}replay: switchover (.+)$/m.exec(text.stdout)?.[1];
    expect(replay).toBeDefined();
    const again = await switchover((replay as string).split(" "));
    expect(again.code).toBe(1);
    const shown = (out: string) => /counterexample[\s\S]*?\n {2}trace:/.exec(out)?.[0];
    expect(shown(again.stdout)).toBeDefined();
    expect(shown(again.stdout)?.replace(/shrunk \d+ times/, "")).toBe(
      shown(text.stdout)?.replace(/shrunk \d+ times/, ""),
    );
    // A replay runs its one scenario, not a default number of them.
    expect(again.stderr).not.toMatch(/\d+\/\d+ scenarios/);
  });

  it("says ok in the human summary when nothing is violated", async () => {
    const exit = await switchover(["simulate", "--runs", "20", "--seed", "3"]);
    expect(exit.code).toBe(0);
    expect(exit.stdout).toContain("plan verified: 20 scenarios from seed 3");
    expect(exit.stdout).toMatch(
      /faults landed in \d+ scenarios \(\d+%\), \d+ in all, \d+% of them in the critical window \(vipDownPrimary … verifyWriteOnOldPrimary, 14 steps\)/,
    );
    expect(exit.stdout).not.toContain("counterexample");
    expect(exit.stdout.trimEnd().split("\n").at(-1)).toBe("verdict: ok");
    expect(exit.stderr).toContain("simulate verified: 20/20 scenarios, 0 violated");
  });
});

describe.concurrent("bad usage exits 3 with one line on stderr saying what is wrong", () => {
  it.each([
    [["simulate", "--bogus"], /'--bogus'/],
    [["simulate", "--runs", "abc"], /--runs .*"abc"/],
    [["simulate", "--runs", "0"], /--runs .*≥ 1.*"0"/],
    [["simulate", "--runs", "-5"], /--runs .*≥ 1.*"-5"/],
    [["simulate", "--runs=-5"], /--runs .*"-5"/],
    [["simulate", "--runs", "1.5"], /--runs .*"1\.5"/],
    [["simulate", "--runs"], /'--runs/],
    [["simulate", "--seed", "-1"], /--seed .*"-1"/],
    [["simulate", "--seed="], /--seed .*""/],
    [["simulate", "--plan", "nope"], /--plan .*verified, seed.*"nope"/],
    [["simulate", "--path", "abc"], /--path .*"abc"/],
    [["simulate", "extra"], /'extra'/],
    [["plan", "--format", "nope"], /--format .*text, json, mermaid.*"nope"/],
    [["plan", "--plan", "nope"], /--plan .*"nope"/],
    [["nope"], /unknown command "nope"/],
    [["rehearse", "--pooler", "--faults", "2"], /--pooler does not go with --faults/],
  ])("switchover %j", async (args, names) => {
    const exit = await switchover(args);
    expect(exit.code).toBe(3);
    expect(exit.stdout).toBe("");
    expect(exit.stderr.endsWith("\n")).toBe(true);
    expect(exit.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(exit.stderr).toMatch(/^switchover[ :]/);
    expect(exit.stderr).toMatch(names);
  });

  it("a missing command exits 3", async () => {
    expect((await switchover([])).code).toBe(3);
  });

  it("a missing command is named on stderr, with nothing on stdout", async () => {
    const exit = await switchover([]);
    expect(exit.stdout).toBe("");
    expect(exit.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(exit.stderr).toMatch(/command/);
  });
});

describe.concurrent("--help", () => {
  it.each([["--help"], ["-h"], ["help"]])("switchover %s lists the commands", async (flag) => {
    const exit = await switchover([flag]);
    expect(exit.code).toBe(0);
    expect(exit.stderr).toBe("");
    for (const command of ["plan", "simulate", "bench", "lab", "rehearse", "run"])
      expect(exit.stdout).toMatch(new RegExp(`^ {2}${command} +\\S`, "m"));
    expect(exit.stdout).toContain("Exit codes: 0 ok (a run: done), 1 a safety property violated");
    expect(exit.stdout).toContain("4 a run rolled back or stopped safely");
  });

  it.each([
    ["simulate", ["--runs N", "--seed S", "--plan P", "--host H", "--path P", "--json"]],
    ["plan", ["--plan verified|seed", "--format text|json|mermaid"]],
    ["rehearse", ["--pooler", "--direct P", "--json"]],
  ])("switchover %s --help explains its options, and runs nothing", async (command, options) => {
    for (const flag of ["--help", "-h"]) {
      const exit = await switchover([command, flag]);
      expect(exit.code).toBe(0);
      expect(exit.stderr).toBe("");
      expect(exit.stdout).toMatch(new RegExp(`^switchover ${command} — `));
      expect(exit.stdout).toContain(`Usage: switchover ${command} `);
      for (const o of options) expect(exit.stdout).toContain(o);
    }
  });
});

/** `plan --format text` cut into one block of lines per step, by step id. */
function stepBlocks(text: string): Map<string, string> {
  const blocks = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    const id = /^ ?\d+\. (\w+) — /.exec(line)?.[1];
    if (id) {
      current = [];
      blocks.set(id, current);
    }
    current?.push(line);
  }
  return new Map([...blocks].map(([id, lines]) => [id, lines.join("\n")]));
}

function stepsWith(spec: PlanSpec, actor: string): string[] {
  const ids = Object.entries(spec.steps)
    .filter(([, s]) => s.actor === actor)
    .map(([id]) => id);
  expect(ids.length).toBeGreaterThan(0);
  return ids;
}

/** The states and transitions of a Mermaid state diagram, as `plan --format mermaid` prints it. */
function diagram(text: string) {
  const states = new Set<string>();
  const edges: Array<[string, string]> = [];
  for (const line of text.split("\n")) {
    const nested = /^\s*state (\w+) \{$/.exec(line);
    if (nested?.[1]) states.add(nested[1]);
    const edge = /^\s*(\S+) --> (\S+?)(?::.*)?$/.exec(line);
    if (edge?.[1] && edge[2]) {
      for (const s of [edge[1], edge[2]]) if (s !== "[*]") states.add(s);
      edges.push([edge[1], edge[2]]);
    }
  }
  return { states, edges };
}

/** The context `switchover plan` renders its steps with. */
const planContext = initialContext({
  primary: "node1",
  standby: "node2",
  targetVersion: "15.20",
  timeouts: productionTimeouts,
  runId: newRunId(),
  maxLagBytes: 16 * 1024 * 1024,
});

describe.concurrent("switchover plan", () => {
  const planText = once(["plan", "--format", "text"]);

  it("lists the verified plan's steps in order, with the exact commands", async () => {
    const exit = await planText();
    expect(exit.code).toBe(0);
    expect(exit.stderr).toBe("");
    const blocks = stepBlocks(exit.stdout);
    expect([...blocks.keys()]).toEqual(stepIds(verifiedPlan));
    // The default hosts are stock Debian: the cluster's unit, and start.conf as the fence.
    for (const id of stepsWith(verifiedPlan, "stopPostgres"))
      expect(blocks.get(id)).toMatch(
        /kill -INT "\$p".* else systemctl kill --kill-whom=main --signal=SIGINT postgresql@15-main; fi; fi && /,
      );
    for (const id of stepsWith(verifiedPlan, "fence"))
      expect(blocks.get(id)).toMatch(/start\.conf.*systemctl daemon-reload/);
    for (const id of stepsWith(verifiedPlan, "stopPostgres").filter(
      (id) =>
        (verifiedPlan.steps[id]?.input(planContext) as { fence?: boolean } | undefined)?.fence,
    ))
      expect(blocks.get(id)).toMatch(/\/etc\/postgresql\/15\/main\/start\.conf/);
    for (const id of stepsWith(verifiedPlan, "confirmStopped"))
      expect(blocks.get(id)).toMatch(/\/pg_controldata -D \S+/);
    for (const id of stepsWith(verifiedPlan, "promote"))
      expect(blocks.get(id)).toMatch(/\/pg_ctl promote -D \S+/);
    for (const id of stepsWith(verifiedPlan, "vipDown"))
      expect(blocks.get(id)).toMatch(
        /ip addr del 192\.0\.2\.10\/24 dev eth0; fi; if .* is still bound/,
      );
    for (const id of stepsWith(verifiedPlan, "vipUp")) {
      expect(blocks.get(id)).toMatch(/ip addr add 192\.0\.2\.10\/24 dev eth0/);
      expect(blocks.get(id)).toMatch(/arping (-\w+ )*-U /);
    }
    // Each step says where it goes next and on failure, as the spec does.
    for (const [id, step] of Object.entries(verifiedPlan.steps)) {
      const next = branchesOf(step)
        .map((b) => b.target)
        .join(" | ");
      expect(blocks.get(id)).toContain(`next: ${next}; on failure: ${step.fail})`);
    }
  });

  it("prints the same steps as JSON", async () => {
    const exit = await switchover(["plan", "--format", "json"]);
    expect(exit.code).toBe(0);
    const plan = JSON.parse(exit.stdout) as {
      plan: string;
      initial: string;
      steps: Array<{ id: string; next: string[]; onFailure: string; commands: unknown[] }>;
    };
    expect(plan.plan).toBe("verified");
    expect(plan.initial).toBe(verifiedPlan.initial);
    expect(plan.steps.map((s) => s.id)).toEqual(stepIds(verifiedPlan));
    for (const s of plan.steps) {
      expect(s.commands.length).toBeGreaterThan(0);
      expect(s.onFailure).toBe(verifiedPlan.steps[s.id]?.fail);
    }
  });

  it.each(["systemd", "pg_ctl"])(
    "shows stop, start and promote with the production deadlines the executor sends them with (%s)",
    async (control) => {
      const exit = await switchover(["plan", "--format", "json", "--control", control]);
      expect(exit.code).toBe(0);
      const plan = JSON.parse(exit.stdout) as {
        steps: Array<{
          actor: string;
          commands: Array<{ call: string; script: string; deadlineMs: number | null }>;
        }>;
      };
      const commands = (actor: string, call: string) => {
        const found = plan.steps
          .filter((s) => s.actor === actor)
          .flatMap((s) => s.commands.filter((c) => c.call.startsWith(`${call}(`)));
        expect(found.length).toBeGreaterThan(0);
        return found;
      };
      // The commands' own waits end before the host stops them at their deadline (ownWaitS).
      const s = ownWaitS;
      // The stop and promote polls count hundredths of a second; pg_ctl start waits -t seconds.
      for (const c of commands("stopPostgres", "stopPostgres")) {
        expect(c.script).toContain(`if [ $n -gt ${s(productionTimeouts.stop) * 100} ]`);
        expect(c.deadlineMs).toBe(productionTimeouts.stop);
      }
      for (const c of commands("startPostgres", "startPostgres")) {
        // systemd's unit waits by itself (pg_ctlcluster start): the command's deadline bounds it.
        if (control === "pg_ctl")
          expect(c.script).toMatch(new RegExp(` -w -t ${s(productionTimeouts.start)} `));
        else expect(c.script).toContain("systemctl start postgresql@15-main");
        expect(c.deadlineMs).toBe(productionTimeouts.start);
      }
      const [promote] = commands("promote", "promote");
      expect(promote?.script).toContain(`if [ $n -gt ${s(productionTimeouts.promote) * 100} ]`);
      expect(promote?.deadlineMs).toBe(productionTimeouts.promote);
    },
  );

  it.each([
    ["verified", verifiedPlan],
    ["seed", seedPlan],
  ] as const)(
    "draws every state and transition of the %s plan's machine in Mermaid",
    async (name, spec) => {
      const exit = await switchover(["plan", "--plan", name, "--format", "mermaid"]);
      expect(exit.code).toBe(0);
      expect(exit.stdout.split("\n")[0]).toBe("stateDiagram-v2");
      const { states, edges } = diagram(exit.stdout);
      const machineStates = Object.keys(buildMachine(spec).states);
      expect(machineStates).toEqual(expect.arrayContaining(stepIds(spec)));
      expect([...states]).toEqual(expect.arrayContaining(machineStates));
      expect(edges).toContainEqual(["[*]", spec.initial]);
      // A retried step's attempts are drawn inside it, as `<step>_attempt`.
      const from = (id: string, to: string) =>
        edges.some(([a, b]) => (a === id || a.startsWith(`${id}_`)) && b === to);
      for (const [id, step] of Object.entries(spec.steps)) {
        for (const b of branchesOf(step))
          expect(from(id, b.target), `${id} → ${b.target}`).toBe(true);
        expect(from(id, step.fail), `${id} fails → ${step.fail}`).toBe(true);
      }
    },
  );

  it("shows the classic runbook for --plan seed: its own steps, no gratuitous ARP", async () => {
    const [seed, verified] = await Promise.all([
      switchover(["plan", "--plan", "seed"]),
      planText(),
    ]);
    expect(seed.code).toBe(0);
    expect(seed.stdout).not.toBe(verified.stdout);
    const blocks = stepBlocks(seed.stdout);
    expect([...blocks.keys()]).toEqual(stepIds(seedPlan));
    expect(seed.stdout.split("\n")[0]).toContain(seedPlan.title);
    for (const id of stepsWith(seedPlan, "vipUp")) expect(blocks.get(id)).not.toContain("arping");
  });
});

describe.concurrent("switchover report exits by how the journal's run ended", () => {
  const context = initialContext({
    primary: "node1",
    standby: "node2",
    targetVersion: "15.20",
    timeouts: productionTimeouts,
    runId: newRunId(),
    maxLagBytes: 1 << 20,
  });
  const journal = (entries: JournalEntry[]) => {
    const dir = mkdtempSync(join(tmpdir(), "pg-switchover-report-"));
    const path = join(dir, "run.jsonl");
    writeFileSync(path, entries.map((e) => `${JSON.stringify(e)}\n`).join(""));
    return path;
  };
  const started: JournalEntry[] = [
    { kind: "start", t: 0, plan: "verified", input: context },
    { kind: "transition", t: 1, step: "preflight", context },
    { kind: "transition", t: 2, step: "stopPrimary", context },
  ];

  it("4 for a run that rolled back, naming what is left to do", async () => {
    const failure = { step: "stopPrimary", reason: "deadline passed" };
    const exit = await switchover([
      "report",
      journal([
        ...started,
        { kind: "end", t: 3, status: "aborted", context: { ...context, failure } },
      ]),
    ]);
    expect(exit.code).toBe(4);
    expect(exit.stdout).toContain("aborted");
    expect(exit.stdout).toContain("node1 is still the primary");
  });

  it("2 for a run that never ended: nothing was decided", async () => {
    const exit = await switchover(["report", journal(started)]);
    expect(exit.code).toBe(2);
    expect(exit.stdout).toContain("stopped in stopPrimary");
  });
});
