/**
 * The shape of a CLI command and its help text, plus helpers shared by the commands that open a store.
 */
import { COMMON_OPTIONS, type OptionSpec, type ParsedArgs, stringOption } from "./args.js";
import type { Output } from "./output.js";

/** What a command's `run` gets. */
export interface CommandContext {
  readonly args: ParsedArgs;
  readonly out: Output;
  /** Aborted on SIGINT: long commands stop early and clean up. */
  readonly signal: AbortSignal;
}

/** One `zarr-tx` command. */
export interface Command {
  readonly name: string;
  /** One line for the top-level help. */
  readonly summary: string;
  /** Usage lines, without the leading "zarr-tx ". */
  readonly usage: readonly string[];
  /** Paragraphs describing what it does and guarantees. */
  readonly description: readonly string[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly positionals: { readonly min: number; readonly max: number };
  readonly examples: readonly string[];
  /** Runs the command; resolves to the exit code. Throws typed errors (mapped to exit codes by main). */
  run(context: CommandContext): Promise<number>;
}

/** The options of s3:// stores (credentials come from the environment, never from the command line). */
export const S3_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  endpoint: {
    type: "string",
    value: "URL",
    help: "S3-compatible endpoint, for s3:// stores (implies --path-style)",
  },
  region: {
    type: "string",
    value: "REGION",
    help: "the bucket's region, for s3:// stores (default: AWS_REGION)",
  },
  "path-style": { type: "boolean", help: "address s3:// buckets in the path, not the host name" },
};

/** The store options of commands that open a store. */
export const STORE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  path: {
    type: "string",
    short: "p",
    value: "PATH",
    help: 'the array\'s path inside the store (default "/")',
  },
  ...S3_OPTIONS,
};

/** The `--path` option, or "/" (the store's root). */
export function arrayPathOf(args: ParsedArgs): string {
  return stringOption(args, "path") ?? "/";
}

const WIDTH = 100;

function wrap(text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(indent + line);
  return lines;
}

/** Formats the options of a command as help lines. */
export function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const labels = Object.entries(options).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : "    ";
    const value = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
    return [`  ${short}--${name}${value}`, spec.help + (spec.multiple ? " (repeatable)" : "")] as const;
  });
  const width = Math.min(34, Math.max(...labels.map(([label]) => label.length)) + 2);
  const lines: string[] = [];
  for (const [label, help] of labels) {
    const wrapped = wrap(help, " ".repeat(width));
    if (label.length + 2 <= width) {
      lines.push(label.padEnd(width) + (wrapped[0] ?? "").trimStart());
      lines.push(...wrapped.slice(1));
    } else {
      lines.push(label, ...wrapped);
    }
  }
  return lines;
}

/** The full `--help` text of a command. */
export function commandHelp(command: Command): string {
  const lines: string[] = [];
  lines.push(
    `Usage: ${command.usage.map((u, i) => (i === 0 ? "" : "       ") + `zarr-tx ${u}`).join("\n")}`,
    "",
  );
  lines.push(...command.summary.split("\n"), "");
  for (const paragraph of command.description) lines.push(...wrap(paragraph, ""), "");
  lines.push("Options:", ...optionLines(command.options), ...optionLines(COMMON_OPTIONS), "");
  if (command.examples.length > 0) lines.push("Examples:", ...command.examples.map((e) => `  ${e}`), "");
  lines.push(
    "Exit codes: 0 ok, 1 failure (or damage/anomaly found), 2 bad arguments, 3 not available, 130 interrupted.",
  );
  return `${lines.join("\n")}\n`;
}
