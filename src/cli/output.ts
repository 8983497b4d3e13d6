/**
 * What the CLI prints: human text or one JSON object on stdout, warnings on stderr, and a progress line
 * on stderr only when stdout is a terminal (so pipes, files and `--json` get clean output).
 */

const BIGINT_MARK = "\u0000bigint:";

/**
 * JSON text of `value` that keeps what JSON.stringify loses: a bigint is written as its exact digits
 * (Python's json and most parsers read them exactly), NaN and ±Infinity as the strings "NaN",
 * "Infinity", "-Infinity" (as Zarr metadata does). `indent` as in JSON.stringify.
 */
export function toJson(value: unknown, indent?: number): string {
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === "bigint") return BIGINT_MARK + v.toString();
      if (typeof v === "number" && !Number.isFinite(v)) {
        return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
      }
      return v;
    },
    indent,
  );
  // The marks are JSON strings now ("\u0000bigint:123"); unquote them into bare numbers.
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, "$1");
}

/** A text sink: a stream's `write`, and whether it is a terminal. */
export interface TextSink {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** Where the CLI prints: the process's streams, or captures in tests. */
export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
}

/** The process's stdout and stderr. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr };
}

/** The printer of one command run. */
export class Output {
  /** True with `--json`: stdout gets exactly one JSON object. */
  readonly json: boolean;
  readonly #progress: boolean;
  readonly #command: string;
  readonly #io: CliIo;
  #progressShown = false;
  #lastProgress = 0;

  /**
   * @param command the command's name, put into JSON results.
   * @param options.json print JSON; options.quiet: never show progress; options.io: where to print
   *   (default: the process's stdout and stderr).
   */
  constructor(
    command: string,
    options: { readonly json: boolean; readonly quiet: boolean; readonly io?: CliIo },
  ) {
    this.#command = command;
    this.json = options.json;
    this.#io = options.io ?? processIo();
    // Progress is for a person watching a terminal: never in pipes, files, or JSON mode.
    this.#progress =
      !options.json && !options.quiet && this.#io.stdout.isTTY === true && this.#io.stderr.isTTY === true;
  }

  /** Prints the result: `human` lines, or `{ ok, command, ...data }` as JSON. */
  result(human: string | readonly string[], data: Record<string, unknown>, ok = true): void {
    this.endProgress();
    if (this.json) {
      this.#io.stdout.write(`${toJson({ ok, command: this.#command, ...data })}\n`);
      return;
    }
    const lines = typeof human === "string" ? [human] : human;
    if (lines.length > 0) this.#io.stdout.write(`${lines.join("\n")}\n`);
  }

  /** Prints a warning on stderr (in JSON mode too: stdout stays one JSON object). */
  warn(text: string): void {
    this.endProgress();
    this.#io.stderr.write(`warning: ${text}\n`);
  }

  /** Shows or replaces the progress line, at most 10 times a second. No-op unless stdout is a TTY. */
  progress(text: string, force = false): void {
    if (!this.#progress) return;
    const now = performance.now();
    if (!force && now - this.#lastProgress < 100) return;
    this.#lastProgress = now;
    this.#progressShown = true;
    // \r and "erase to end of line": the line is rewritten in place.
    this.#io.stderr.write(`\r\u001b[K${text}`);
  }

  /** Removes the progress line, if one is shown. */
  endProgress(): void {
    if (!this.#progressShown) return;
    this.#progressShown = false;
    this.#io.stderr.write("\r\u001b[K");
  }
}

/** "1.5 KiB", "3.2 MiB"… for human output. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Aligns `[label, value]` rows into "label   value" lines. */
export function table(rows: readonly (readonly [string, string])[], indent = ""): string[] {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`);
}
