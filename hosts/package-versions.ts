import { compareDebianVersions, isBareRelease, upstreamVersion } from "../core/debian-version.ts";
import type { NodeName } from "../core/executor.ts";
import { type ClusterSpec, type HostSpec, upgradeSet } from "./commands.ts";
import type { CommandRunner } from "./host-executor.ts";
import type { HostCommand } from "./shell.ts";

/**
 * What a host's package manager says about the upgrade: the installed versions of the packages
 * the upgrade moves, the versions apt can install (`apt-cache madison`), the packages on hold,
 * and whether the tools the VIP steps run (`ip`, `arping`) are there. Read-only; pre-flight
 * looks before anything changes, so that a target apt cannot install, a held package or a
 * missing arping stops the run while the pair is untouched.
 */
export interface PackageFacts {
  /** The upgrade set on this host (commands.ts upgradeSet), sorted. */
  set: string[];
  /** Per package of the set, its installed version; null where it is not installed. */
  installed: Record<string, string | null>;
  /** Per package, the versions apt-cache madison lists, each with where it comes from. */
  candidates: Record<string, { version: string; from: string }[]>;
  held: string[];
  /** The tools the plan runs as root that a minimal install may lack, and whether each is there. */
  tools: Record<VipTool, boolean>;
}

export const VIP_TOOLS = ["ip", "arping"] as const;
export type VipTool = (typeof VIP_TOOLS)[number];
/** The Debian package that ships each tool: what the refusal tells the operator to install. */
const TOOL_PACKAGE: Record<VipTool, string> = { ip: "iproute2", arping: "iputils-arping" };

/** One line per fact, tagged, so that the parse does not depend on the tools' layout. */
export function packageFactsCommand(c: ClusterSpec): HostCommand {
  return {
    user: "root",
    script: [
      `set=$(${upgradeSet(c)})`,
      `for p in $set; do printf 'installed %s %s\\n' "$p" "$(dpkg-query -W -f='\${Version}' "$p" 2>/dev/null)"; done`,
      // "http://deb.debian.org/debian-security bookworm-security/main amd64 Packages": the suite.
      `LC_ALL=C apt-cache madison $set | awk -F'|' '$3 ~ / Packages$/ {gsub(/ /, "", $1); gsub(/ /, "", $2); split($3, f, " "); sub(/\\/.*/, "", f[2]); print "candidate", $1, $2, f[2]}'`,
      `apt-mark showhold | sed 's/^/held /'`,
      `for t in ${VIP_TOOLS.join(" ")}; do if command -v "$t" >/dev/null; then echo "tool $t yes"; else echo "tool $t no"; fi; done`,
    ].join("; "),
  };
}

export function parsePackageFacts(c: ClusterSpec, stdout: string): PackageFacts {
  const facts: PackageFacts = {
    set: [],
    installed: Object.fromEntries(c.packages.map((p) => [p, null])),
    candidates: Object.fromEntries(c.packages.map((p) => [p, []])),
    held: [],
    tools: { ip: false, arping: false },
  };
  for (const line of stdout.split("\n")) {
    const [tag, a = "", b = "", ...rest] = line.trim().split(/\s+/);
    if (tag === "installed" && a) {
      facts.installed[a] = b || null;
      facts.candidates[a] ??= [];
    }
    const list = facts.candidates[a];
    if (tag === "candidate" && list && b && !list.some((x) => x.version === b))
      list.push({ version: b, from: rest.join(" ") });
    if (tag === "held" && a) facts.held.push(a);
    if (tag === "tool" && (VIP_TOOLS as readonly string[]).includes(a))
      facts.tools[a as VipTool] = b === "yes";
  }
  facts.set = Object.keys(facts.installed).sort();
  return facts;
}

export type Resolution = { ok: true; version: string } | { ok: false; reason: string };

/**
 * The Debian version `wanted` means on one host: a full version must be installable for every
 * package of the upgrade; a bare release must match exactly one version of the server package
 * (several builds of it, say Debian's and PGDG's, are ambiguous), which every other package has.
 */
