/**
 * FileSynchronizer against zarr-python 2.13's ProcessSynchronizer (issue 8, goals 1 and 2), side by side
 * in one run, with real processes on both sides. Prints JSON lines in the schema of bench/lib.ts: one
 * per timed run (`run: true`), then one summary line per variant with its median, spread and ratio
 * against zarr-python.
 *
 *   npm run bench:file                                  # 3 repeats, 4 s per timed run
 *   npm run bench:file -- --repeats 5 --seconds 6 --writers 8 --readers 2
 *   npm run bench:file -- --quick                       # 1 repeat, 2 s
 *
 * Workloads (both sides: v2 array, int32, no compressor, no fsync, since zarr-python does not fsync):
 * - diagonal (zarr-python #857): 10×10 with 2×2 chunks and 64×64 with 8×8 chunks. W writer processes
 *   rewrite their own anti-diagonals (writer w owns d ≡ w mod W) for a fixed time; R reader processes
 *   read the whole array and count diagonals that are not uniform (torn). zarr-tx: one `set` of a
 *   coordinate selection per diagonal; zarr-python: one `z.vindex[rows, cols] = v` per diagonal. Reports
 *   diagonal writes/s, reads/s, torn reads. Goal: 0 torn for zarr-tx, ≥ 2× zarr-python's writes/s.
 * - counter: 12×12 int32, 4×4 chunks. P processes × N read-modify-write increments of random boxes of up
 *   to 5×5 cells (most cross chunk borders). zarr-tx: one transaction; zarr-python:
 *   `z[box] = z[box] + 1`. Reports transactions/s and lost increments. Goal: 0 lost, ≥ 1× zarr-python.
 * - turnstile (zarr-tx only, not with --quick): 1 process rewriting the whole 10×10 array against 2
 *   processes reading it back to back, with the turnstile on (default) and off.
 *
 *   npm run bench:file -- --only diagonal     # one of: diagonal, counter, turnstile
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../src/cli/workloads.js";
import {
  coordinates,
  create,
  FileSynchronizer,
  FileSystemStore,
  get,
  onTransaction,
  open,
  set,
  slice,
  transaction,
  type ZarrTxArray,
} from "../src/index.js";
import { type BenchLine, compare, emit, note, parseArgs, round as roundTo, stats } from "./lib.js";

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

/** Lock wait and hold times of this worker's transactions (from `onTransaction`), in ms. */
const waits: number[] = [];
const holds: number[] = [];

async function worker(role: string, config: Config): Promise<Result> {
  onTransaction((m) => {
    waits.push(m.lockWaitMs);
    holds.push(m.lockHoldMs);
  });
  if (config.journal === false) txOptions = { journal: false };
  const store = new FileSystemStore(config.path, {
    fsync: false,
    applyInPlace: config.applyInPlace === true,
  });
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
        await transaction(
          [{ array, selection: box, mode: "write" }],
          async (tx) => {
            const current = await tx.get(array, box);
            await tx.set(array, box, {
              data: (current.data as Int32Array).map((v) => v + 1),
              shape: current.shape,
            });
          },
          txOptions,
        );
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

/** One diagonal, one transaction: a coordinate selection, as zarr-python's `vindex` writes it. */
/** `journal: false` for the zarr-tx-no-journal variant (each chunk still atomic, the set not crash-atomic). */
let txOptions: { journal?: boolean } = {};

async function writeDiagonal(array: ZarrTxArray, d: number, value: number): Promise<void> {
  const cells = cellsOfDiagonal(array.shape, d);
  await set(
    array,
    coordinates(
      cells.map(([i]) => i),
      cells.map(([, j]) => j),
    ),
    value,
    txOptions,
  );
}

// ---------------------------------------------------------------------------------------------------
// Parent

interface Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly ready: Promise<void>;
  readonly result: Promise<Result>;
}

