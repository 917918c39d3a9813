import type { Lsn } from "./executor.ts";

/** PostgreSQL prints a WAL position as two hex halves, `X/Y`: X * 2^32 + Y bytes. */
export function parseLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`not an LSN: "${text}"`);
  return Number.parseInt(m[1] as string, 16) * 2 ** 32 + Number.parseInt(m[2] as string, 16);
}

export function formatLsn(lsn: Lsn): string {
  const hi = Math.floor(lsn / 2 ** 32);
  const lo = lsn - hi * 2 ** 32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
