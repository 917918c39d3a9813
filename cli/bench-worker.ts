import { parentPort, workerData } from "node:worker_threads";
import { simulate } from "../verify/property-run.ts";

const { runs, seed } = workerData as { runs: number; seed: number };
const report = await simulate({ plan: "verified", runs, seed });
parentPort?.postMessage({ violations: report.violations });
