/**
 * The worker of the multi-process FileSynchronizer tests (test/sync.file.processes.test.ts): one role per
 * process (or per `worker_threads` worker), configured by a JSON argument.
 *
 *   node --import tsx test/file-sync-child.ts '{"role":"counter","root":"/tmp/x","seed":1,"rounds":100}'
 *
 * It talks to the test in JSON lines: it prints {"event":"ready"} once the array is open, waits for "go"
 * on stdin (so that every process starts its work at once, after the slow process start-ups), and prints
 * {"event":"result",...} at the end. Roles that run until told read "stop" on stdin.
 */
import { createInterface } from "node:readline";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import {
  FileSynchronizer,
  FileSystemStore,
  get,
  open,
  set,
  slice,
  transaction,
  type ZarrTxArray,
} from "../src/index.js";
import {
  counterRegion,
  countTornDiagonals,
  diagonalCount,
  incrementRegion,
  seededRandom,
  writeDiagonal,
} from "./workloads.js";

/** What one process or worker does. */
export type ChildConfig =
  | { role: "span857"; root: string; seed: number; span: [number, number]; rounds: number }
  | { role: "diagonal-writer"; root: string; writer: number; writers: number }
  | { role: "diagonal-reader"; root: string; reads: number }
  | { role: "counter"; root: string; seed: number; rounds: number }
  | { role: "shard-column"; root: string; column: number; rounds: number }
  | { role: "holder"; root: string }
  | { role: "waiter"; root: string; value: number }
  | { role: "threads"; root: string; threads: number; seed: number; rounds: number };

type Emit = (message: Record<string, unknown>) => void;

/** Resolves on the next stdin line equal to `word` (never, in a worker thread: it has no commands). */
function command(lines: AsyncIterator<string> | undefined, word: string): Promise<void> {
  if (lines === undefined) return Promise.resolve();
  return (async () => {
    for (;;) {
      const next = await lines.next();
      if (next.done) throw new Error(`stdin closed before "${word}"`);
      if (next.value.trim() === word) return;
    }
  })();
}

async function openArray(root: string): Promise<ZarrTxArray> {
  // Isolation, not durability, is under test: fsync off keeps hundreds of small writes fast.
  const store = new FileSystemStore(root, { fsync: false });
  return open(store, { synchronizer: new FileSynchronizer() });
}

/** Runs one role; `lines` is stdin (undefined in a worker thread, which starts at once). */
export async function runRole(config: ChildConfig, emit: Emit, lines?: AsyncIterator<string>): Promise<void> {
  if (config.role === "threads") {
    await runThreads(config, emit);
    return;
  }
  const array = await openArray(config.root);
  emit({ event: "ready", pid: process.pid });
  await command(lines, "go");
  switch (config.role) {
    case "span857": {
      // The reporter's job: one random value, written across two chunks, then the whole array read.
      const random = seededRandom(config.seed);
      const value = 1 + Math.floor(random() * 1_000_000);
      const [start, stop] = config.span;
      let torn = 0;
      let reads = 0;
      for (let round = 0; round < config.rounds; round++) {
        await set(array, [slice(start, stop)], value);
        const { data } = await get(array);
        const values = [...(data as Int32Array)];
        reads++;
        for (const [a, b] of [
          [2, 6],
          [6, 10],
        ] as const) {
          const span = values.slice(a, b);
          if (span.some((v) => v !== span[0])) torn++;
        }
      }
      emit({ event: "result", value, span: config.span, reads, torn });
      return;
    }
    case "diagonal-writer": {
      let writes = 0;
      let stopped = false;
      const stop = command(lines, "stop").then(() => {
        stopped = true;
      });
      const diagonals = diagonalCount(array.shape);
      let value = (config.writer + 1) * 1_000_000;
      while (!stopped) {
        for (let d = config.writer; d < diagonals && !stopped; d += config.writers) {
          await writeDiagonal(array, d, ++value);
          writes++;
        }
      }
      await stop;
      emit({ event: "result", writes });
      return;
    }
    case "diagonal-reader": {
      let torn = 0;
      for (let i = 0; i < config.reads; i++) torn += await countTornDiagonals(array);
      emit({ event: "result", reads: config.reads, torn });
      return;
    }
    case "counter": {
      const random = seededRandom(config.seed);
      for (let i = 0; i < config.rounds; i++) {
        const { start, stop } = counterRegion(array.shape, random);
        await incrementRegion(array, start, stop);
      }
      emit({ event: "result", rounds: config.rounds });
      return;
    }
    case "shard-column": {
      // Increments two whole columns: inner chunks of its own, inside shards every other process shares.
      for (let i = 0; i < config.rounds; i++) {
        await incrementRegion(array, [0, 2 * config.column], [array.shape[0]!, 2 * config.column + 2]);
      }
      emit({ event: "result", rounds: config.rounds });
      return;
    }
    case "holder": {
      // Take every chunk exclusively, stage a write, and never commit: the test SIGKILLs us here.
      await transaction([{ array, selection: null, mode: "write" }], async (tx) => {
        await tx.set(array, null, -1);
        emit({ event: "held" });
        await new Promise(() => {});
      });
      return;
    }
    case "waiter": {
      emit({ event: "waiting" });
      await set(array, null, config.value);
      emit({ event: "granted", at: Date.now() });
      return;
    }
  }
}

/** The counter workload on `threads` worker threads of this process, each with its own synchronizer. */
async function runThreads(config: Extract<ChildConfig, { role: "threads" }>, emit: Emit): Promise<void> {
  // Run as TypeScript through tsx, worker threads do not inherit its loader hooks: each registers them,
  // then imports this module. Bundled to JavaScript, workers load this module directly.
  const self = import.meta.url;
  const boot = self.endsWith(".ts")
    ? `const { parentPort } = require("node:worker_threads");` +
      `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})` +
      `.then((tsx) => { tsx.register(); return import(${JSON.stringify(self)}); })` +
      `.catch((error) => parentPort.postMessage({ event: "error", message: String(error && error.stack) }));`
    : undefined;
  emit({ event: "ready", pid: process.pid });
  const results = await Promise.all(
    Array.from(
      { length: config.threads },
      (_, t) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const child: ChildConfig = {
            role: "counter",
            root: config.root,
            seed: config.seed + t,
            rounds: config.rounds,
          };
          const worker =
            boot === undefined
              ? new Worker(new URL(self), { workerData: child })
              : new Worker(boot, { eval: true, workerData: child });
          let result: Record<string, unknown> | undefined;
          worker.on("message", (message: Record<string, unknown>) => {
            if (message.event === "result") result = message;
            if (message.event === "error") reject(new Error(String(message.message)));
          });
          worker.on("error", reject);
          worker.on("exit", (code) => {
            if (result !== undefined) resolve(result);
            else reject(new Error(`worker ${t} exited with code ${code} and no result`));
          });
        }),
    ),
  );
  emit({ event: "result", threads: results.length, rounds: config.rounds });
}

if (!isMainThread && parentPort !== null && workerData !== undefined) {
  const port = parentPort;
  await runRole(workerData as ChildConfig, (message) => port.postMessage(message));
} else if (isMainThread && process.argv[2] !== undefined && import.meta.url.endsWith(process.argv[1] ?? "")) {
  const emit: Emit = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  try {
    await runRole(JSON.parse(process.argv[2]) as ChildConfig, emit, lines);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  }
}
