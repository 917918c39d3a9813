import { debianVersion } from "../hosts/commands.ts";

/**
 * PostgreSQL 15 point releases as the lab names them ("15.18") and as Debian bookworm packages them
 * ("15.18-0+deb12u1"). Debian ships 15.18 in bookworm and 15.20 in bookworm-security.
 */
export const DEFAULT_FROM = "15.18";
export const DEFAULT_TO = "15.20";

export type VersionCheck = { ok: true; minor: number } | { ok: false; reason: string };

/** "15.N": the only shape the lab accepts, checked before anything changes. */
export function parsePostgresVersion(version: string): VersionCheck {
  const match = /^15\.(\d{1,3})$/.exec(version);
  if (!match?.[1]) {
    return { ok: false, reason: `"${version}" is not a PostgreSQL 15 release (expected 15.N)` };
  }
  return { ok: true, minor: Number(match[1]) };
}

/** Checks the shape of both versions and that the switchover goes forward. */
export function checkUpgradePath(
  from: string,
  to: string,
): { ok: true } | { ok: false; reason: string } {
  const a = parsePostgresVersion(from);
  if (!a.ok) return { ok: false, reason: `--from: ${a.reason}` };
  const b = parsePostgresVersion(to);
  if (!b.ok) return { ok: false, reason: `--to: ${b.reason}` };
  if (b.minor <= a.minor)
    return { ok: false, reason: `--to ${to} must be newer than --from ${from}` };
  return { ok: true };
}

/** The Debian versions of `wanted` missing from `available` (apt-cache madison output). */
export function missingVersions(wanted: string[], available: string[]): string[] {
  return wanted.filter((v) => !available.includes(debianVersion(v)));
}
