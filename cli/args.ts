import { type ParseArgsConfig, parseArgs } from "node:util";

/** Bad usage: the CLI prints the message and exits 3. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A missing prerequisite (Docker, a file, a lab): the CLI prints the message and exits 3. */
export class EnvironmentError extends Error {
  override readonly name = "EnvironmentError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse<O extends Options>(argv: string[], options: O, positionals = false) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: positionals,
      strict: true,
    });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

export function intOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min = 0,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number ≥ ${min}, not "${value}"`);
  return n;
}

export function choice<T extends string>(
  value: string | undefined,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, not "${value}"`);
  }
  return value as T;
}
