import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 1_800_000,
    // The lab tests share one Docker lab: files run one at a time.
    fileParallelism: false,
    reporters: ["default"],
  },
});
