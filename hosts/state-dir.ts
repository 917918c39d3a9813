import { homedir } from "node:os";
import { join } from "node:path";

/** Where pg-switchover keeps its state on this machine: $XDG_STATE_HOME/pg-switchover. */
export function stateDir(...parts: string[]): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "pg-switchover", ...parts);
}
