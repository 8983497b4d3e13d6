#!/usr/bin/env node
/**
 * The `zarr-tx` executable: `zarr-tx <command> [STORE] [options]`. See `zarr-tx --help` and docs/cli.md.
 *
 * Exit codes: 0 ok; 1 failure (verify found damage, stress saw an anomaly, an operation failed);
 * 2 bad arguments; 3 not available (a store or synchronizer this build or platform lacks); 130 interrupted.
 */
import { EXIT } from "./args.js";
import { runCli } from "./run.js";

const controller = new AbortController();
let interrupts = 0;
process.on("SIGINT", () => {
  // First Ctrl-C: stop gracefully (stress stops its workers and reports). Second: leave at once.
  if (++interrupts > 1) process.exit(EXIT.interrupted);
  controller.abort(new Error("interrupted"));
});

const code = await runCli(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr },
  controller.signal,
);
// Exit once stdout and stderr are flushed (pipes are asynchronous), so that a handle some library kept
// open (a connection pool, a worker) cannot keep a finished command alive.
process.stdout.write("", () => {
  process.stderr.write("", () => process.exit(code));
});
