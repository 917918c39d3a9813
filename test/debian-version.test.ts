import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareDebianVersions,
  parseDebianVersion,
  upstreamVersion,
} from "../core/debian-version.ts";

/** Each pair in the order Debian's and PGDG's archives (and dpkg) put them. */
const ASCENDING: [string, string][] = [
  ["15.18-0+deb12u1", "15.20-0+deb12u1"],
  ["15.8-0+deb12u1", "15.18-0+deb12u1"],
  ["15.20-0+deb12u1", "15.20-1.pgdg120+1"],
  ["15.18-1.pgdg120+1", "15.20-0+deb12u1"],
  ["15.20-1.pgdg110+1", "15.20-1.pgdg120+1"],
  ["15.20-1.pgdg120+1", "15.20-1.pgdg120+2"],
  ["15.20~rc1-1.pgdg120+1", "15.20-1.pgdg120+1"],
  ["15.20-0+deb12u1~bpo12+1", "15.20-0+deb12u1"],
  ["15.20-0ubuntu0.23.04.1", "15.20-0+deb12u1"],
  ["248", "262.pgdg120+1"],
  ["15.20-1.pgdg120+1", "1:15.1-1"],
];

describe("Debian versions, as dpkg orders them", () => {
  it.each(ASCENDING)("%s sorts before %s", (a, b) => {
    expect(compareDebianVersions(a, b)).toBe(-1);
    expect(compareDebianVersions(b, a)).toBe(1);
  });

  it("takes a missing revision for 0 and leading zeros for nothing", () => {
    expect(compareDebianVersions("15.20", "15.20-0")).toBe(0);
    expect(compareDebianVersions("15.020-1", "15.20-1")).toBe(0);
    expect(compareDebianVersions("0:15.20-1", "15.20-1")).toBe(0);
  });

  it("names the release of Debian's and PGDG's builds alike", () => {
    expect(upstreamVersion("15.20-0+deb12u1")).toBe("15.20");
    expect(upstreamVersion("15.20-1.pgdg120+1")).toBe("15.20");
    expect(upstreamVersion("1:15.20~rc1-1")).toBe("15.20~rc1");
    expect(upstreamVersion("15.20")).toBe("15.20");
  });

  it("refuses what is no Debian version, saying which part is wrong", () => {
    expect(parseDebianVersion("x15.20-1")).toMatchObject({ ok: false });
    expect(parseDebianVersion("15.20-1 2")).toMatchObject({
      ok: false,
      reason: expect.stringContaining("revision"),
    });
    expect(parseDebianVersion("a:15.20")).toMatchObject({
      ok: false,
      reason: expect.stringContaining("epoch"),
    });
    expect(parseDebianVersion("15:20")).toMatchObject({ ok: true, epoch: 15, upstream: "20" });
  });

  const version = fc
    .tuple(
      fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
      fc.constantFrom("0", "1", "15", "015", "9"),
      fc.array(fc.constantFrom("0", "1", "2", "10", ".", "+", "~", "a", "b", "Z", ":"), {
        maxLength: 5,
      }),
      fc.option(
        fc.array(fc.constantFrom("0", "1", "2", ".", "+", "~", "a", "deb", "pgdg"), {
          minLength: 1,
          maxLength: 4,
        }),
        { nil: undefined },
      ),
    )
    .map(([epoch, head, tail, revision]) => {
      const upstream = head + tail.filter((c) => epoch !== undefined || c !== ":").join("");
      return `${epoch === undefined ? "" : `${epoch}:`}${upstream}${revision ? `-${revision.join("")}` : ""}`;
    });

  it("is a total order (antisymmetric, transitive) on generated versions", () => {
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        expect(parseDebianVersion(a).ok).toBe(true);
        expect(compareDebianVersions(a, b)).toBe(-compareDebianVersions(b, a));
        if (compareDebianVersions(a, b) <= 0 && compareDebianVersions(b, c) <= 0)
          expect(compareDebianVersions(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 2000, seed: 14 },
    );
  });

  it("agrees with `dpkg --compare-versions` on every pair of generated versions", () => {
    const sampled = fc.sample(version, { numRuns: 36, seed: 14 });
    // Spellings of the same version, so that dpkg's "equal" is compared too.
    const respelled = sampled.slice(0, 8).map((v) => (v.includes(":") ? v : `0:${v}`));
    const versions = [...new Set([...sampled, ...respelled])];
    const pairs = versions.flatMap((a, i) => versions.slice(i + 1).map((b) => [a, b] as const));
    // One shell for every pair: a dpkg per comparison, its answer as -1, 0 or 1 per line.
    const script = pairs
      .map(
        ([a, b]) =>
          `if dpkg --compare-versions '${a}' lt '${b}'; then echo -1; elif dpkg --compare-versions '${a}' eq '${b}'; then echo 0; else echo 1; fi`,
      )
      .join("\n");
    const dpkg = execFileSync("sh", ["-c", script], { encoding: "utf8" }).trim().split("\n");
    const ours = pairs.map(([a, b]) => String(compareDebianVersions(a, b)));
    const disagreements = pairs.filter((_, i) => ours[i] !== dpkg[i]);
    expect(disagreements).toEqual([]);
    expect(pairs.length).toBeGreaterThan(500);
    expect(new Set(dpkg)).toEqual(new Set(["-1", "0", "1"]));
  });
});
