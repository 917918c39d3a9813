/**
 * libpq's `keyword=value` connection strings, as `primary_conninfo` holds them: a value is a
 * word, or single-quoted; a backslash escapes the next character in both (conninfo_parse).
 */
export type Conninfo =
  | { ok: true; keywords: Record<string, string> }
  | { ok: false; reason: string };

export function parseConninfo(text: string): Conninfo {
  const s = text.trim();
  if (/^postgres(ql)?:\/\//.test(s))
    return { ok: false, reason: "it is a URI: write it as keyword=value pairs" };
  const keywords: Record<string, string> = {};
  const re = /\s*([A-Za-z_]\w*)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|((?:[^\s'\\]|\\.)+))\s*/y;
  while (re.lastIndex < s.length) {
    const at = re.lastIndex;
    const m = re.exec(s);
    if (!m) return { ok: false, reason: `cannot parse it from "${s.slice(at, at + 20)}"` };
    keywords[(m[1] as string).toLowerCase()] = (m[2] ?? m[3] ?? "").replace(/\\(.)/g, "$1");
  }
  return { ok: true, keywords };
}

/** One value as conninfo_parse reads it back: quoted when empty or holding a space, ' or \. */
function conninfoValue(v: string): string {
  return v !== "" && !/[\s'\\]/.test(v) ? v : `'${v.replace(/[\\']/g, "\\$&")}'`;
}

export function formatConninfo(keywords: Record<string, string>): string {
  return Object.entries(keywords)
    .map(([k, v]) => `${k}=${conninfoValue(v)}`)
    .join(" ");
}

/** What the rebuild sets for the new upstream; the pair's other keywords are kept as written. */
export const REBUILD_SETS = ["host", "hostaddr", "port", "user", "application_name"] as const;

/**
 * The standby's `primary_conninfo` as the old primary will connect to the new one: the other
 * keywords kept, refused where keeping them would be wrong (a password the journal and the
 * host's process list would show, another user than the one pre-flight tested).
 */
export function keptKeywords(
  conninfo: string,
  replicationUser: string,
): { ok: true; keywords: Record<string, string> } | { ok: false; reason: string } {
  const parsed = parseConninfo(conninfo);
  if (!parsed.ok) return parsed;
  const k = parsed.keywords;
  if ("password" in k)
    return {
      ok: false,
      reason:
        "it holds a password, which rebuilding the old primary would write into the journal and its command line: move it to a password file (passfile)",
    };
  if (k.user !== undefined && k.user !== replicationUser)
    return {
      ok: false,
      reason: `it connects as ${k.user}, the inventory's replicationUser is ${replicationUser}`,
    };
  const sets: readonly string[] = REBUILD_SETS;
  return {
    ok: true,
    keywords: Object.fromEntries(Object.entries(k).filter(([key]) => !sets.includes(key))),
  };
}

/**
 * The slot the old primary streams through on the new one, named as the standby's own slot on
 * the old primary is (its node name in it swapped for the old primary's), or after the old
 * primary. Slot names are lower-case letters, digits and underscores.
 */
export function carriedSlotName(standbySlot: string, standby: string, oldPrimary: string): string {
  const asSlot = (n: string) => n.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const own = asSlot(standby);
  return standbySlot.includes(own)
    ? standbySlot.replaceAll(own, asSlot(oldPrimary))
    : asSlot(oldPrimary);
}
