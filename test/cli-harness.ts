/** What the CLI tests (test/cli.test.ts, test/cli.s3.test.ts) share: a run's outcome, and in-process runs. */
import { runCli } from "../src/cli/run.js";

/** How a `zarr-tx` run ended: its exit code and everything it printed. */
export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the CLI in this process (`runCli`, what the executable calls), capturing its output: the same
 * code path minus process start-up, for the many argument checks that would each cost a subprocess.
 */
export async function cliInProcess(args: readonly string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}