function start(impl: Impl, config: Config): Proc {
  const own =
    impl === "zarr-tx-no-journal"
      ? { ...config, journal: false }
      : impl === "zarr-tx-in-place"
        ? { ...config, applyInPlace: true }
        : config;
  const child =
    impl === "zarr-python"
      ? spawn(PYTHON, [pythonScript, config.role, JSON.stringify(config)])
      : spawn(process.execPath, [...process.execArgv, self, "--worker", config.role, JSON.stringify(own)]);
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
async function runTogether(impl: Impl, configs: Config[]): Promise<{ results: Result[]; seconds: number }> {
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

async function newArray(impl: Impl, dir: string, shape: number[], chunks: number[]): Promise<string> {
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

async function finalCells(impl: Impl, path: string): Promise<number[]> {
  if (impl === "zarr-python") return (await python("final", { path })).cells as number[];
  const array = await open(new FileSystemStore(path, { fsync: false }));
  return [...((await get(array)).data as Int32Array)];
}

const round = (x: number, digits = 1) => +x.toFixed(digits);

type Impl = "zarr-tx" | "zarr-tx-in-place" | "zarr-tx-no-journal" | "zarr-python";
type Runs = Partial<Record<Impl, Record<string, number>[]>>;
const VARIANT: Record<Impl, string> = {
  "zarr-tx": "zarr-tx FileSynchronizer",
  "zarr-tx-in-place": "zarr-tx FileSynchronizer, applyInPlace",
  "zarr-tx-no-journal": "zarr-tx FileSynchronizer, journal: false",
  "zarr-python": "zarr-python 2.13 ProcessSynchronizer",
};
const BASELINE = VARIANT["zarr-python"];
/** The variants the goals are for: the default, and the opt-in `applyInPlace` store. */
const GOAL_VARIANTS = [VARIANT["zarr-tx"], VARIANT["zarr-tx-in-place"]];

/** One timed run, printed as it finishes (`run: true`), so a long run shows progress. */
function runLine(workload: string, impl: Impl, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ run: true, workload, variant: VARIANT[impl], ...fields }));
}

/** The worker configs of one diagonal run: `writers` writers (writer w owns d ≡ w mod writers), then readers. */
function diagonalRoles(
  path: string,
  sync: string,
  writers: number,
  readers: number,
  seconds: number,
): Config[] {
  return [
    ...Array.from({ length: writers }, (_, writer) => ({
      role: "diagonal-writer",
      path,
      sync,
      writer,
      writers,
      seconds,
    })),
    ...Array.from({ length: readers }, () => ({ role: "diagonal-reader", path, sync, seconds })),
  ];
}

/**
 * One short untimed diagonal run per variant before the timed ones. The first run of an invocation is
 * 2–3× slower whichever variant it is (zarr-python 136 vs 364, zarr-tx 248 vs 532 writes/s; hold times of
 * 10 ms instead of 1.4 ms), and with `--quick`'s single repeat it would always land on the same one.
 */
async function warmUp(impls: readonly Impl[], dir: string, writers: number, readers: number): Promise<void> {
  for (const impl of impls) {
    const path = await newArray(impl, dir, [10, 10], [2, 2]);
    const sync = join(dir, `${impl}-warm-up`);
    await runTogether(impl, diagonalRoles(path, sync, writers, readers, 1));
  }
}

async function diagonal(
  impl: Impl,
  dir: string,
  size: number,
  chunk: number,
  writers: number,
  readers: number,
  seconds: number,
  workload: string,
): Promise<Record<string, number>> {
  const path = await newArray(impl, dir, [size, size], [chunk, chunk]);
  const sync = join(dir, `${impl}-sync-${Math.random().toString(36).slice(2, 8)}`);
  const { results } = await runTogether(impl, diagonalRoles(path, sync, writers, readers, seconds));
  const writes = results.slice(0, writers).reduce((sum, r) => sum + (r.writes as number), 0);
  const reads = results.slice(writers).reduce((sum, r) => sum + (r.reads as number), 0);
  const tornReads = results.slice(writers).reduce((sum, r) => sum + (r.tornReads as number), 0);
  const tornDiagonalsSeen = results.slice(writers).reduce((sum, r) => sum + (r.tornDiagonals as number), 0);
  const final = await finalCells(impl, path);
  const finalTorn = tornDiagonals(Int32Array.from(final), [size, size]);
  const line = {
    ...lockTimesOf(results.slice(0, writers), "writer"),
    ...lockTimesOf(results.slice(writers), "reader"),
    writes,
    writes_per_s: round(writes / seconds),
    reads,
    reads_per_s: round(reads / seconds),
    torn_reads: tornReads,
    torn_diagonals_seen: tornDiagonalsSeen,
    final_torn_diagonals: finalTorn,
  };
  runLine(workload, impl, { writers, readers, seconds, ...line });
  return line;
}

