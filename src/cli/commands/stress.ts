/**
 * `zarr-tx stress`: the user's own proof that a store + synchronizer setup is safe. N worker processes
 * run the diagonal (#857) and counter workloads against one store; the parent reports torn reads, lost
 * increments and throughput.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, normalizePath, open } from "../../array/array.js";
import { get } from "../../array/transaction.js";
import { isZarrTxError, ZarrTxError } from "../../errors.js";
import type { AbsolutePath, Store } from "../../store/types.js";
import type { Synchronizer } from "../../sync/types.js";
import {
  choiceOption,
  EXIT,
  flag,
  intOption,
  numberOption,
  parseIntList,
  stringOption,
  UsageError,
} from "../args.js";
import { type Command, S3_OPTIONS } from "../command.js";
import type { Output } from "../output.js";
import { openStore, s3OptionsOf } from "../stores.js";
import type {
  FromWorker,
  ToWorker,
  WorkerConfig,
  WorkerCounts,
  WorkerResult,
  Workload,
} from "../stress-worker.js";
import {
  describeSync,
  lockTimeoutOf,
  SYNC_OPTIONS,
  type SyncConfig,
  syncConfigOf,
  withSynchronizer,
} from "../synchronizers.js";
import { countTornDiagonals, diagonalCells, diagonalCount } from "../workloads.js";

const MARKER = "zarr-tx-stress";
const WORKER_START_TIMEOUT_MS = 60_000;

/** The worker module beside this one: .ts when running from source (tsx), .js when built. */
function workerModule(): string {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`../stress-worker${extension}`, import.meta.url));
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

/** Creates (or re-creates) the two workload arrays; refuses to overwrite arrays it did not make. */
async function prepareArrays(
  store: Store,
  synchronizer: Synchronizer,
  paths: readonly AbsolutePath[],
  shape: readonly number[],
  chunks: readonly number[],
): Promise<void> {
  for (const path of paths) {
    try {
      const existing = await open(store, { path, synchronizer });
      if (existing.attrs[MARKER] !== true) {
        throw new ZarrTxError(
          "ERR_ARRAY_EXISTS",
          `refusing to overwrite ${path} in ${store.id}: it was not made by zarr-tx stress; choose another --path`,
        );
      }
    } catch (error) {
      if (!isZarrTxError(error, "ERR_ARRAY_NOT_FOUND")) throw error;
    }
    await create(store, {
      path,
      shape,
      chunkShape: chunks,
      dtype: "int32",
      attributes: { [MARKER]: true },
      overwrite: true,
      synchronizer,
    });
  }
}

interface WorkerHandle {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly done: Promise<WorkerResult>;
  counts: WorkerCounts;
  stderr: string;
}

function startWorker(config: WorkerConfig): WorkerHandle {
  const child = fork(workerModule(), [], {
    // The same loader flags as this process (tsx when running from source).
    execArgv: process.execArgv,
    stdio: ["ignore", "inherit", "pipe", "ipc"],
  });
  const handle: WorkerHandle = {
    child,
    ready: undefined as unknown as Promise<void>,
    done: undefined as unknown as Promise<WorkerResult>,
    counts: { diagonalWrites: 0, diagonalReads: 0, tornReads: 0, increments: 0, errors: 0 },
    stderr: "",
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (text: string) => {
    handle.stderr = (handle.stderr + text).slice(-4000);
  });
  let settleReady: { resolve: () => void; reject: (e: Error) => void } | undefined;
  (handle as { ready: Promise<void> }).ready = new Promise<void>((resolve, reject) => {
    settleReady = { resolve, reject };
  });
  (handle as { done: Promise<WorkerResult> }).done = new Promise<WorkerResult>((resolve, reject) => {
    let result: WorkerResult | undefined;
    let failure: Error | undefined;
    child.on("message", (message: FromWorker) => {
      if (message.type === "ready") settleReady?.resolve();
      else if (message.type === "progress") handle.counts = message.counts;
      else if (message.type === "done") {
        result = message.result;
        handle.counts = message.result.counts;
      } else if (message.type === "error") {
        failure = new ZarrTxError(
          (message.code as ZarrTxError["code"] | null) ?? "ERR_STORE_IO",
          `worker ${config.index} failed: ${message.message}`,
        );
      }
    });
    child.on("error", (error) => {
      failure ??= error;
    });
    child.on("exit", (code, signal) => {
      const error =
        failure ??
        (result === undefined
          ? new Error(
              `worker ${config.index} exited (${signal ?? `code ${code}`}) without a result${handle.stderr ? `: ${handle.stderr.trim()}` : ""}`,
            )
          : undefined);
      if (error !== undefined) {
        settleReady?.reject(error);
        reject(error);
      } else resolve(result!);
    });
  });
  // Both are awaited later; a rejection before that is not unhandled.
  handle.ready.catch(() => {});
  handle.done.catch(() => {});
  child.send({ type: "start", config } satisfies ToWorker);
  return handle;
}

