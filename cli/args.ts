import { type ParseArgsConfig, parseArgs } from "node:util";
import { UsageError } from "../core/errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse<O extends Options>(argv: string[], options: O, positionals = false) {
  try {
    return parseArgs({
      args: negativeValuesAttached(argv, options),
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: positionals,
      strict: true,
    });
  } catch (e) {
    // The CLI's errors are one line; parseArgs spreads some over three.
    const message = e instanceof Error ? e.message : String(e);
    throw new UsageError(message.replace(/\s*\n\s*/g, " "));
  }
}

/**
 * parseArgs takes `--runs -5` for a flag after a flag and rejects it as ambiguous; a value that
 * reads as a number is meant as the option's value, so it is attached (`--runs=-5`) and reaches
 * the option's own check, which says what is wrong with it.
 */
function negativeValuesAttached(argv: string[], options: Options): string[] {
  const takesValue = (arg: string): string | null => {
    const name = arg.startsWith("--")
      ? arg.slice(2)
      : Object.keys(options).find((k) => arg === `-${options[k]?.short}`);
    return name !== undefined && options[name]?.type === "string" ? name : null;
  };
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg === "--") return [...out, ...argv.slice(i)];
    const name = takesValue(arg);
    if (name !== null && next !== undefined && /^-\d/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/**
 * Splits argv at the first `--`: what follows belongs to the program the command starts (psql),
 * untouched; what precedes it is the command's own, for `parse`.
 */
export function splitPassThrough(argv: string[]): { own: string[]; passed: string[] } {
  const split = argv.indexOf("--");
  if (split < 0) return { own: argv, passed: [] };
  return { own: argv.slice(0, split), passed: argv.slice(split + 1) };
}

/** `--help`: the text goes to stdout and nothing runs. */
export function printHelp(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

export function intOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min = 0,
): number {
  if (value === undefined) return fallback;
  // Digits only: Number() would read "" as 0 and accept "1e3" or "0x10".
  const n = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
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
