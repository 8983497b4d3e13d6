/**
 * FileSynchronizer against zarr-python 2.13's ProcessSynchronizer, side by side in one run, with real
 * processes on both sides. Prints one JSON line per run and per summary; compare ratios, not absolute
 * numbers (noisy 2-core VMs).
 *
 *   npm run bench:file                                  # 3 repeats, 4 s per timed run
 *   npm run bench:file -- --repeats 5 --seconds 6
 *
 * Workloads (both sides: v2 array, no compressor, no fsync, since zarr-python does not fsync):
 * - diagonal (zarr-python #857): 10×10 int32, 2×2 chunks. W writer processes rewrite their own
 *   anti-diagonals (writer w owns d ≡ w mod W) for a fixed time; R reader processes read the whole array
 *   and count diagonals that are not uniform (torn). zarr-tx: one transaction per diagonal; zarr-python:
 *   one `z.vindex[rows, cols] = v` per diagonal. Reports diagonal writes/s, reads, torn reads.
 * - counter: 12×12 int32, 4×4 chunks. P processes × N read-modify-write increments of random boxes of up
 *   to 5×5 cells (most cross chunk borders). zarr-tx: one transaction; zarr-python:
 *   `z[box] = z[box] + 1`. Reports increments/s and lost increments.
 * - turnstile (zarr-tx only): 1 process rewriting the whole diagonal array against 2 processes reading it
 *   back to back, with the turnstile on (default) and off. Reports the writer's writes/s.
 * - latency: uncontended acquire + release of 2, 17 and 257 keys, FileSynchronizer vs in-process table.
 *
 *   npm run bench:file -- --only diagonal     # one of: latency, diagonal, counter, turnstile
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../src/cli/workloads.js";
import {
  create,
  FileSynchronizer,
  FileSystemStore,
  get,
  InProcessSynchronizer,
  lockKey,
  lockScope,
  META_SLOT,
  open,
  set,
  slice,
  transaction,
  type ZarrTxArray,
} from "../src/index.js";

const PYTHON = "/usr/bin/python3";
const self = fileURLToPath(import.meta.url);
const pythonScript = join(fileURLToPath(new URL(".", import.meta.url)), "zarr_python_sync.py");

type Config = Record<string, unknown> & { role: string; path: string };
type Result = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------
// Workers (zarr-tx side): `tsx bench/file-sync.ts --worker <role> <json>`

function cellsOfDiagonal(shape: readonly number[], d: number): [number, number][] {
  const cells: [number, number][] = [];
  for (let i = 0; i < shape[0]!; i++) if (d - i >= 0 && d - i < shape[1]!) cells.push([i, d - i]);
  return cells;
}

function tornDiagonals(values: Int32Array, shape: readonly number[]): number {
  let torn = 0;
  for (let d = 0; d < shape[0]! + shape[1]! - 1; d++) {
    const cells = cellsOfDiagonal(shape, d);
    const first = values[cells[0]![0] * shape[1]! + cells[0]![1]];
    if (cells.some(([i, j]) => values[i * shape[1]! + j] !== first)) torn++;
  }
  return torn;
}

async function worker(role: string, config: Config): Promise<Result> {
  const store = new FileSystemStore(config.path, { fsync: false });
  const synchronizer = new FileSynchronizer({ turnstile: config.turnstile !== false });
  const array = await open(store, { synchronizer });
  process.stdout.write(`${JSON.stringify({ event: "ready" })}\n`);
  await new Promise<void>((resolve) => {
    createInterface({ input: process.stdin }).once("line", () => resolve());
  });
  const seconds = config.seconds as number;
  const started = performance.now();
  const running = () => performance.now() - started < seconds * 1000;
  switch (role) {
    case "diagonal-writer": {
      const writers = config.writers as number;
      const w = config.writer as number;
      let value = (w + 1) * 1_000_000;
      let writes = 0;
      while (running()) {
        for (let d = w; d < array.shape[0]! + array.shape[1]! - 1; d += writers) {
          await writeDiagonal(array, d, ++value);
          writes++;
        }
      }
      return { writes, seconds: (performance.now() - started) / 1000 };
    }
    case "diagonal-reader": {
      let reads = 0;
      let tornReads = 0;
      let torn = 0;
      while (running()) {
        const t = tornDiagonals((await get(array)).data as Int32Array, array.shape);
        reads++;
        torn += t;
        if (t > 0) tornReads++;
      }
      return { reads, tornReads, tornDiagonals: torn };
    }
    case "counter": {
      const random = seededRandom(config.seed as number);
      const [rows, cols] = array.shape as [number, number];
      const expected = new Array<number>(rows * cols).fill(0);
      for (let i = 0; i < (config.rounds as number); i++) {
        const r0 = Math.floor(random() * rows);
        const c0 = Math.floor(random() * cols);
        const r1 = Math.min(rows, r0 + 1 + Math.floor(random() * 5));
        const c1 = Math.min(cols, c0 + 1 + Math.floor(random() * 5));
        for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) expected[r * cols + c]!++;
        const box = [slice(r0, r1), slice(c0, c1)];
        await transaction([{ array, selection: box, mode: "write" }], async (tx) => {
          const current = await tx.get(array, box);
          await tx.set(array, box, {
            data: (current.data as Int32Array).map((v) => v + 1),
            shape: current.shape,
          });
        });
      }
      return { rounds: config.rounds, expected, seconds: (performance.now() - started) / 1000 };
    }
    case "full-writer": {
      let writes = 0;
      while (running()) {
        await set(array, null, ++writes);
      }
      return { writes, seconds: (performance.now() - started) / 1000 };
    }
    case "full-reader": {
      let reads = 0;
      while (running()) {
        await get(array);
        reads++;
      }
      return { reads };
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

async function writeDiagonal(array: ZarrTxArray, d: number, value: number): Promise<void> {
  const cells = cellsOfDiagonal(array.shape, d);
  await transaction(
    cells.map((cell) => ({ array, selection: cell, mode: "write" as const })),
    async (tx) => {
      for (const cell of cells) await tx.set(array, cell, value);
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// Parent

interface Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly ready: Promise<void>;
  readonly result: Promise<Result>;
}

function start(impl: "zarr-tx" | "zarr-python", config: Config): Proc {
  const child =
    impl === "zarr-tx"
      ? spawn(process.execPath, [...process.execArgv, self, "--worker", config.role, JSON.stringify(config)])
      : spawn(PYTHON, [pythonScript, config.role, JSON.stringify(config)]);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines: Result[] = [];
  let onLine: (() => void) | undefined;
  createInterface({ input: child.stdout }).on("line", (line) => {
    try {
      lines.push(JSON.parse(line) as Result);
    } catch {
      return;
    }
    onLine?.();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const waitFor = (event: string) =>
    new Promise<Result>((resolve, reject) => {
      const check = () => {
        const found = lines.find((line) => line.event === event);
        if (found !== undefined) resolve(found);
      };
      const previous = onLine;
      onLine = () => {
        previous?.();
        check();
      };
      check();
      void exited.then((code) => {
        check();
        reject(new Error(`${impl} ${config.role} exited (${code}) before "${event}":\n${stderr}`));
      });
    });
  const ready = waitFor("ready").then(() => undefined);
  // One-shot roles (create, final) never get ready: only a caller that awaits `ready` sees the rejection.
  ready.catch(() => undefined);
  return { child, ready, result: waitFor("result") };
}

/** Runs one set of workers: waits until all are ready, starts them at once, collects their results. */
async function runTogether(
  impl: "zarr-tx" | "zarr-python",
  configs: Config[],
): Promise<{ results: Result[]; seconds: number }> {
  const procs = configs.map((config) => start(impl, config));
  await Promise.all(procs.map((p) => p.ready));
  const started = performance.now();
  for (const p of procs) p.child.stdin.write("go\n");
  const results = await Promise.all(procs.map((p) => p.result));
  return { results, seconds: (performance.now() - started) / 1000 };
}

