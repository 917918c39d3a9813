/**
 * One progress line on stderr: rewritten in place on a terminal, printed at most every few
 * seconds otherwise (CI logs), silent when SWITCHOVER_QUIET is set.
 */
export function progressLine(label: string): ((text: string) => void) & { done(): void } {
  const tty = process.stderr.isTTY === true;
  const quiet = process.env.SWITCHOVER_QUIET !== undefined;
  let last = 0;
  let shown = "";
  const update = (text: string) => {
    shown = `${label}: ${text}`;
    const now = Date.now();
    if (quiet || (!tty && now - last < 5000) || (tty && now - last < 100)) return;
    last = now;
    process.stderr.write(tty ? `\r\x1b[K${shown}` : `${shown}\n`);
  };
  return Object.assign(update, {
    done() {
      if (quiet || !shown) return;
      process.stderr.write(tty ? `\r\x1b[K${shown}\n` : `${shown}\n`);
    },
  });
}
