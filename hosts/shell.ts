/** What the host commands are made of: a script for `sh -c`, run as `user`, and its quoting. */
export interface HostCommand {
  user: "root" | "postgres";
  script: string;
}

export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

/**
 * Polls `condition` every 10 ms for at most `timeoutS`, then fails saying `timedOut` (as `who`,
 * the tool that waited). pg_ctl's own -w polls every 100 ms; on the outage path (stop, promote)
 * those tenths add up.
 */
export function pollUntil(
  condition: string,
  timeoutS: number,
  timedOut: string,
  who = "pg_ctl",
): string {
  return `{ n=0; until ${condition}; do n=$((n+1)); if [ $n -gt ${timeoutS * 100} ]; then echo ${shellQuote(`${who}: ${timedOut}`)} >&2; exit 1; fi; sleep 0.01; done; }`;
}
