/** `zarr-tx bench`: runs the repository's benchmarks (bench/all.ts), or says how to. */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { EXIT, flag } from "../args.js";
import type { Command } from "../command.js";

/** The package root: three levels above this file, both in src/cli/commands and dist/cli/commands. */
function packageRoot(): string {
  return fileURLToPath(new URL("../../../", import.meta.url));
}

/** True when `tsx` (a dev dependency) resolves from the package root. */
function hasTsx(root: string): boolean {
  try {
    createRequire(`${root}package.json`).resolve("tsx");
    return true;
  } catch {
    return false;
  }
}

/** `zarr-tx bench`. */
export const command: Command = {
  name: "bench",
  summary: "Run the benchmarks (bench/all.ts of a source checkout); prints one JSON line per result.",
  usage: ["bench [FILTER] [--quick] [--print]"],
  description: [
    "Runs `npm run bench` (bench/all.ts with tsx) in the package directory: every benchmark, one after the " +
      "other (zarr-tx against raw zarrita and the disk, against zarr-python's ProcessSynchronizer on the #857 " +
      "and counter workloads, lock latency per synchronizer, scale). FILTER keeps only workloads whose name " +
      "contains it; --quick makes a smoke run of a few minutes. Results are JSON lines (medians, p99 or " +
      "spread, ratio against a named baseline: the machines are noisy), then one summary line with every " +
      "goal met or missed. The benchmarks ship with the source repository, not with the installed package: " +
      "without them, bench prints how to get them.",
  ],
  options: {
    quick: { type: "boolean", help: "fewer repeats and shorter runs (a smoke run)" },
    print: { type: "boolean", help: "print the command instead of running it" },
  },
  positionals: { min: 0, max: 1 },
  examples: ["zarr-tx bench", "zarr-tx bench --quick", "zarr-tx bench diagonal", "zarr-tx bench --print"],
  async run({ args, out, signal }) {
    const root = packageRoot();
    const script = `${root}bench/all.ts`;
    const filter = args.positionals[0];
    const quick = flag(args, "quick");
    const passOn = [...(filter !== undefined ? [filter] : []), ...(quick ? ["--quick"] : [])];
    const argv = ["--import", "tsx", script, ...passOn];
    const runnable = existsSync(script) && hasTsx(root);
    const commandLine = `cd ${root} && npm run bench${passOn.length > 0 ? ` -- ${passOn.join(" ")}` : ""}`;
    if (flag(args, "print") || !runnable) {
      const how = runnable
        ? commandLine
        : "the benchmarks come with the source repository: clone it, then run `npm ci` and `npm run bench` in it";
      out.result(how, {
        runnable,
        command: runnable ? commandLine : null,
        script: existsSync(script) ? script : null,
      });
      return runnable ? EXIT.ok : EXIT.unavailable;
    }
    // Inherit stdio: the JSON lines stream to the user as they are produced.
    const child = spawn(process.execPath, argv, { cwd: root, stdio: "inherit", signal });
    const code = await new Promise<number>((resolve) => {
      child.on("error", () => resolve(signal.aborted ? EXIT.interrupted : EXIT.failure));
      child.on("exit", (exitCode, exitSignal) =>
        resolve(exitCode ?? (exitSignal === "SIGINT" ? EXIT.interrupted : EXIT.failure)),
      );
    });
    return code;
  },
};