async function counter(
  impl: Impl,
  dir: string,
  processes: number,
  rounds: number,
  workload: string,
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
  const line = {
    ...lockTimesOf(results, "tx"),
    transactions: increments,
    tx_per_s: round(increments / seconds),
    lost_increments: lost,
  };
  runLine(workload, impl, { processes, rounds, seconds: round(seconds, 2), ...line });
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
  return { writer_writes_per_s: round(writes / seconds), reader_reads_per_s: round(reads / seconds) };
}

/** Median lock wait and hold (ms) over the transactions of some workers (zarr-tx only). */
function lockTimesOf(results: readonly Result[], role: string): Record<string, number> {
  const waits = results.flatMap((r) => (r.wait_ms as number[] | undefined) ?? []);
  const holds = results.flatMap((r) => (r.hold_ms as number[] | undefined) ?? []);
  if (holds.length === 0) return {};
  return {
    [`${role}_lock_wait_ms_median`]: roundTo(stats(waits).median, 3),
    [`${role}_lock_hold_ms_median`]: roundTo(stats(holds).median, 3),
    [`${role}_lock_hold_ms_p99`]: roundTo(stats(holds).p99, 3),
  };
}

/** Sums a count over runs. */
const total = (runs: readonly Record<string, number>[], key: string) =>
  runs.reduce((sum, run) => sum + (run[key] ?? 0), 0);

/** The summary lines of one workload: `metric` per variant with ratio vs zarr-python, plus counts. */
function summarize(
  workload: string,
  metric: string,
  unit: "writes/s" | "reads/s" | "tx/s",
  runs: Runs,
  goal: { text: string; min: number } | undefined,
  counts: readonly string[],
): void {
  const samples = Object.fromEntries(
    Object.entries(runs).map(([impl, lines]) => [VARIANT[impl as Impl], lines.map((l) => l[metric]!)]),
  );
  const extra = Object.fromEntries(
    Object.entries(runs).map(([impl, lines]) => [
      VARIANT[impl as Impl],
      Object.fromEntries(counts.map((key) => [`${key}_total`, total(lines, key)])),
    ]),
  );
  const lines = compare(`${workload}: ${metric.replace(/_/g, " ")}`, unit, BASELINE, samples, {
    extra,
    ...(goal ? { goals: Object.fromEntries(GOAL_VARIANTS.map((v) => [v, goal])) } : {}),
  });
  for (const line of lines) {
    // The zarr-tx side must also be exact: 0 torn reads, 0 lost increments.
    const exact =
      goal && GOAL_VARIANTS.includes(line.variant)
        ? counts.every((key) => line[`${key}_total`] === 0)
        : undefined;
    emit({
      ...line,
      ...(exact === undefined
        ? {}
        : {
            met: line.met === true && exact,
            goal: `${line.goal}, ${counts.map((c) => `0 ${c.replace(/_/g, " ")}`).join(", ")}`,
          }),
    } satisfies BenchLine);
  }
}

