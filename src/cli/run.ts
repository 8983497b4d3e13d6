/**
 * The CLI as a function: parses a command line, runs the command, prints, and returns the exit code.
 * `main.ts` (the executable) calls it with the process's streams; tests call it with captures.
 */
import { readFileSync } from "node:fs";
import { isZarrTxError } from "../errors.js";
import { EXIT, exitCodeOf, flag, parseCommandLine, UsageError } from "./args.js";
import { type Command, commandHelp } from "./command.js";
import { command as bench } from "./commands/bench.js";
import { command as create } from "./commands/create.js";
import { command as get } from "./commands/get.js";
import { command as info } from "./commands/info.js";
import { command as recover } from "./commands/recover.js";
import { command as set } from "./commands/set.js";
import { command as stress } from "./commands/stress.js";
import { command as verify } from "./commands/verify.js";
import { type CliIo, Output, processIo, toJson } from "./output.js";

/** Every command, in help order. */
export const COMMANDS: readonly Command[] = [create, info, get, set, recover, verify, stress, bench];

function version(): string {
  try {
    // package.json is two levels up from both src/cli and dist/cli.
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `zarr-tx ${version()}: transactional writes for plain Zarr arrays (v3 and v2)

Usage: zarr-tx <command> [STORE] [options]
       zarr-tx <command> --help
       zarr-tx help <command>

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

STORE is a filesystem path (data.zarr, /mnt/x.zarr), a file:// URL, or s3://bucket/prefix
(--endpoint URL for S3-compatible services, --region; credentials from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role, never from the command line).

Synchronizers (--sync, for commands that read or write through transactions):
  inprocess  default; isolates the transactions of this one command only
  file       OS file locks (Linux OFD byte-range locks): processes on one host or a shared
             POSIX filesystem; --lock-dir DIR to keep lock files elsewhere
  redis      Redlock over --redis redis://host:port masters (repeat: 1, 3 or 5)

Every command takes --json (one JSON object on stdout, errors included), --quiet (no
progress line; progress is shown on stderr only when stdout is a terminal) and --help.

Exit codes:
  0    ok
  1    failure: an operation failed, verify found damage, stress saw a torn read or a lost
       increment, recover found journal entries it cannot apply
  2    bad arguments: unknown command or option, malformed value, a selection or value that
       does not fit the array
  3    not available: the Redis synchronizer without its module, file locks on
       an unsupported platform
  130  interrupted (Ctrl-C)
`;
}

/** Prints an error (human text on stderr, or JSON on stdout) and returns its exit code. */
function report(error: unknown, commandName: string | undefined, json: boolean, io: CliIo): number {
  const code = exitCodeOf(error);
  const name = commandName === undefined ? "zarr-tx" : `zarr-tx ${commandName}`;
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    const body = {
      ok: false,
      ...(commandName !== undefined ? { command: commandName } : {}),
      error: {
        code: isZarrTxError(error) ? error.code : null,
        name: error instanceof Error ? error.name : typeof error,
        message,
      },
      exitCode: code,
    };
    io.stdout.write(`${toJson(body)}\n`);
    return code;
  }
  if (error instanceof UsageError) {
    io.stderr.write(`${name}: ${message}\nRun "${name} --help" for usage.\n`);
  } else if (isZarrTxError(error)) {
    io.stderr.write(`${name}: ${message} [${error.code}]\n`);
  } else if (typeof (error as NodeJS.ErrnoException)?.code === "string") {
    // A system error (ENOENT, EACCES, ENOSPC…): the environment, not a bug; its message names the file.
    io.stderr.write(`${name}: ${message}\n`);
  } else {
    // Not one of ours: a bug; the stack helps a report.
    io.stderr.write(
      `${name}: unexpected error: ${error instanceof Error ? (error.stack ?? message) : message}\n`,
    );
  }
  return code;
}

/**
 * Runs the CLI on `argv` (without node and script) and resolves to the exit code; never rejects.
 * Errors are printed (human text on stderr, or JSON on stdout with --json) and mapped to exit codes.
 *
 * @param io where to print (default: the process's streams).
 * @param signal aborting it interrupts the command (the executable aborts it on SIGINT); the result is
 *   then {@link EXIT.interrupted} unless the command failed first.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo = processIo(),
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  const json = argv.includes("--json");
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr.write(topHelp());
    return EXIT.usage;
  }
  if (first === "-h" || first === "--help") {
    io.stdout.write(topHelp());
    return EXIT.ok;
  }
  if (first === "-V" || first === "--version") {
    io.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  if (first === "help") {
    const target = rest[0];
    const found = COMMANDS.find((c) => c.name === target);
    if (target !== undefined && found === undefined)
      return report(new UsageError(`unknown command ${JSON.stringify(target)}`), undefined, json, io);
    io.stdout.write(found ? commandHelp(found) : topHelp());
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (command === undefined) {
    return report(
      new UsageError(
        `unknown command ${JSON.stringify(first)}; commands: ${COMMANDS.map((c) => c.name).join(", ")}`,
      ),
      undefined,
      json,
      io,
    );
  }
  try {
    const args = parseCommandLine(rest, command.options, command.positionals);
    if (flag(args, "help")) {
      io.stdout.write(commandHelp(command));
      return EXIT.ok;
    }
    const out = new Output(command.name, { json: flag(args, "json"), quiet: flag(args, "quiet"), io });
    const code = await command.run({ args, out, signal });
    out.endProgress();
    return signal.aborted && code === EXIT.ok ? EXIT.interrupted : code;
  } catch (error) {
    if (signal.aborted) {
      io.stderr.write(`zarr-tx ${command.name}: interrupted\n`);
      return EXIT.interrupted;
    }
    return report(error, command.name, json, io);
  }
}
