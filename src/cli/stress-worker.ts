/**
 * A worker process of `zarr-tx stress`, started by `child_process.fork`. It talks to its parent over
 * IPC only:
 *   parent → worker  { type: "start", config }   open the store and arrays, then reply "ready"
 *   parent → worker  { type: "go", deadline }     run the workload until `deadline` (epoch ms)
 *   parent → worker  { type: "stop" }             finish the current operations and report now
 *   worker → parent  { type: "ready" } | { type: "progress", counts } | { type: "done", result }
 *                    | { type: "error", message, code }
 * It exits when the parent disconnects, so an interrupted parent leaves no worker behind.
 */
import { open } from "../array/array.js";
import { onTransaction } from "../array/metrics.js";
import { isZarrTxError } from "../errors.js";
import { openStore, type S3CliOptions } from "./stores.js";
import { createSynchronizer, type SyncConfig } from "./synchronizers.js";
import {
  counterRegion,
  countTornDiagonals,
  diagonalCells,
  diagonalCount,
  incrementRegion,
  seededRandom,
  tallyRegion,
  writeDiagonal,
} from "./workloads.js";

/** Which workloads a stress run mixes. */
export type Workload = "both" | "diagonal" | "counter";

/** What the parent tells a worker (structured-cloneable). */
export interface WorkerConfig {
  readonly index: number;
  readonly store: string;
  /** `--endpoint`, `--region`, `--path-style` of an s3:// store. */
  readonly s3?: S3CliOptions;
  readonly sync: SyncConfig;
  readonly diagonalPath: string;
  readonly counterPath: string;
  readonly workload: Workload;
  readonly tasks: number;
  readonly seed: number;
  readonly lockTimeoutMs?: number;
}

/** Operation counts of one worker. */
export interface WorkerCounts {
  diagonalWrites: number;
  diagonalReads: number;
  tornReads: number;
  increments: number;
  errors: number;
}

/** The final report of one worker. */
export interface WorkerResult {
  readonly counts: WorkerCounts;
  /** Per cell of the counter array (C order): how many committed increments covered it. */
  readonly tally: number[];
  /** Lock wait and hold samples in ms (a uniform sample of at most SAMPLE_LIMIT transactions). */
  readonly lockWaitMs: number[];
  readonly lockHoldMs: number[];
  readonly transactions: number;
  readonly errorMessages: string[];
}

/** Parent → worker messages. */
export type ToWorker =
  | { type: "start"; config: WorkerConfig }
  | { type: "go"; deadline: number }
  | { type: "stop" };
/** Worker → parent messages. */
export type FromWorker =
  | { type: "ready" }
  | { type: "progress"; counts: WorkerCounts }
  | { type: "done"; result: WorkerResult }
  | { type: "error"; message: string; code: string | null };

const SAMPLE_LIMIT = 5000;

function send(message: FromWorker, then?: () => void): void {
  process.send?.(message, undefined, {}, () => then?.());
}