async function main(): Promise<void> {
  const args = parseArgs();
  const repeats = args.number("repeats", args.quick ? 1 : 3);
  const seconds = args.number("seconds", args.quick ? 2 : 4);
  const writers = args.number("writers", 8);
  const readers = args.number("readers", 2);
  const processes = args.number("processes", 8);
  const rounds = args.number("rounds", 100);
  const only = args.string("only");
  const sizes: [number, number][] = [
    [10, 2],
    [64, 8],
  ];
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-file-"));
  note({
    bench: "file-sync setup",
    node: process.version,
    python: PYTHON,
    repeats,
    seconds,
    writers,
    readers,
    processes,
    rounds,
    fsync: false,
  });
  const diagWorkload = (size: number, chunk: number) =>
    `#857 diagonal ${size}x${size}/${chunk}x${chunk}, ${writers} writer + ${readers} reader processes`;
  const counterWorkload = `counter ${processes} processes x ${rounds} RMW increments, 12x12/4x4`;
  // The journal-off variant shows what the crash journal costs here; not in a quick run.
  const withNoJournal =
    process.argv.includes("--journal-variant") ||
    (!args.quick && !process.argv.includes("--no-journal-variant"));
  const impls: Impl[] = withNoJournal
    ? ["zarr-tx", "zarr-tx-in-place", "zarr-tx-no-journal", "zarr-python"]
    : ["zarr-tx", "zarr-tx-in-place", "zarr-python"];
  const emptyRuns = (): Runs => Object.fromEntries(impls.map((impl) => [impl, []]));
  const diag = new Map<string, Runs>();
  const count: Runs = emptyRuns();
  const gate: Record<string, number[]> = { "turnstile on (default)": [], "turnstile off": [] };
  const want = (name: string) => only === undefined || only === name;
  try {
    if (want("diagonal") || want("counter")) {
      note({ bench: "file-sync warm-up", what: "1 s untimed 10x10 diagonal run per variant", impls });
      await warmUp(impls, dir, writers, readers);
    }
    for (let i = 0; i < repeats; i++) {
      // Alternate the order, so that both sides see the same machine state on average.
      const order: readonly Impl[] = i % 2 === 0 ? impls : [...impls].reverse();
      if (want("diagonal")) {
        for (const [size, chunk] of sizes) {
          const workload = diagWorkload(size, chunk);
          if (!workload.includes(args.filter)) continue;
          let runs = diag.get(workload);
          if (runs === undefined) {
            runs = emptyRuns();
            diag.set(workload, runs);
          }
          for (const impl of order) {
            runs[impl]!.push(await diagonal(impl, dir, size, chunk, writers, readers, seconds, workload));
          }
        }
      }
      if (want("counter") && counterWorkload.includes(args.filter)) {
        for (const impl of order)
          count[impl]!.push(await counter(impl, dir, processes, rounds, counterWorkload));
      }
      if (want("turnstile") && !args.quick && "turnstile".includes(args.filter)) {
        for (const on of i % 2 === 0 ? [true, false] : [false, true]) {
          const r = await turnstile(dir, on, seconds);
          gate[on ? "turnstile on (default)" : "turnstile off"]!.push(r.writer_writes_per_s!);
        }
      }
    }
    for (const [workload, runs] of diag) {
      summarize(workload, "writes_per_s", "writes/s", runs, { text: "ratio >= 2", min: 2 }, [
        "torn_reads",
        "final_torn_diagonals",
      ]);
      summarize(workload, "reads_per_s", "reads/s", runs, undefined, []);
    }
    if (count["zarr-tx"]!.length > 0) {
      summarize(counterWorkload, "tx_per_s", "tx/s", count, { text: "ratio >= 1", min: 1 }, [
        "lost_increments",
      ]);
    }
    if (gate["turnstile on (default)"]!.length > 0) {
      for (const line of compare(
        "turnstile: 1 writer rewriting 10x10 vs 2 readers back to back: writer writes/s",
        "writes/s",
        "turnstile off",
        gate,
      ))
        emit(line);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--worker") {
  const result = await worker(process.argv[3]!, JSON.parse(process.argv[4]!) as Config);
  const lockTimes = { wait_ms: waits, hold_ms: holds };
  process.stdout.write(`${JSON.stringify({ event: "result", ...result, ...lockTimes })}\n`);
  process.exit(0);
} else {
  await main();
}
