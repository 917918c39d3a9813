import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderCompareHtml } from "../verify/compare-html.ts";
import type { FaultRehearsalReport } from "../verify/fault-rehearsal.ts";
import { readPng } from "./support/png.ts";

/**
 * `switchover compare`'s HTML report as a person sees it: rendered by headless Chromium from a
 * real compare run recorded in the lab (`compare --faults 2 --seed 1024 --json`), then looked at.
 * Chromium runs in a network namespace of its own (no traffic leaves this machine).
 */
const recorded = JSON.parse(
  readFileSync(new URL("./fixtures/compare-faults.json", import.meta.url), "utf8"),
) as { verified: FaultRehearsalReport; seed: FaultRehearsalReport };
const CHROMIUM = "/usr/bin/chromium";
const inCi = process.env.CI === "true";
const noChromium = !existsSync(CHROMIUM);
if (noChromium && !inCi) {
  process.stderr.write(
    "\n*** HTML screenshot test SKIPPED: no /usr/bin/chromium (scripts/setup.sh installs it)\n" +
      "*** (under CI=true this fails)\n\n",
  );
}

describe("compare's HTML report", () => {
  const html = renderCompareHtml([recorded.verified, recorded.seed]);

  it("has, per case, the fault and a timeline per plan, the violated ones marked", () => {
    const cases = recorded.verified.cases.length;
    expect(html.match(/<section class="case">/g)).toHaveLength(cases);
    expect(html.match(/<svg /g)).toHaveLength(2 * cases);
    for (const c of recorded.verified.cases) expect(html).toContain(`seed ${c.seed}:`);
    const violated = [recorded.verified, recorded.seed].flatMap((p) =>
      p.cases.filter((c) => c.verdict === "violated"),
    );
    expect(html.match(/class="cell violated"/g) ?? []).toHaveLength(violated.length);
    // Each node's lanes, the client's writes, and the moment each fault struck.
    expect(html).toContain('class="primary"');
    expect(html).toContain('class="vip"');
    expect(html).toContain('class="ok"');
    expect(html).toContain('class="fault"');
  });

  it("says where writes did not resume, with the outage up to the end of the writing", () => {
    // Recorded before the outage counted the trailing stretch: writesResumed and those cases'
    // outageMs were derived from their own timelines (last 250 ms bucket with an acknowledged
    // write to the last one with a write), so to the bucket.
    const stalled = [recorded.verified, recorded.seed].flatMap((p) =>
      p.cases.filter((c) => !c.writesResumed),
    );
    expect(stalled.length).toBeGreaterThan(0);
    for (const c of stalled) {
      expect(html).toContain(
        `<span class="bad">${(c.outageMs / 1000).toFixed(1)} s, writes did not resume</span>`,
      );
    }
    expect(html.match(/writes did not resume/g)).toHaveLength(stalled.length);
  });

  it.skipIf(noChromium && !inCi)(
    "renders in headless Chromium: the screenshot shows the roles, the VIP and the writes",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "pg-switchover-compare-"));
      const page = join(dir, "compare.html");
      const shot = join(dir, "compare.png");
      writeFileSync(page, html);
      await new Promise<void>((resolve, reject) =>
        execFile(
          "unshare",
          [
            "--net",
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            `--screenshot=${shot}`,
            "--window-size=1280,1400",
            `file://${page}`,
          ],
          { timeout: 90_000 },
          (error) => (error && !existsSync(shot) ? reject(error) : resolve()),
        ),
      );
      process.stderr.write(`compare report screenshot: ${shot}\n`);
      const png = readPng(readFileSync(shot));
      expect([png.width, png.height]).toEqual([1280, 1400]);
      const seen = new Set<string>();
      for (let y = 0; y < png.height; y += 2) {
        for (let x = 0; x < png.width; x += 2) seen.add(png.rgb(x, y));
      }
      // primary, standby, VIP, acknowledged writes: each lane's colour is on the screen.
      for (const colour of ["#2b6cb0", "#a0aec0", "#d69e2e", "#38a169"]) {
        expect(seen, colour).toContain(colour);
      }
    },
    120_000,
  );
});