async function runWorker(
  config: WorkerConfig,
  go: Promise<number>,
  stopped: () => boolean,
): Promise<WorkerResult> {
  const store = await openStore(config.store, {
    readOnly: false,
    ...config.s3,
  });
  const synchronizer = await createSynchronizer(config.sync);
  try {
    const diagonal = await open(store, { path: config.diagonalPath, synchronizer });
    const counter = await open(store, { path: config.counterPath, synchronizer });
    const diagonals = Array.from({ length: diagonalCount(diagonal.shape) }, (_, d) =>
      diagonalCells(diagonal.shape, d),
    );
    const counterSize = counter.shape.reduce((a, b) => a * b, 1);
    const tally = new Int32Array(counterSize);
    const counts: WorkerCounts = {
      diagonalWrites: 0,
      diagonalReads: 0,
      tornReads: 0,
      increments: 0,
      errors: 0,
    };
    const errorMessages: string[] = [];
    // Lock metrics through the public hook: a reservoir sample keeps memory bounded on long runs.
    const lockWaitMs: number[] = [];
    const lockHoldMs: number[] = [];
    let transactions = 0;
    const sampleRandom = seededRandom(config.seed ^ 0x5bd1e995);
    const unsubscribe = onTransaction((m) => {
      transactions++;
      if (lockWaitMs.length < SAMPLE_LIMIT) {
        lockWaitMs.push(m.lockWaitMs);
        lockHoldMs.push(m.lockHoldMs);
        return;
      }
      const slot = Math.floor(sampleRandom() * transactions);
      if (slot < SAMPLE_LIMIT) {
        lockWaitMs[slot] = m.lockWaitMs;
        lockHoldMs[slot] = m.lockHoldMs;
      }
    });
    send({ type: "ready" });
    const deadline = await go;
    const progress = setInterval(() => send({ type: "progress", counts: { ...counts } }), 250);
    let sequence = 0;
    const task = async (t: number): Promise<void> => {
      const random = seededRandom(config.seed + config.index * 7919 + t * 104729);
      while (Date.now() < deadline && !stopped()) {
        const r = random();
        const op =
          config.workload === "counter"
            ? "increment"
            : config.workload === "diagonal"
              ? r < 0.7
                ? "write"
                : "read"
              : r < 0.4
                ? "write"
                : r < 0.6
                  ? "read"
                  : "increment";
        try {
          if (op === "write") {
            const d = Math.floor(random() * diagonals.length);
            // Distinct non-zero values per write, so a half-applied write shows as a torn diagonal.
            const value = (config.index + 1) * 100_000 + (++sequence % 100_000);
            await writeDiagonal(diagonal, diagonals[d]!, value, config.lockTimeoutMs);
            counts.diagonalWrites++;
          } else if (op === "read") {
            counts.tornReads +=
              (await countTornDiagonals(diagonal, diagonals, config.lockTimeoutMs)) > 0 ? 1 : 0;
            counts.diagonalReads++;
          } else {
            const { start, stop } = counterRegion(counter.shape, random);
            await incrementRegion(counter, start, stop, config.lockTimeoutMs);
            // Counted only once committed: a failed increment must not be expected in the array.
            tallyRegion(tally, counter.shape, start, stop);
            counts.increments++;
          }
        } catch (error) {
          counts.errors++;
          if (errorMessages.length < 5)
            errorMessages.push(`${isZarrTxError(error) ? `${error.code}: ` : ""}${(error as Error).message}`);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: config.tasks }, (_, t) => task(t)));
    } finally {
      clearInterval(progress);
      unsubscribe();
    }
    return { counts, tally: Array.from(tally), lockWaitMs, lockHoldMs, transactions, errorMessages };
  } finally {
    await synchronizer.close();
  }
}

let stop = false;
let finished = false;
let startGo: ((deadline: number) => void) | undefined;
const go = new Promise<number>((resolve) => {
  startGo = resolve;
});

/** Sends the last message, then exits once it is on its way (the parent reads it before our exit). */
function finish(message: FromWorker, code: number): void {
  finished = true;
  send(message, () => process.exit(code));
}

// A Ctrl-C in a terminal reaches the whole process group: the parent handles it (it sends "stop" and
// still reports), so a worker must not die of it halfway through.
process.on("SIGINT", () => {});

process.on("disconnect", () => {
  // The parent is gone (interrupted or crashed): nobody will read the result.
  if (!finished) process.exit(1);
});

process.on("message", (message: ToWorker) => {
  if (message.type === "go") startGo?.(message.deadline);
  else if (message.type === "stop") {
    stop = true;
    startGo?.(0);
  } else if (message.type === "start") {
    runWorker(message.config, go, () => stop).then(
      (result) => finish({ type: "done", result }, 0),
      (error: unknown) =>
        finish(
          {
            type: "error",
            message: error instanceof Error ? error.message : String(error),
            code: isZarrTxError(error) ? error.code : null,
          },
          1,
        ),
    );
  }
});