export function resolveOnHost(
  c: ClusterSpec,
  node: NodeName,
  facts: PackageFacts,
  wanted: string,
): Resolution {
  const server = c.packages[0] as string;
  const listed = (p: string) => {
    const found = facts.candidates[p] ?? [];
    return found.length === 0
      ? "none"
      : found.map((x) => `${x.version}${x.from ? ` (${x.from})` : ""}`).join(", ");
  };
  let version = wanted;
  if (isBareRelease(wanted)) {
    const matching = (facts.candidates[server] ?? []).filter(
      (x) => upstreamVersion(x.version) === wanted,
    );
    if (matching.length === 0)
      return {
        ok: false,
        reason: `${node}: apt-cache madison ${server} has no ${wanted} (it lists ${listed(server)}; are the host's apt lists current?)`,
      };
    if (matching.length > 1)
      return {
        ok: false,
        reason: `${node}: ${wanted} is ambiguous, apt-cache madison ${server} lists ${matching.map((x) => x.version).join(" and ")}: give upgrade.version the full one`,
      };
    version = (matching[0] as { version: string }).version;
  }
  for (const p of facts.set) {
    if (!(facts.candidates[p] ?? []).some((x) => compareDebianVersions(x.version, version) === 0))
      return {
        ok: false,
        reason: `${node}: apt-cache madison ${p} has no ${version} (it lists ${listed(p)})`,
      };
  }
  return { ok: true, version };
}

/** Both nodes must resolve to the same build: a pair on two builds is not one release. */
export function resolveOnPair(
  c: ClusterSpec,
  wanted: string,
  facts: { node: NodeName; facts: PackageFacts | null }[],
): Resolution {
  const each = facts.map((f) =>
    f.facts
      ? resolveOnHost(c, f.node, f.facts, wanted)
      : { ok: false as const, reason: `${f.node}: could not ask apt-cache` },
  );
  const failed = each.find((r) => !r.ok);
  if (failed) return failed;
  const versions = each.map((r) => (r as { version: string }).version);
  if (new Set(versions).size > 1)
    return {
      ok: false,
      reason: `${wanted} is ${facts.map((f, i) => `${versions[i]} on ${f.node}`).join(" but ")}: give upgrade.version the one build both should run`,
    };
  return { ok: true, version: versions[0] as string };
}

/** The packages of the upgrade held on a host (apt-get refuses to move them). */
export function heldOf(facts: PackageFacts): string[] {
  return facts.set.filter((p) => facts.held.includes(p));
}

/** The packages of the upgrade held on a host, and what lifts the hold. */
export function heldProblem(node: NodeName, facts: PackageFacts): string | null {
  const held = heldOf(facts);
  if (held.length === 0) return null;
  return `${node}: ${held.join(", ")} held (apt-mark showhold): \`sudo apt-mark unhold ${held.join(" ")}\`, or run with --unhold (held again after the upgrade)`;
}

/** The VIP tools missing on a host, and the package that ships each. */
export function missingToolsProblem(node: NodeName, facts: PackageFacts): string | null {
  const missing = VIP_TOOLS.filter((t) => !facts.tools[t]);
  if (missing.length === 0) return null;
  return `${node}: ${missing.join(", ")} not found (the VIP steps run them as root): \`sudo apt-get install ${missing.map((t) => TOOL_PACKAGE[t]).join(" ")}\``;
}

/** Asks each node of the pair and resolves `wanted` on both: what a run without pre-flight does. */
export async function resolveTargetOnHosts(
  run: CommandRunner,
  c: ClusterSpec,
  nodes: HostSpec[],
  wanted: string,
  deadlineMs: number,
): Promise<Resolution> {
  const command = packageFactsCommand(c);
  const facts = await Promise.all(
    nodes.map(async (h) => {
      const r = await run(h, command, deadlineMs);
      return { node: h.name, facts: r.code === 0 ? parsePackageFacts(c, r.stdout) : null };
    }),
  );
  return resolveOnPair(c, wanted, facts);
}
