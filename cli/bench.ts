import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { intOption, parse } from "./args.ts";

export const benchHelp = `switchover bench — simulated full switchovers with faults per second

Usage: switchover bench [--runs N] [--seed S] [--threads T] [--json]

Runs N verified-plan scenarios (each a full switchover with the faults simulate injects, checked by
all checkers) spread over T worker threads of this one process (default: one per core), and
prints scenarios per second.`;

export async function runBench(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    runs: { type: "string" },
    seed: { type: "string" },
    threads: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(`${benchHelp}\n`);
    return 0;
  }
  const runs = intOption(values.runs, "runs", 4000, 1);
  const seed = intOption(values.seed, "seed", 1);
  const threads = intOption(values.threads, "threads", availableParallelism(), 1);
  const started = performance.now();
  const shares = Array.from(
    { length: threads },
    (_, i) => Math.floor(runs / threads) + (i < runs % threads ? 1 : 0),
  );
  const results = await Promise.all(shares.map((n, i) => inWorker(n, seed + i)));
  const seconds = (performance.now() - started) / 1000;
  const violations = results.reduce((a, r) => a + r.violations, 0);
  const perSecond = Math.round(runs / seconds);
  const out = {
    runs,
    threads,
    seconds: Number(seconds.toFixed(2)),
    scenariosPerSecond: perSecond,
    violations,
  };
  process.stdout.write(
    values.json
      ? `${JSON.stringify(out)}\n`
      : `${runs} simulated switchovers with faults in ${out.seconds} s on ${threads} thread(s): ${perSecond}/s (${violations} violations)\n`,
  );
  return violations > 0 ? 1 : 0;
}

function inWorker(runs: number, seed: number): Promise<{ violations: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("../bin/ts-worker.js", import.meta.url), {
      workerData: { entry: new URL("./bench-worker.ts", import.meta.url).href, runs, seed },
    });
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => code !== 0 && reject(new Error(`bench worker exited ${code}`)));
  });
}
