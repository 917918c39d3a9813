import { readFileSync } from "node:fs";
import ssh2 from "ssh2";
import { EnvironmentError } from "../../core/errors.ts";

/** A key file that cannot be used: missing, not a key, encrypted with no way to ask, or a wrong passphrase. */
export class SshKeyError extends EnvironmentError {
  override readonly name = "SshKeyError";
}

/** Asks for the passphrase of an encrypted key file (a terminal prompt, or the environment). */
export type PassphraseSource = (keyFile: string) => Promise<string>;

export interface LoadedKey {
  privateKey: Buffer;
  passphrase?: string;
}

/**
 * Whether a private key file is encrypted, read from the file itself: OpenSSH's format names its
 * cipher ("none" when clear), PEM says ENCRYPTED in its header.
 */
export function isEncrypted(data: Buffer): boolean {
  const text = data.toString("utf8");
  const openssh =
    /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (openssh?.[1]) {
    const raw = Buffer.from(openssh[1].replace(/\s+/g, ""), "base64");
    const magic = "openssh-key-v1\0";
    if (raw.subarray(0, magic.length).toString("latin1") !== magic) return false;
    const n = raw.readUInt32BE(magic.length);
    const cipher = raw.subarray(magic.length + 4, magic.length + 4 + n).toString("latin1");
    return cipher !== "none";
  }
  return /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4,ENCRYPTED/.test(text);
}

/**
 * A private key ready for ssh2, asked for its passphrase once per file when it is encrypted.
 * Checked before anything connects: a wrong passphrase is named with the file.
 */
export class KeyRing {
  private readonly loaded = new Map<string, Promise<LoadedKey>>();

  constructor(private readonly ask: PassphraseSource | null) {}

  load(file: string): Promise<LoadedKey> {
    let k = this.loaded.get(file);
    if (!k) {
      k = this.read(file);
      this.loaded.set(file, k);
      k.catch(() => this.loaded.delete(file));
    }
    return k;
  }

  private async read(file: string): Promise<LoadedKey> {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      throw new SshKeyError(`${file}: cannot read the SSH key: ${(e as Error).message}`);
    }
    if (!isEncrypted(data)) {
      const parsed = ssh2.utils.parseKey(data);
      if (parsed instanceof Error)
        throw new SshKeyError(`${file}: not a private key ssh can use: ${parsed.message}`);
      return { privateKey: data };
    }
    if (!this.ask)
      throw new SshKeyError(
        `${file}: the key is encrypted and there is no terminal to ask its passphrase: load it into ssh-agent (agent: true), or set SWITCHOVER_SSH_PASSPHRASE`,
      );
    const passphrase = await this.ask(file);
    const parsed = ssh2.utils.parseKey(data, passphrase);
    if (parsed instanceof Error) throw new SshKeyError(`${file}: wrong passphrase for the SSH key`);
    return { privateKey: data, passphrase };
  }
}
