import { readFileSync } from "node:fs";

/** IPv4 CIDR ranges as [first, last] unsigned 32-bit integers. */
export type Range = [number, number];

export function parseCidr(cidr: string): Range | null {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr.trim());
  if (!match) return null;
  const [a, b, c, d, bits] = match.slice(1).map(Number) as [number, number, number, number, number];
  const base = (((a << 24) | (b << 16) | (c << 8) | d) >>> 0) & maskOf(bits);
  return [base >>> 0, (base | (~maskOf(bits) >>> 0)) >>> 0];
}

const maskOf = (bits: number) => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

export const overlaps = (x: Range, y: Range) => x[0] <= y[1] && y[0] <= x[1];

/**
 * This machine's IPv4 routes except the default route, as CIDRs, from /proc/net/route
 * (destination and mask are little-endian hex).
 */
export function hostRoutes(path = "/proc/net/route"): { iface: string; cidr: string }[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 8 && cols[7] !== "00000000")
    .map((cols) => ({
      iface: cols[0] ?? "",
      cidr: `${hexToIp(cols[1] ?? "")}/${maskBits(cols[7] ?? "")}`,
    }));
}

function hexToIp(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join(".");
}

function maskBits(hex: string): number {
  let n = Number.parseInt(hex, 16) >>> 0;
  let bits = 0;
  while (n) {
    bits += n & 1;
    n >>>= 1;
  }
  return bits;
}