function sumCounts(handles: readonly WorkerHandle[]): WorkerCounts {
  const total: WorkerCounts = { diagonalWrites: 0, diagonalReads: 0, tornReads: 0, increments: 0, errors: 0 };
  for (const h of handles) {
    for (const key of Object.keys(total) as (keyof WorkerCounts)[]) total[key] += h.counts[key];
  }
  return total;
}

function showProgress(out: Output, handles: readonly WorkerHandle[], started: number, seconds: number): void {
  const c = sumCounts(handles);
  const elapsed = (performance.now() - started) / 1000;
  out.progress(
    `stress: ${Math.min(elapsed, seconds).toFixed(1)}/${seconds} s, ${c.diagonalWrites} diagonal writes, ` +
      `${c.diagonalReads} reads (${c.tornReads} torn), ${c.increments} increments, ${c.errors} errors`,
  );
}

/** `zarr-tx stress`. */
export const command: Command = {
  name: "stress",
  summary:
    "Prove a setup safe: N processes run the diagonal and counter workloads; report torn reads, lost increments, throughput.",
  usage: ["stress [STORE] [--procs N] [--tasks N] [--seconds S] [--sync KIND] [options]"],
  description: [
    "Creates two int32 arrays under --path in STORE (a fresh temp directory when STORE is omitted), then " +
      "starts --procs worker processes with --tasks concurrent tasks each. Diagonal workload (zarr-python " +
      "#857): writers rewrite a whole anti-diagonal with one value in one transaction while readers read " +
      "the whole array and count diagonals that are not uniform (torn reads). Counter workload: " +
      "read-modify-write increments of random boxes that cross chunk borders; at the end each cell must " +
      "equal the number of committed increments that covered it (lost increments).",
    "Exit code 0 when nothing was torn or lost and no operation failed, 1 otherwise. A run that shows " +
      "nothing is evidence, not proof: run it long, with as many processes as your job has.",
    "--sync inprocess with --procs above 1 runs anyway, to show what happens without a cross-process " +
      "synchronizer: in-process locks do not isolate processes, so torn reads and lost increments are " +
      "expected (a warning says so, and they are reported as they are).",
    "The arrays are deleted afterwards unless --keep; arrays at --path not made by stress are never overwritten.",
  ],
  options: {
    ...S3_OPTIONS,
    path: {
      type: "string",
      short: "p",
      value: "PATH",
      help: `group path for the workload arrays (default ${MARKER})`,
    },
    procs: { type: "string", value: "N", help: "worker processes (default 4)" },
    tasks: { type: "string", value: "N", help: "concurrent tasks per process (default 4)" },
    seconds: { type: "string", value: "S", help: "how long the workers run (default 5)" },
    workload: { type: "string", value: "W", help: "both (default), diagonal or counter" },
    shape: { type: "string", value: "N,…", help: "shape of each array (default 10,10, as in #857)" },
    chunks: { type: "string", value: "N,…", help: "chunk shape (default 2,2)" },
    seed: { type: "string", value: "N", help: "random seed, to replay a run (default: random)" },
    keep: { type: "boolean", help: "keep the arrays (and the temp directory) afterwards" },
    ...SYNC_OPTIONS,
  },
  positionals: { min: 0, max: 1 },
  examples: [
    "zarr-tx stress                                  # temp dir, in-process locks, 4 processes: shows the damage",
    "zarr-tx stress /shared/scratch.zarr --sync file --procs 8 --seconds 30",
    "zarr-tx stress --sync redis --redis redis://10.0.0.5:6379 --procs 16 --json",
  ],
  async run({ args, out, signal }) {
    const sync: SyncConfig = syncConfigOf(args);
    const procs = intOption(args, "procs", { min: 1, max: 256 }, 4);
    const tasks = intOption(args, "tasks", { min: 1, max: 256 }, 4);
    const seconds = numberOption(args, "seconds", 5);
    if (seconds <= 0 || seconds > 24 * 3600)
      throw new UsageError("--seconds must be more than 0 and at most 86400");
    const workload = choiceOption<Workload>(args, "workload", ["both", "diagonal", "counter"], "both");
    const shape = parseIntList(stringOption(args, "shape") ?? "10,10", "--shape", 1);
    const chunks = parseIntList(stringOption(args, "chunks") ?? "2,2", "--chunks", 1);
    if (shape.length === 0 || shape.length !== chunks.length)
      throw new UsageError("--shape and --chunks need the same number (≥ 1) of dimensions");
    const seed = intOption(args, "seed", { min: 0, max: 2 ** 31 - 1 }, Math.floor(Math.random() * 2 ** 31));
    const lockTimeoutMs = lockTimeoutOf(args);
    const s3 = s3OptionsOf(args);
    const group = normalizePath(stringOption(args, "path") ?? MARKER);
    const paths = [
      `${group === "/" ? "" : group}/diagonal`,
      `${group === "/" ? "" : group}/counter`,
    ] as AbsolutePath[];
    const keep = flag(args, "keep");

    const isolated = !(sync.kind === "inprocess" && procs > 1);
    if (!isolated) {
      out.warn(
        `--sync inprocess does not isolate processes: each of the ${procs} processes has its own lock table. ` +
          "Expect torn reads and lost increments below; use --sync file (one host or a shared POSIX filesystem) or --sync redis.",
      );
    }
    const tempDir =
      args.positionals[0] === undefined ? await mkdtemp(join(tmpdir(), "zarr-tx-stress-")) : undefined;
    const location = args.positionals[0] ?? tempDir!;
    try {
      const store = await openStore(location, {
        readOnly: false,
        ...s3,
      });
      return await withSynchronizer(sync, async (synchronizer) => {
        await prepareArrays(store, synchronizer, paths, shape, chunks);
        const handles: WorkerHandle[] = [];
        const stopAll = () => {
          for (const h of handles) if (h.child.connected) h.child.send({ type: "stop" } satisfies ToWorker);
        };
        signal.addEventListener("abort", stopAll, { once: true });
        let started = performance.now();
        let ticker: ReturnType<typeof setInterval> | undefined;
        const errors: string[] = [];
        let results: WorkerResult[] = [];
        try {
          for (let index = 0; index < procs; index++) {
            handles.push(
              startWorker({
                index,
                store: location,
                s3,
                sync,
                diagonalPath: paths[0]!,
                counterPath: paths[1]!,
                workload,
                tasks,
                seed,
                ...(lockTimeoutMs !== undefined ? { lockTimeoutMs } : {}),
              }),
            );
          }
          out.progress(`stress: starting ${procs} worker process${procs === 1 ? "" : "es"}…`, true);
          let readyTimer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([
            Promise.all(handles.map((h) => h.ready)),
            new Promise<never>((_, reject) => {
              readyTimer = setTimeout(
                () => reject(new Error(`workers did not start within ${WORKER_START_TIMEOUT_MS / 1000} s`)),
                WORKER_START_TIMEOUT_MS,
              );
            }),
          ]).finally(() => clearTimeout(readyTimer));
          // One deadline for all, sent at once: every worker starts together and stops together.
          started = performance.now();
          const deadline = Date.now() + seconds * 1000;
          for (const h of handles) h.child.send({ type: "go", deadline } satisfies ToWorker);
          ticker = setInterval(() => showProgress(out, handles, started, seconds), 200);
          const settled = await Promise.allSettled(handles.map((h) => h.done));
          results = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
          for (const s of settled) if (s.status === "rejected") errors.push((s.reason as Error).message);
        } finally {
          if (ticker !== undefined) clearInterval(ticker);
          signal.removeEventListener("abort", stopAll);
          for (const h of handles)
            if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill();
        }
        const elapsed = (performance.now() - started) / 1000;
        out.endProgress();

        // Final state, read by the parent under its own synchronizer once every worker has stopped.
        const diagonal = await open(store, { path: paths[0]!, synchronizer });
        const counter = await open(store, { path: paths[1]!, synchronizer });
        const diagonals = Array.from({ length: diagonalCount(diagonal.shape) }, (_, d) =>
          diagonalCells(diagonal.shape, d),
        );
        const finalTorn = await countTornDiagonals(diagonal, diagonals);
        const stored = (await get(counter, null)).data as Int32Array;
        let expectedTotal = 0;
        let lost = 0;
        let extra = 0;
        for (let i = 0; i < stored.length; i++) {
          let expected = 0;
          for (const r of results) expected += r.tally[i] ?? 0;
          expectedTotal += expected;
          const actual = stored[i]!;
          if (actual < expected) lost += expected - actual;
          else extra += actual - expected;
        }
        const counts: WorkerCounts = {
          diagonalWrites: 0,
          diagonalReads: 0,
          tornReads: 0,
          increments: 0,
          errors: 0,
        };
        for (const r of results)
          for (const key of Object.keys(counts) as (keyof WorkerCounts)[]) counts[key] += r.counts[key];
        const errorMessages = [...errors, ...results.flatMap((r) => r.errorMessages)];
        const waits = results.flatMap((r) => r.lockWaitMs);
        const holds = results.flatMap((r) => r.lockHoldMs);
        const transactions = results.reduce((n, r) => n + r.transactions, 0);
        // Workers that failed cannot vouch for their tallies: the counter check is only meaningful when all reported.
        const complete = results.length === procs;
        const ok =
          complete &&
          counts.tornReads === 0 &&
          finalTorn === 0 &&
          lost === 0 &&
          extra === 0 &&
          counts.errors === 0 &&
          errors.length === 0;
        const interrupted = signal.aborted;

        if (!keep && tempDir === undefined) {
          // Lock files included: every worker has exited, so nobody holds them.
          for (const path of paths) for (const key of await store.list(`${path}/`)) await store.delete(key);
        }
        const report = {
          store: tempDir === undefined ? store.id : "(temp directory)",
          sync: describeSync(sync),
          isolatedAcrossProcesses: isolated,
          procs,
          tasksPerProcess: tasks,
          workload,
          shape,
          chunks,
          seed,
          seconds: round(elapsed, 2),
          interrupted,
          diagonal: {
            writes: counts.diagonalWrites,
            reads: counts.diagonalReads,
            tornReads: counts.tornReads,
            tornAtEnd: finalTorn,
          },
          counter: { increments: counts.increments, expectedSum: expectedTotal, lost, extra },
          errors: counts.errors + errors.length,
          errorMessages: errorMessages.slice(0, 10),
          throughput: {
            transactionsPerSecond: round(transactions / elapsed, 1),
            diagonalWritesPerSecond: round(counts.diagonalWrites / elapsed, 1),
            readsPerSecond: round(counts.diagonalReads / elapsed, 1),
            incrementsPerSecond: round(counts.increments / elapsed, 1),
          },
          lockMs: {
            waitP50: round(quantile(waits, 0.5)),
            waitP99: round(quantile(waits, 0.99)),
            holdP50: round(quantile(holds, 0.5)),
            holdP99: round(quantile(holds, 0.99)),
          },
          verdict: ok ? "ok" : "FAILED",
        };
        const lines = [
          `stress: ${procs} process${procs === 1 ? "" : "es"} × ${tasks} tasks, ${report.seconds} s, sync ${report.sync}, ` +
            `store ${report.store}, ${shape.join("×")} array, ${chunks.join("×")} chunks, seed ${seed}` +
            (interrupted ? " (interrupted)" : ""),
          `  diagonal: ${counts.diagonalWrites} writes, ${counts.diagonalReads} reads, ${counts.tornReads} torn reads, ${finalTorn} torn at the end`,
          `  counter:  ${counts.increments} increments, ${lost} lost, ${extra} extra (expected sum ${expectedTotal})`,
          `  throughput: ${report.throughput.transactionsPerSecond} transactions/s ` +
            `(${report.throughput.diagonalWritesPerSecond} diagonal writes/s, ${report.throughput.readsPerSecond} reads/s, ${report.throughput.incrementsPerSecond} increments/s)`,
          `  locks: wait p50 ${report.lockMs.waitP50} ms, p99 ${report.lockMs.waitP99} ms; hold p50 ${report.lockMs.holdP50} ms, p99 ${report.lockMs.holdP99} ms`,
          ...(report.errors > 0
            ? [`  errors: ${report.errors}`, ...errorMessages.slice(0, 5).map((m) => `    ${m}`)]
            : []),
          ...(!isolated
            ? [
                "  note: in-process locks do not isolate processes; torn reads and lost increments here are expected, not a zarr-tx bug",
              ]
            : []),
          ok
            ? "  verdict: ok — nothing torn, nothing lost"
            : `  verdict: FAILED — ${isolated ? "this setup is not safe" : "as expected without a cross-process synchronizer"}`,
          ...(keep ? [`  kept the arrays at ${paths.join(" and ")} in ${location}`] : []),
        ];
        out.result(lines, report, ok);
        if (interrupted) return EXIT.interrupted;
        return ok ? EXIT.ok : EXIT.failure;
      });
    } finally {
      if (tempDir !== undefined && !keep) await rm(tempDir, { recursive: true, force: true });
    }
  },
};
