import { defineConfig } from "vitest/config";

/**
 * Tests by what they need, so the fast ones run alone (`npm run test:unit`):
 *   unit     nothing but Node (simulator, checkers, plan model, property runs, CLI)
 *   host     this machine's PostgreSQL 15 binaries (the host commands, run for real)
 *   lab      a Docker engine (the lab, rehearsals, SSH, fault rehearsals)
 *   browser  Debian's Chromium (compare's HTML report, screenshotted)
 * `npm test` runs all four, as CI does.
 */
const needs = {
  host: ["test/commands.test.ts"],
  lab: [
    "test/lab.test.ts",
    "test/debian-host.test.ts",
    "test/rehearse.test.ts",
    "test/ssh.test.ts",
    "test/faults.test.ts",
    "test/hung-commands.test.ts",
    "test/packages-lab.test.ts",
    "test/standby-link-lab.test.ts",
    "test/pooler.test.ts",
  ],
  browser: ["test/compare-report.test.ts"],
};

const project = (name: string, include: string[], exclude: string[] = []) => ({
  extends: true as const,
  test: { name, include, exclude },
});

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 1_800_000,
    // The lab tests share one Docker lab, and timing-sensitive tests share two cores: one file at a time.
    fileParallelism: false,
    reporters: ["default"],
    projects: [
      // Every test file that needs nothing else is a unit test: none can fall outside a project.
      project("unit", ["test/**/*.test.ts"], Object.values(needs).flat()),
      project("host", needs.host),
      project("lab", needs.lab),
      project("browser", needs.browser),
    ],
  },
});
