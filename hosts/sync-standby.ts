/**
 * Whether the primary's `synchronous_standby_names` needs the standby the upgrade stops: if it
 * does, every commit on the primary waits for it, so the whole upgrade freezes writes. Pure: the
 * setting as `SHOW synchronous_standby_names` prints it, and the names the standby goes by
 * (its application_name in pg_stat_replication).
 */
export type SyncNeed = { needed: false } | { needed: true; reason: string };

interface SyncRule {
  method: "FIRST" | "ANY";
  count: number;
  names: string[];
}

/** The setting's grammar (syncrep_gram.y): `name, ...`, `[FIRST] n (names)`, `ANY n (names)`. */
export function parseSyncStandbyNames(setting: string): SyncRule | null {
  const s = setting.trim();
  if (s === "") return null;
  const m = /^(?:(FIRST|ANY)\s+)?(\d+)\s*\((.*)\)$/is.exec(s);
  const method = (m?.[1]?.toUpperCase() ?? "FIRST") as SyncRule["method"];
  const list = m ? (m[3] as string) : s;
  return { method, count: m ? Number(m[2]) : 1, names: splitNames(list) };
}

/** Comma-separated names; a double-quoted one is taken as written ("" is a quote), others lower-cased. */
function splitNames(list: string): string[] {
  const names: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^,\s]+))\s*(?:,|$)/gy;
  for (let m = re.exec(list); m && m[0] !== ""; m = re.exec(list))
    names.push(m[1] !== undefined ? m[1].replaceAll('""', '"') : (m[2] as string).toLowerCase());
  return names;
}

export function syncStandbyNeed(setting: string, standbyNames: string[]): SyncNeed {
  const rule = parseSyncStandbyNames(setting);
  if (!rule || rule.count === 0) return { needed: false };
  const isStandby = (n: string) =>
    n === "*" || standbyNames.some((s) => s.toLowerCase() === n.toLowerCase());
  const others = rule.names.filter((n) => !isStandby(n)).length;
  if (!rule.names.some(isStandby) || others >= rule.count) return { needed: false };
  return {
    needed: true,
    reason: `synchronous_standby_names = '${setting}' needs ${rule.count} of (${rule.names.join(", ")}), and stopping the standby leaves ${others}: every commit would wait for the whole upgrade (set it to '' for the window, or add another synchronous standby)`,
  };
}
