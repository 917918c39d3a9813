import { createInterface } from "node:readline/promises";
import { Writable } from "node:stream";
import type { PassphraseSource } from "../hosts/transports/ssh-keys.ts";

/**
 * Where an encrypted SSH key's passphrase comes from: SWITCHOVER_SSH_PASSPHRASE (a script's), or
 * the terminal, asked once per key without echo; with neither, none (the key is refused, saying
 * what to do).
 */
export function passphraseSource(): PassphraseSource | null {
  const given = process.env.SWITCHOVER_SSH_PASSPHRASE;
  if (given !== undefined) return async () => given;
  if (!process.stdin.isTTY) return null;
  return async (file) => {
    process.stderr.write(`passphrase for ${file}: `);
    const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
    const rl = createInterface({ input: process.stdin, output: silent, terminal: true });
    try {
      return await rl.question("");
    } finally {
      rl.close();
      process.stderr.write("\n");
    }
  };
}
