/** Where long work reports what it is doing, one human-readable line at a time (stderr in the CLI). */
export type Progress = (line: string) => void;

export const silent: Progress = () => {};

export const toStderr =
  (prefix = "lab"): Progress =>
  (line) => {
    process.stderr.write(`${prefix}: ${line}\n`);
  };

/** Each step of a run as it starts, with the time since the run began. */
export function stepProgress(progress: Progress): (step: string) => void {
  const start = Date.now();
  return (step) => progress(`${((Date.now() - start) / 1000).toFixed(1).padStart(6)}s  ${step}`);
}