async function python(role: string, config: Record<string, unknown>): Promise<Result> {
  const p = start("zarr-python", { role, path: config.path as string, ...config });
  return p.result;
}

async function newArray(
  impl: "zarr-tx" | "zarr-python",
  dir: string,
  shape: number[],
  chunks: number[],
): Promise<string> {
  const path = join(dir, `${impl}-${shape.join("x")}-${Math.random().toString(36).slice(2, 8)}.zarr`);
  if (impl === "zarr-python") {
    await python("create", { path, shape, chunks });
  } else {
    await create(new FileSystemStore(path, { fsync: false }), {
      shape,
      chunkShape: chunks,
      dtype: "int32",
      zarrFormat: 2,
      compressor: null,
    });
  }
  return path;
}

async function finalCells(impl: "zarr-tx" | "zarr-python", path: string): Promise<number[]> {
  if (impl === "zarr-python") return (await python("final", { path })).cells as number[];
  const array = await open(new FileSystemStore(path, { fsync: false }));
  return [...((await get(array)).data as Int32Array)];
}

function report(line: Record<string, unknown>): void {
  console.log(JSON.stringify({ date: new Date().toISOString().slice(0, 10), ...line }));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const round = (x: number, digits = 1) => +x.toFixed(digits);

async function diagonal(
  impl: "zarr-tx" | "zarr-python",
  dir: string,
  writers: number,
  readers: number,
  seconds: number,
): Promise<Record<string, number>> {
  const path = await newArray(impl, dir, [10, 10], [2, 2]);
  const sync = join(dir, `${impl}-sync-${Math.random().toString(36).slice(2, 8)}`);
  const { results } = await runTogether(impl, [
    ...Array.from({ length: writers }, (_, writer) => ({
      role: "diagonal-writer",
      path,
      sync,
      writer,
      writers,
      seconds,
    })),
    ...Array.from({ length: readers }, () => ({ role: "diagonal-reader", path, sync, seconds })),
  ]);
  const writes = results.slice(0, writers).reduce((sum, r) => sum + (r.writes as number), 0);
  const reads = results.slice(writers).reduce((sum, r) => sum + (r.reads as number), 0);
  const tornReads = results.slice(writers).reduce((sum, r) => sum + (r.tornReads as number), 0);
  const tornDiagonalsSeen = results.slice(writers).reduce((sum, r) => sum + (r.tornDiagonals as number), 0);
  const final = await finalCells(impl, path);
  const finalTorn = tornDiagonals(Int32Array.from(final), [10, 10]);
  const line = {
    writes,
    writes_per_s: round(writes / seconds),
    reads,
    reads_per_s: round(reads / seconds),
    torn_reads: tornReads,
    torn_diagonals_seen: tornDiagonalsSeen,
    final_torn_diagonals: finalTorn,
  };
  report({ bench: "diagonal", impl, writers, readers, seconds, ...line });
  return line;
}

async function counter(
  impl: "zarr-tx" | "zarr-python",
  dir: string,
  processes: number,
  rounds: number,
): Promise<Record<string, number>> {
  const path = await newArray(impl, dir, [12, 12], [4, 4]);
  const sync = join(dir, `${impl}-sync-${Math.random().toString(36).slice(2, 8)}`);
  const { results, seconds } = await runTogether(
    impl,
    Array.from({ length: processes }, (_, p) => ({ role: "counter", path, sync, seed: 1_000 + p, rounds })),
  );
  const expected = new Array<number>(144).fill(0);
  for (const r of results) {
    for (const [i, v] of (r.expected as number[]).entries()) expected[i]! += v;
  }
  const final = await finalCells(impl, path);
  const lost = expected.reduce((sum, v, i) => sum + Math.abs(v - final[i]!), 0);
  const increments = processes * rounds;
  const line = { increments, increments_per_s: round(increments / seconds), lost_increments: lost };
  report({ bench: "counter", impl, processes, rounds, seconds: round(seconds, 2), ...line });
  return line;
}

async function turnstile(dir: string, on: boolean, seconds: number): Promise<Record<string, number>> {
  const path = await newArray("zarr-tx", dir, [10, 10], [2, 2]);
  const { results } = await runTogether("zarr-tx", [
    { role: "full-writer", path, seconds, turnstile: on },
    { role: "full-reader", path, seconds, turnstile: on },
    { role: "full-reader", path, seconds, turnstile: on },
  ]);
  const writes = results[0]!.writes as number;
  const reads = (results[1]!.reads as number) + (results[2]!.reads as number);
  const line = { writer_writes_per_s: round(writes / seconds), reader_reads_per_s: round(reads / seconds) };
  report({ bench: "turnstile", impl: "zarr-tx", turnstile: on, readers: 2, seconds, ...line });
  return line;
}

/** Uncontended acquire + release of n chunk keys (plus the metadata key, shared), per synchronizer. */
async function latency(dir: string): Promise<void> {
  const scope = lockScope(`file:${dir}`, "/latency");
  for (const n of [1, 16, 256]) {
    const locks = {
      shared: [lockKey(scope, META_SLOT)],
      exclusive: Array.from({ length: n }, (_, i) => lockKey(scope, i)),
    };
    const row: Record<string, unknown> = { bench: "acquire+release, uncontended", keys: n + 1 };
    for (const [name, sync] of [
      ["file", new FileSynchronizer()],
      ["in_process", new InProcessSynchronizer()],
    ] as const) {
      const times: number[] = [];
      for (let repeat = 0; repeat < 7; repeat++) {
        const count = n > 16 ? 500 : 2_000;
        const started = performance.now();
        for (let i = 0; i < count; i++) await (await sync.acquireSet(locks)).release();
        times.push(((performance.now() - started) / count) * 1000);
      }
      row[`${name}_median_us`] = round(median(times), 2);
      row[`${name}_spread_us`] = [round(Math.min(...times), 2), round(Math.max(...times), 2)];
      await sync.close();
    }
    report(row);
  }
}

function summarize(bench: string, metric: string, runs: Record<string, Record<string, number>[]>): void {
  const summary: Record<string, unknown> = { bench: `${bench} summary`, metric };
  const medians: Record<string, number> = {};
  for (const [impl, lines] of Object.entries(runs)) {
    const values = lines.map((line) => line[metric]!);
    medians[impl] = median(values);
    summary[`${impl}_median`] = medians[impl];
    summary[`${impl}_spread`] = [Math.min(...values), Math.max(...values)];
  }
  const impls = Object.keys(runs);
  if (impls.length === 2)
    summary[`${impls[0]}_over_${impls[1]}`] = round(medians[impls[0]!]! / medians[impls[1]!]!, 2);
  for (const [impl, lines] of Object.entries(runs)) {
    for (const key of ["torn_reads", "final_torn_diagonals", "lost_increments"]) {
      if (key in lines[0]!)
        summary[`${impl}_${key}_total`] = lines.reduce((sum, line) => sum + line[key]!, 0);
    }
  }
  report(summary);
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const repeats = arg("repeats", 3);
  const seconds = arg("seconds", 4);
  const writers = arg("writers", 4);
  const readers = arg("readers", 2);
  const processes = arg("processes", 8);
  const rounds = arg("rounds", 100);
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-file-"));
  report({
    bench: "file-sync setup",
    node: process.version,
    repeats,
    seconds,
    writers,
    readers,
    processes,
    rounds,
  });
  const diag: Record<string, Record<string, number>[]> = { "zarr-tx": [], "zarr-python": [] };
  const count: Record<string, Record<string, number>[]> = { "zarr-tx": [], "zarr-python": [] };
  const gate: Record<string, Record<string, number>[]> = { on: [], off: [] };
  try {
    if (only === undefined || only === "latency") await latency(dir);
    for (let i = 0; i < repeats; i++) {
      // Alternate the order, so that both sides see the same machine state on average.
      const order =
        i % 2 === 0 ? (["zarr-tx", "zarr-python"] as const) : (["zarr-python", "zarr-tx"] as const);
      if (only === undefined || only === "diagonal") {
        for (const impl of order) diag[impl]!.push(await diagonal(impl, dir, writers, readers, seconds));
      }
      if (only === undefined || only === "counter") {
        for (const impl of order) count[impl]!.push(await counter(impl, dir, processes, rounds));
      }
      if (only === undefined || only === "turnstile") {
        for (const on of i % 2 === 0 ? [true, false] : [false, true]) {
          gate[on ? "on" : "off"]!.push(await turnstile(dir, on, seconds));
        }
      }
    }
    if (diag["zarr-tx"]!.length > 0) {
      summarize("diagonal", "writes_per_s", diag);
      summarize("diagonal", "reads_per_s", diag);
    }
    if (count["zarr-tx"]!.length > 0) summarize("counter", "increments_per_s", count);
    if (gate.on!.length > 0) summarize("turnstile", "writer_writes_per_s", gate);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--worker") {
  const result = await worker(process.argv[3]!, JSON.parse(process.argv[4]!) as Config);
  process.stdout.write(`${JSON.stringify({ event: "result", ...result })}\n`);
  process.exit(0);
} else {
  await main();
}
