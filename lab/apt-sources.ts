import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Debian archive addresses, read from this machine's own apt sources at run time: the lab must use
 * whatever archive the machine is allowed to reach, so no archive host is written in the code.
 */
export interface DebianArchives {
  /** Serves bookworm (and bookworm-updates), e.g. the `URIs:` of the main entry. */
  mirror: string;
  /** Serves bookworm-security, where the newer postgresql-15 point releases live. */
  security: string;
}

export interface AptSourceEntry {
  uri: string;
  suites: string[];
}

export type ArchivesOutcome =
  | { ok: true; archives: DebianArchives }
  | { ok: false; reason: string };

const APT_DIR = "/etc/apt";
const SUITE = "bookworm";

/** Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}. */
export function readHostArchives(aptDir = APT_DIR): ArchivesOutcome {
  const files = listSourceFiles(aptDir);
  const entries = files.flatMap((file) => {
    const text = readFileSync(file, "utf8");
    return file.endsWith(".sources") ? parseDeb822(text) : parseOneLine(text);
  });
  const found = findArchives(entries);
  if (found.ok) return found;
  return { ok: false, reason: `${found.reason} (read ${files.join(", ") || "no files"})` };
}

function listSourceFiles(aptDir: string): string[] {
  const main = join(aptDir, "sources.list");
  const dir = join(aptDir, "sources.list.d");
  const parts = safeReaddir(dir)
    .filter((name) => name.endsWith(".list") || name.endsWith(".sources"))
    .sort()
    .map((name) => join(dir, name));
  return [...(safeReaddir(aptDir).includes("sources.list") ? [main] : []), ...parts];
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Picks the bookworm mirror and the bookworm-security archive among binary (`deb`) entries. */
export function findArchives(entries: AptSourceEntry[]): ArchivesOutcome {
  const mirror = entries.find((e) => e.suites.includes(SUITE));
  const security = entries.find((e) => e.suites.includes(`${SUITE}-security`));
  if (!mirror) return { ok: false, reason: `no apt source serves suite ${SUITE}` };
  if (!security) return { ok: false, reason: `no apt source serves suite ${SUITE}-security` };
  return {
    ok: true,
    archives: { mirror: trimSlash(mirror.uri), security: trimSlash(security.uri) },
  };
}

const trimSlash = (uri: string) => uri.replace(/\/+$/, "");

/** deb822 stanzas: `Types: deb`, `URIs: …`, `Suites: …`, optionally `Enabled: no`. */
export function parseDeb822(text: string): AptSourceEntry[] {
  const stanzas = text
    .split(/\n\s*\n/)
    .map((stanza) => fieldsOf(stanza))
    .filter((f) => (f.types ?? "").split(/\s+/).includes("deb") && f.enabled !== "no");
  return stanzas.flatMap((f) =>
    (f.uris ?? "")
      .split(/\s+/)
      .filter(Boolean)
      .map((uri) => ({ uri, suites: (f.suites ?? "").split(/\s+/).filter(Boolean) })),
  );
}

function fieldsOf(stanza: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of stanza.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (match?.[1] && match[2] !== undefined) fields[match[1].toLowerCase()] = match[2].trim();
  }
  return fields;
}

/** One-line format: `deb [options] uri suite component…`. */
export function parseOneLine(text: string): AptSourceEntry[] {
  return text.split("\n").flatMap((raw) => {
    const line = raw
      .replace(/#.*$/, "")
      .replace(/\[[^\]]*\]/, "")
      .trim();
    const [type, uri, suite] = line.split(/\s+/);
    return type === "deb" && uri && suite ? [{ uri, suites: [suite] }] : [];
  });
}
