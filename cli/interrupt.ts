/**
 * Ctrl-C while a command changes things. The first press aborts the signal: the command stops
 * at a point of its choosing (a step's end) and still says where it left the cluster or lab,
 * which a kill in mid-step could not. The second press quits at once, for an operator who
 * cannot wait: exit 130, as a shell reports a command killed by SIGINT.
 */
export function interruptible(
  label: string,
  stopping = "stopping the plan where it is, then checking the cluster",
): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`${label}: interrupted: ${stopping} (Ctrl-C again to quit now)\n`);
    controller.abort();
  };
  process.on("SIGINT", onInterrupt);
  return { signal: controller.signal, release: () => process.off("SIGINT", onInterrupt) };
}
