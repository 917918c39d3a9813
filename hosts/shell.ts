/** What the host commands are made of: a script for `sh -c`, run as `user`, and its quoting. */
export interface HostCommand {
  user: "root" | "postgres";
  script: string;
}

/**
 * The one quoting of every value that reaches a shell line: a word the shell reads back as
 * exactly `text`, one argument whatever it holds. Words with nothing a shell reads specially
 * stay bare, so that a listing reads as a person would type it.
 */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
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

/** Where a host's commands leave their process group's pid: root's, and the OS user's. */
export const ROOT_COMMAND_DIR = "/run/pg-switchover/commands";
export const userCommandDir = (socketDir: string) => `${socketDir}/pg-switchover`;

/**
 * `alive FILE`: the process group a command's pid file names still runs. A pid file names the
 * group's leader and its start time (/proc/<pid>/stat field 22): a pid the kernel gave again to
 * another process is not the leader.
 */
export const ALIVE =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text
  'alive() { [ -r "$1" ] && read -r p t <"$1" && read -r s 2>/dev/null <"/proc/$p/stat" && set -- $s && [ "${22}" = "$t" ]; }';

/** The pid files of a host's commands that change it, of either user (underDeadline `exclusive`). */
export const commandPidFiles = (socketDir: string) =>
  [ROOT_COMMAND_DIR, userCommandDir(socketDir)].map((dir) => `${dir}/command.pid`);

/** What the wrapper exits with when an earlier command still runs (EX_TEMPFAIL). */
export const STILL_RUNS_EXIT = 75;

export interface HostDeadline {
  /** TERM after this long on the host, KILL `killAfterMs` later (core/timeouts.ts hostDeadline). */
  termMs: number;
  killAfterMs: number;
  /**
   * A command that changes the host: it waits (at most half its time) until no earlier such
   * command of this host, of either user, still runs (its pid file in `dirs`), or refuses; and
   * its output goes to files, so that a closed channel does not kill it half way (SIGPIPE).
   */
  exclusive: { own: string; others: string[] } | null;
}

/**
 * `cmd` as it runs on the host: in its own process group under coreutils `timeout` (TERM, then
 * KILL: the whole group, a dpkg or a pg_basebackup with it), so that it is gone on the host
 * before its deadline passes here. Exit 124 or 137: stopped at the deadline; 75: an earlier
 * command still runs. A process that leaves the group (a postmaster `pg_ctl start` spawns, a job
 * systemctl queued) is not the command's and is not stopped.
 */
export function underDeadline(cmd: HostCommand, d: HostDeadline): HostCommand {
  const kill = `${Math.max(1, Math.round(d.killAfterMs / 1000))}`;
  const secs = `"$((left / 1000)).$(printf %03d $((left % 1000)))"`;
  const inner = `timeout -k ${kill} ${secs} sh -c ${shellQuote(cmd.script)}`;
  const said = `case $rc in 124|137) echo "pg-switchover: stopped on the host at its deadline ($((left / 1000))s)" >&2;; esac; exit $rc`;
  if (!d.exclusive) return { user: cmd.user, script: `left=${d.termMs}; ${inner}; rc=$?; ${said}` };
  const own = shellQuote(d.exclusive.own);
  const pidFiles = [d.exclusive.own, ...d.exclusive.others].map((dir) =>
    shellQuote(`${dir}/command.pid`),
  );
  const waitMs = Math.floor(d.termMs / 2);
  // One line (the dry run prints each command on one), so no part may end in `&`.
  const script = [
    "umask 022",
    `{ [ -d ${own} ] || mkdir -p -m 755 ${own}; } || exit 70`,
    ALIVE,
    `w=0; while ${pidFiles.map((f) => `alive ${f}`).join(" || ")}; do [ $w -gt 0 ] || t0=$(date +%s%N); w=$(( ($(date +%s%N) - t0) / 1000000 )); if [ $w -ge ${waitMs} ]; then echo "pg-switchover: an earlier command (process group $p) still runs on this host after $((w / 1000))s: not starting another" >&2; exit ${STILL_RUNS_EXIT}; fi; sleep 0.05; done`,
    `left=$((${d.termMs} - w))`,
    `${inner} >${own}/$$.out 2>${own}/$$.err & p=$!`,
    `read -r s <"/proc/$p/stat"; set -- $s; echo "$p \${22}" >${own}/command.pid`,
    "wait $p; rc=$?",
    // An empty output (most commands on the outage path print nothing) costs no `cat`.
    `[ ! -s ${own}/$$.out ] || cat ${own}/$$.out; [ ! -s ${own}/$$.err ] || cat ${own}/$$.err >&2; rm -f ${own}/$$.out ${own}/$$.err`,
    said,
  ].join("; ");
  return { user: cmd.user, script };
}
