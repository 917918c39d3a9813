/**
 * The errors the CLI turns into exit codes, by class. A layer's own error extends one of them, so
 * the CLI needs to know no layer's errors to map them; anything else thrown is a bug.
 */

/** Bad input (an option, an argument, a version): the CLI prints the message and exits 3. */
export class UsageError extends Error {
  // Typed as string so that each subclass can name itself.
  override readonly name: string = "UsageError";
}

/**
 * A missing prerequisite or a bad environment (Docker, a file, a lab, a host): nothing was
 * decided, the operator has something to fix. The CLI prints the message and exits 3, or 130
 * when the command stopped short because the operator pressed Ctrl-C.
 */
export class EnvironmentError extends Error {
  override readonly name: string = "EnvironmentError";
  readonly interrupted: boolean;

  constructor(message: string, options?: ErrorOptions & { interrupted?: boolean }) {
    super(message, options);
    this.interrupted = options?.interrupted ?? false;
  }
}
