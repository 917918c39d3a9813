/**
 * Debian package versions (`[epoch:]upstream[-revision]`) as dpkg reads and orders them, so that
 * Debian's own builds (`15.20-0+deb12u1`) and PGDG's (`15.20-1.pgdg120+1`) compare the way
 * `dpkg --compare-versions` and apt do (deb-version(7)).
 */
export interface DebianVersion {
  epoch: number;
  upstream: string;
  /** "" when the version has none (a native package): dpkg orders it as "0". */
  revision: string;
}

const UPSTREAM = /^[0-9][A-Za-z0-9.+~:-]*$/;
const REVISION = /^[A-Za-z0-9.+~]+$/;

/** The version's parts, or a reason naming what makes it no Debian version. */
export function parseDebianVersion(
  text: string,
): ({ ok: true } & DebianVersion) | { ok: false; reason: string } {
  const v = text.trim();
  const colon = v.indexOf(":");
  const epochText = colon >= 0 ? v.slice(0, colon) : "0";
  if (!/^\d+$/.test(epochText))
    return { ok: false, reason: `"${text}": the epoch (before ":") is not a number` };
  const rest = colon >= 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf("-");
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : "";
  if (!UPSTREAM.test(upstream) || (colon < 0 && upstream.includes(":")))
    return {
      ok: false,
      reason: `"${text}": the upstream version must start with a digit and hold only letters, digits and . + ~ - :`,
    };
  if (dash >= 0 && !REVISION.test(revision))
    return {
      ok: false,
      reason: `"${text}": the Debian revision (after the last "-") holds only letters, digits and . + ~`,
    };
  return { ok: true, epoch: Number(epochText), upstream, revision };
}

/** A version known to be well formed (apt's or dpkg's own output); throws on anything else. */
function parsed(text: string): DebianVersion {
  const p = parseDebianVersion(text);
  if (!p.ok) throw new Error(`not a Debian version: ${p.reason}`);
  return p;
}

/** Negative, zero or positive as `a` sorts before, with or after `b`, as dpkg orders them. */
export function compareDebianVersions(a: string, b: string): number {
  const x = parsed(a);
  const y = parsed(b);
  return (
    Math.sign(x.epoch - y.epoch) ||
    compareParts(x.upstream, y.upstream) ||
    compareParts(x.revision, y.revision)
  );
}

/** "1:15.20-0+deb12u1" → "15.20": what PostgreSQL calls the release. */
export function upstreamVersion(text: string): string {
  const p = parseDebianVersion(text);
  return p.ok ? p.upstream : text.trim();
}

/**
 * dpkg's verrevcmp: alternating non-digit and digit runs. Non-digits compare by a weight in which
 * `~` sorts before everything, even the end of the string, and letters before other characters;
 * digit runs compare as numbers.
 */
function compareParts(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a, i)) || (j < b.length && !isDigit(b, j))) {
      const d = weight(a, i) - weight(b, j);
      if (d !== 0) return Math.sign(d);
      i++;
      j++;
    }
    while (a[i] === "0") i++;
    while (b[j] === "0") j++;
    let firstDiff = 0;
    while (isDigit(a, i) && isDigit(b, j)) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a, i)) return 1;
    if (isDigit(b, j)) return -1;
    if (firstDiff !== 0) return Math.sign(firstDiff);
  }
  return 0;
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

/** dpkg's order(): the end of the string and digits 0, `~` -1, letters themselves, others +256. */
function weight(s: string, i: number): number {
  if (i >= s.length || isDigit(s, i)) return 0;
  const ch = s[i] as string;
  if (ch === "~") return -1;
  const c = s.charCodeAt(i);
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return c;
  return c + 256;
}

/** A bare release ("15.20"), resolved per host against apt; anything else is a full version. */
export function isBareRelease(version: string): boolean {
  return /^\d+\.\d+$/.test(version);
}

export const TARGET_VERSION_SHAPE =
  'a release such as "15.20" or a full Debian version such as "15.20-0+deb12u1" or "15.20-1.pgdg120+1"';

/** What a target version may be: a bare release, or a Debian version with its revision. */
export function isTargetVersion(version: string): boolean {
  return isBareRelease(version) || (version.includes("-") && parseDebianVersion(version).ok);
}
