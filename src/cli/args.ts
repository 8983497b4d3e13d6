/**
 * Command-line plumbing shared by every command: option specs (for `node:util` `parseArgs` and for the
 * help text), typed accessors for parsed values, the usage error, and exit codes.
 */
import { parseArgs } from "node:util";
import { InvalidArgumentError, isZarrTxError, type ZarrTxErrorCode } from "../errors.js";

/** Exit codes of the `zarr-tx` executable. Documented in `zarr-tx --help` and docs/cli.md; never renumbered. */
export const EXIT = {
  /** Success (verify: no damage; stress: nothing torn or lost). */
  ok: 0,
  /** The operation failed, damage was found (verify), or an anomaly was seen (stress). */
  failure: 1,
  /** Bad arguments: unknown command or option, malformed value, a selection or value that does not fit. */
  usage: 2,
  /** Not available: a store scheme or synchronizer that this build or platform does not have (yet). */
  unavailable: 3,
  /** Interrupted by SIGINT. */
  interrupted: 130,
} as const;

/**
 * A bad command line: unknown option, missing or malformed value. The CLI prints the message and a
 * pointer to the command's `--help`, and exits with {@link EXIT.usage}. Code `ERR_INVALID_ARGUMENT`.
 */
export class UsageError extends InvalidArgumentError {}

const USAGE_CODES: ReadonlySet<ZarrTxErrorCode> = new Set([
  "ERR_INVALID_ARGUMENT",
  "ERR_INVALID_SELECTION",
  "ERR_OUT_OF_BOUNDS",
  "ERR_INVALID_STEP",
  "ERR_VALUE_SHAPE",
  "ERR_VALUE_DTYPE",
]);

/**
 * The exit code for an error: {@link EXIT.usage} for bad input (usage errors, and zarr-tx errors about
 * selections, values and arguments), {@link EXIT.unavailable} for `ERR_UNSUPPORTED`, else
 * {@link EXIT.failure}. Never throws.
 */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (isZarrTxError(error)) {
    if (USAGE_CODES.has(error.code)) return EXIT.usage;
    if (error.code === "ERR_UNSUPPORTED") return EXIT.unavailable;
  }
  return EXIT.failure;
}

/** One option of a command: how `parseArgs` reads it and how the help describes it. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** May be given several times (the value is then a list). */
  readonly multiple?: boolean;
  /** Placeholder of the value in the help, e.g. "N" or "URL". */
  readonly value?: string;
  readonly help: string;
}

/** The parsed command line of one command. */
export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
}

/** Options every command takes. */
export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: "boolean", short: "h", help: "show this help and exit" },
  json: { type: "boolean", help: "print one machine-readable JSON object on stdout (errors too)" },
  quiet: {
    type: "boolean",
    short: "q",
    help: "no progress line on stderr (it is shown only when stdout is a TTY)",
  },
};

/**
 * Parses `argv` against `options` (plus {@link COMMON_OPTIONS}), strictly: an unknown option, a missing
 * value or a value given to a flag throws {@link UsageError}. Positionals are counted against
 * `[min, max]`.
 */
export function parseCommandLine(
  argv: readonly string[],
  options: Readonly<Record<string, OptionSpec>>,
  positionals: { readonly min: number; readonly max: number },
): ParsedArgs {
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries({ ...COMMON_OPTIONS, ...options })) {
    config[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, config),
      options: config,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs reports with TypeErrors whose messages name the option; keep them, drop the stack.
    throw new UsageError(cleanParseMessage(error));
  }
  if (parsed.values.help) return parsed;
  if (parsed.positionals.length < positionals.min) {
    throw new UsageError(
      positionals.min === 1 ? "missing the STORE argument" : `expected at least ${positionals.min} arguments`,
    );
  }
  if (parsed.positionals.length > positionals.max) {
    const extra = parsed.positionals.slice(positionals.max).join(" ");
    throw new UsageError(`unexpected argument(s): ${extra}`);
  }
  return parsed;
}

/**
 * `--fill -1`, `--sel -1:` : parseArgs refuses a value that starts with "-" as ambiguous. A value that
 * starts like a negative number or a negative slice bound is joined to its option (`--fill=-1`), as
 * users expect.
 */
function joinNegativeValues(
  argv: readonly string[],
  config: Readonly<Record<string, { type: "string" | "boolean"; short?: string }>>,
): string[] {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(config)) {
    if (spec.type !== "string") continue;
    takesValue.add(`--${name}`);
    if (spec.short) takesValue.add(`-${spec.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-(\d|\.\d|:|inf|nan)/i.test(next)) {
      out.push(arg.startsWith("--") ? `${arg}=${next}` : `${arg}${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

function cleanParseMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // "Unknown option '--x'. To specify a positional argument starting with a '-', place it at the end of
  // the command after '--', as in '-- \"--x\"" is long; its first sentence says it all.
  const first = message.split(". ")[0] ?? message;
  return first.endsWith(".") ? first.slice(0, -1) : first;
}

/** A string option, or undefined when absent. */
export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  if (Array.isArray(value)) return value.length > 0 ? String(value[value.length - 1]) : undefined;
  return typeof value === "string" ? value : undefined;
}

/** Every value of a repeatable string option (empty when absent). */
export function listOption(args: ParsedArgs, name: string): string[] {
  const value = args.values[name];
  if (Array.isArray(value)) return value.map(String);
  return typeof value === "string" ? [value] : [];
}

/** A boolean flag. */
export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/**
 * An integer option within `[min, max]`, or `fallback` when absent. Throws {@link UsageError} for
 * anything else (fractions, words, out of range).
 */
export function intOption(
  args: ParsedArgs,
  name: string,
  range: { readonly min: number; readonly max: number },
  fallback: number,
): number;
export function intOption(
  args: ParsedArgs,
  name: string,
  range: { readonly min: number; readonly max: number },
  fallback?: number,
): number | undefined;
export function intOption(
  args: ParsedArgs,
  name: string,
  range: { readonly min: number; readonly max: number },
  fallback?: number,
): number | undefined {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  return parseInteger(text, `--${name}`, range);
}

/** Parses a decimal integer in `[min, max]`; throws {@link UsageError} naming `what` otherwise. */
export function parseInteger(
  text: string,
  what: string,
  range: { readonly min: number; readonly max: number },
): number {
  const trimmed = text.trim();
  const value = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < range.min || value > range.max) {
    const bounds =
      range.max === Number.MAX_SAFE_INTEGER ? `≥ ${range.min}` : `from ${range.min} to ${range.max}`;
    throw new UsageError(`${what} must be a whole number ${bounds}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** A non-negative number (seconds, milliseconds) option, or `fallback`. Throws {@link UsageError}. */
export function numberOption(args: ParsedArgs, name: string, fallback: number): number {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`--${name} must be a number ≥ 0, got ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * A comma-separated list of integers ("100,200"), each ≥ `min`. Throws {@link UsageError} naming the
 * option otherwise.
 */
export function parseIntList(text: string, what: string, min: number): number[] {
  if (text.trim() === "") return [];
  return text.split(",").map((part) => parseInteger(part, what, { min, max: Number.MAX_SAFE_INTEGER }));
}

/** One of `choices`, or `fallback` when absent. Throws {@link UsageError} otherwise. */
export function choiceOption<T extends string>(
  args: ParsedArgs,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}; got ${JSON.stringify(text)}`);
  }
  return text as T;
}
