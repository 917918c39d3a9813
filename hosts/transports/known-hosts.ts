import { createHmac } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Host keys checked as OpenSSH does, against a known_hosts file: plain or hashed (`|1|salt|hash`)
 * host patterns, `[host]:port` for a port other than 22. A host with no line is unknown; a host
 * whose lines all hold other keys has changed its key (or someone is in the middle).
 */
export type HostKeyCheck = { ok: true } | { ok: false; why: "unknown" | "changed" };

/** How known_hosts names a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type of an SSH public key blob (its first string, e.g. "ssh-ed25519"). */
export function keyType(blob: Buffer): string {
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString("ascii");
}

function matches(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [, , salt, hash] = pattern.split("|");
    if (!salt || !hash) return false;
    const h = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return h === hash;
  }
  return pattern.split(",").includes(name);
}

export function checkHostKey(knownHosts: string, name: string, blob: Buffer): HostKeyCheck {
  const lines = existsSync(knownHosts) ? readFileSync(knownHosts, "utf8").split("\n") : [];
  const key = blob.toString("base64");
  let known = false;
  for (const line of lines) {
    const [hosts, , base64] = line.trim().split(/\s+/);
    if (!hosts || !base64 || hosts.startsWith("#") || hosts.startsWith("@")) continue;
    if (!matches(hosts, name)) continue;
    if (base64 === key) return { ok: true };
    known = true;
  }
  return { ok: false, why: known ? "changed" : "unknown" };
}

/** The line `checkHostKey` accepts for this host and key. */
export function knownHostsLine(name: string, blob: Buffer): string {
  return `${name} ${keyType(blob)} ${blob.toString("base64")}`;
}

export function addKnownHost(knownHosts: string, name: string, blob: Buffer): void {
  mkdirSync(dirname(knownHosts), { recursive: true });
  // A file whose last line lacks its newline (hand-edited) would get the key glued onto it.
  const text = existsSync(knownHosts) ? readFileSync(knownHosts, "utf8") : "";
  const gap = text === "" || text.endsWith("\n") ? "" : "\n";
  appendFileSync(knownHosts, `${gap}${knownHostsLine(name, blob)}\n`, { mode: 0o600 });
}
