import type { NodeName } from "../core/executor.ts";
import type { StandbyLink } from "../core/standby-link.ts";
import { carriedSlotName, formatConninfo, keptKeywords } from "./conninfo.ts";

/** A physical slot on the primary, as pre-flight reads it (pg_replication_slots). */
export interface SlotRow {
  name: string;
  active: boolean;
  /** Where its walsender's client connects from; null when inactive. */
  address: string | null;
  /** WAL it keeps from being recycled; null before it reserved any. */
  heldBytes: number | null;
}

/** What pre-flight saw of the pair's replication link, before the switchover. */
export interface LinkFacts {
  primary: NodeName;
  standby: NodeName;
  replicationUser: string;
  /** The standby's `primary_conninfo` and `primary_slot_name` (SHOW, as the server reads them). */
  conninfo: string;
  slotName: string;
  slotsOnPrimary: SlotRow[];
}

export type LinkResolution =
  | {
      ok: true;
      link: StandbyLink;
      /** What pre-flight says of the keywords kept, the slot, the slots the promotion loses. */
      conninfo: string;
      slot: string;
      leftBehind: string | null;
    }
  | { ok: false; check: "primary_conninfo kept" | "replication slots"; reason: string };

/**
 * How the old primary will connect to the new one: the standby's conninfo keywords, and, when
 * the standby streams through a slot on the primary, a slot for the old primary on the new one.
 */
export function resolveStandbyLink(f: LinkFacts): LinkResolution {
  const kept = keptKeywords(f.conninfo, f.replicationUser);
  if (!kept.ok)
    return {
      ok: false,
      check: "primary_conninfo kept",
      reason: `${f.standby}'s primary_conninfo: ${kept.reason}`,
    };
  const conninfo =
    Object.keys(kept.keywords).length > 0
      ? `${formatConninfo(kept.keywords)}, as ${f.standby}'s primary_conninfo has them`
      : `none besides host, port, user and application_name in ${f.standby}'s primary_conninfo`;
  const leftBehind = slotsLeftBehind(f);
  if (f.slotName === "")
    return {
      ok: true,
      link: { keywords: kept.keywords, slot: null },
      conninfo,
      slot: `${f.standby} streams without a slot; so will ${f.primary}`,
      leftBehind,
    };
  if (!f.slotsOnPrimary.some((s) => s.name === f.slotName))
    return {
      ok: false,
      check: "replication slots",
      reason: `${f.standby}'s primary_slot_name '${f.slotName}' is not a slot on ${f.primary}`,
    };
  const carried = carriedSlotName(f.slotName, f.standby, f.primary);
  return {
    ok: true,
    link: { keywords: kept.keywords, slot: { name: carried, replaces: f.slotName } },
    leftBehind,
    conninfo,
    slot: `${f.standby} streams through slot '${f.slotName}' on ${f.primary}: the rejoin moves it: slot '${carried}' made on ${f.standby} for ${f.primary} (its primary_slot_name), '${f.slotName}' removed from ${f.primary}, where it would keep WAL for nobody`,
  };
}

/**
 * The primary's other physical slots: a promotion does not copy them, so their consumers
 * (Barman, pg_receivewal, another standby) lose their place; an inactive one holds WAL.
 */
function slotsLeftBehind(f: LinkFacts): string | null {
  const others = f.slotsOnPrimary.filter((s) => s.name !== f.slotName);
  if (others.length === 0) return null;
  const one = (s: SlotRow) =>
    `'${s.name}' (${s.active ? `active, from ${s.address ?? "a local socket"}` : "inactive"}${s.heldBytes ? `, holds ${Math.round(s.heldBytes / 1024 ** 2)} MiB of WAL` : ""})`;
  return `${f.primary}: ${others.map(one).join(", ")} not on ${f.standby}: the promotion does not copy slots; create them on ${f.standby} and point their consumers there`;
}
