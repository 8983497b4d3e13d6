/**
 * A worker process for the multi-process Redis tests (test/redis-processes.test.ts). Forked with
 * `process.execPath --import tsx test/redis-worker.ts '<json config>'`, it opens one array of a
 * FileSystemStore through a RedisSynchronizer, runs one job, reports over IPC and exits.
 *
 * Jobs:
 * - counter:  `rounds` read-modify-write increments of seeded random regions (seed `seed + id`), so the
 *             parent can recompute exactly what every cell must hold;
 * - diagonal: rewrites its share of the anti-diagonals (d ≡ id mod workers) `rounds` times, reading the
 *             whole array after each write and counting torn diagonals; with `untilError` it keeps going
 *             until a transaction fails, and reports that error's code and time;
 * - hold:     one transaction that writes `value` at [0, 0], tells the parent it is inside (with the
 *             lease's fence), waits for a "go" message, then tries to commit, and reports what happened.
 */
import { FileSystemStore, isZarrTxError, open, transaction, type ZarrTxArray } from "../src/index.js";
import { RedisSynchronizer } from "../src/sync/redis.js";
import {
  counterRegion,
  countTornDiagonals,
  diagonalCount,
  incrementRegion,
  seededRandom,
  writeDiagonal,
} from "./workloads.js";

/** What the parent passes as the only argument (JSON). */
export interface WorkerConfig {
  readonly job: "counter" | "diagonal" | "hold";
  readonly id: number;
  readonly workers: number;
  readonly masters: readonly string[];
  readonly dir: string;
  readonly path: string;
  readonly rounds: number;
  readonly seed?: number;
  readonly value?: number;
  readonly untilError?: boolean;
  readonly ttlMs?: number;
  readonly quorumTimeoutMs?: number;
  readonly retryDelayMs?: number;
  readonly retryJitterMs?: number;
}

/** What the worker sends back. */
export type WorkerMessage =
  | { readonly type: "progress"; readonly id: number; readonly done: number }
  | { readonly type: "inside"; readonly id: number; readonly fence: string }
  | {
      readonly type: "result";
      readonly id: number;
      readonly done: number;
      readonly reads: number;
      readonly torn: number;
      /** Typed errors a transaction failed with (and was retried after, for the counter), by code. */
      readonly errors: Record<string, number>;
      /** The first error that ended an `untilError` run or the hold job: code and wall-clock time. */
      readonly stoppedBy?: { readonly code: string; readonly at: number; readonly message: string };
      readonly signalAborted?: boolean;
      readonly signalReason?: string;
    }
  | { readonly type: "failed"; readonly id: number; readonly message: string };

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig;

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      console.log(JSON.stringify(message));
      resolve();
      return;
    }
    process.send(message, () => resolve());
  });
}

function codeOf(error: unknown): string {
  return isZarrTxError(error) ? error.code : `untyped: ${String(error)}`;
}

/** Codes after which nothing was written, so the same transaction may simply run again. */
const RETRYABLE = new Set(["ERR_LEASE_LOST", "ERR_LOCK_TIMEOUT", "ERR_QUORUM_UNAVAILABLE"]);

async function counter(array: ZarrTxArray): Promise<WorkerMessage> {
  const random = seededRandom((config.seed ?? 1000) + config.id);
  const errors: Record<string, number> = {};
  let done = 0;
  for (let i = 0; i < config.rounds; i++) {
    const { start, stop } = counterRegion(array.shape, random);
    for (let attempt = 0; ; attempt++) {
      try {
        await incrementRegion(array, start, stop);
        break;
      } catch (error) {
        const code = codeOf(error);
        errors[code] = (errors[code] ?? 0) + 1;
        if (!RETRYABLE.has(code) || attempt >= 20) throw error;
      }
    }
    done++;
    if (done % 10 === 0) await send({ type: "progress", id: config.id, done });
  }
  return { type: "result", id: config.id, done, reads: 0, torn: 0, errors };
}

async function diagonal(array: ZarrTxArray): Promise<WorkerMessage> {
  const diagonals = diagonalCount(array.shape);
  const errors: Record<string, number> = {};
  let done = 0;
  let reads = 0;
  let torn = 0;
  let value = (config.id + 1) * 1_000_000;
  const mine: number[] = [];
  for (let d = config.id; d < diagonals; d += config.workers) mine.push(d);
  const deadline = Date.now() + 30_000;
  for (let round = 0; config.untilError ? Date.now() < deadline : round < config.rounds; round++) {
    try {
      await writeDiagonal(array, mine[round % mine.length]!, ++value);
      done++;
      torn += await countTornDiagonals(array);
      reads++;
    } catch (error) {
      const code = codeOf(error);
      errors[code] = (errors[code] ?? 0) + 1;
      if (config.untilError) {
        const message = error instanceof Error ? error.message : String(error);
        return {
          type: "result",
          id: config.id,
          done,
          reads,
          torn,
          errors,
          stoppedBy: { code, at: Date.now(), message },
        };
      }
      throw error;
    }
    if (done % 5 === 0) await send({ type: "progress", id: config.id, done });
  }
  return { type: "result", id: config.id, done, reads, torn, errors };
}

async function hold(array: ZarrTxArray): Promise<WorkerMessage> {
  const go = new Promise<void>((resolve) => {
    process.on("message", (message) => {
      if (message === "go") resolve();
    });
  });
  let signal: AbortSignal | undefined;
  try {
    await transaction([{ array, selection: [0, 0], mode: "write" }], async (tx) => {
      signal = tx.lease.signal;
      await tx.set(array, [0, 0], config.value ?? 1);
      await send({ type: "inside", id: config.id, fence: String(tx.lease.fence) });
      await go;
    });
  } catch (error) {
    const reason: unknown = signal?.reason;
    return {
      type: "result",
      id: config.id,
      done: 0,
      reads: 0,
      torn: 0,
      errors: { [codeOf(error)]: 1 },
      stoppedBy: { code: codeOf(error), at: Date.now(), message: String(error) },
      signalAborted: signal?.aborted,
      signalReason: isZarrTxError(reason) ? reason.code : String(reason),
    };
  }
  return {
    type: "result",
    id: config.id,
    done: 1,
    reads: 0,
    torn: 0,
    errors: {},
    signalAborted: signal?.aborted,
  };
}

async function main(): Promise<void> {
  const synchronizer = new RedisSynchronizer({
    masters: config.masters,
    ttlMs: config.ttlMs,
    quorumTimeoutMs: config.quorumTimeoutMs,
    retryDelayMs: config.retryDelayMs ?? 3,
    retryJitterMs: config.retryJitterMs ?? 4,
  });
  // Isolation, not durability, is under test: no fsync keeps the runs short.
  const store = new FileSystemStore(config.dir, { fsync: false });
  const array = await open(store, { path: config.path, synchronizer });
  let result: WorkerMessage;
  try {
    if (config.job === "counter") result = await counter(array);
    else if (config.job === "diagonal") result = await diagonal(array);
    else result = await hold(array);
  } catch (error) {
    result = {
      type: "failed",
      id: config.id,
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    };
  }
  await synchronizer.close();
  await send(result);
  process.exit(0);
}

await main();
