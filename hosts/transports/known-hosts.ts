import { createHmac } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Host keys checked as OpenSSH does, against a known_hosts file: plain or hashed (`|1|salt|hash`)
 * host patterns, wildcards (`*`, `?`) and negations (`!pattern`), `[host]:port` for a port other
 * than 22. A host with no line is unknown; a host whose lines all hold other keys has changed its
 * key (or someone is in the middle); a key on an `@revoked` line is refused whatever else says.
 * `@cert-authority` lines cannot be honoured: ssh2 does not verify host certificates, so a host
 * known only through its CA is reported as such (`caOnly`), with what to do.
 */
export type HostKeyCheck =
  | { ok: true }
  | { ok: false; why: "unknown" | "changed" | "revoked" | "caOnly" };

/** How known_hosts names a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type of an SSH public key blob (its first string, e.g. "ssh-ed25519"). */
export function keyType(blob: Buffer): string {
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString("ascii");
}

/** One pattern of a host list: hashed, or a glob with `*` and `?`. */
function matchesOne(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [, , salt, hash] = pattern.split("|");
    if (!salt || !hash) return false;
    const h = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return h === hash;
  }
  const glob = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${glob}$`, "i").test(name);
}

/** A comma-separated host list, as sshd(8)'s known_hosts format: a negated match wins. */
function matches(patterns: string, name: string): boolean {
  let hit = false;
  for (const p of patterns.split(",")) {
    if (p.startsWith("!")) {
      if (matchesOne(p.slice(1), name)) return false;
    } else if (matchesOne(p, name)) hit = true;
  }
  return hit;
}

export function checkHostKey(knownHosts: string, name: string, blob: Buffer): HostKeyCheck {
  const lines = existsSync(knownHosts) ? readFileSync(knownHosts, "utf8").split("\n") : [];
  const key = blob.toString("base64");
  let known = false;
  let accepted = false;
  let ca = false;
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    const marker = fields[0]?.startsWith("@") ? fields.shift() : undefined;
    const [hosts, , base64] = fields;
    if (!hosts || !base64 || hosts.startsWith("#")) continue;
    if (!matches(hosts, name)) continue;
    if (marker === "@revoked") {
      if (base64 === key) return { ok: false, why: "revoked" };
    } else if (marker === "@cert-authority") ca = true;
    else if (marker === undefined) {
      if (base64 === key) accepted = true;
      else known = true;
    }
  }
  if (accepted) return { ok: true };
  return { ok: false, why: known ? "changed" : ca ? "caOnly" : "unknown" };
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
