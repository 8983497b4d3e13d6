/**
 * Scale (issue 8, goal 5), pure planning and locking, no chunk I/O:
 * - keys of a selection touching 10⁶ chunks: visiting them, their lock keys (what a transaction plans),
 *   and lock + store keys (`touchedKeys`); goal < 500 ms. Memory: the heap growth of planning the same
 *   10⁶-chunk selection in arrays of 10¹⁰, 10¹² and 10¹⁴ elements must not grow with the array.
 * - locking 10⁵ contiguous chunks (plus the metadata key, shared) with the FileSynchronizer, keys built
 *   beforehand: acquire + release; goal < 10 ms. Side by side: the in-process table, and the whole
 *   transaction path (plan + acquire + revalidate + release, a transaction that writes nothing).
 * - a 10¹²-element array (metadata only): create, open, a 10×10 write and its read-back, with the
 *   FileSynchronizer on a FileSystemStore; the process's memory must stay small.
 *
 *   npx tsx bench/scale.ts [--quick] [filter]
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { forEachTouchedChunk, normalizeSelection } from "../src/array/selection.js";
import {
  create,
  FileSynchronizer,
  FileSystemStore,
  get,
  InProcessSynchronizer,
  lockKey,
  lockScope,
  META_SLOT,
  MemoryStore,
  open,
  set,
  slice,
  touchedKeys,
  transaction,
} from "../src/index.js";
import { compare, emit, note, parseArgs, round, stats, wanted } from "./lib.js";

const args = parseArgs();
const repeats = args.quick ? 3 : 7;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Wall and CPU milliseconds of `n` runs (after one warm-up), each started on a collected heap. */
function timeSync(run: () => unknown, n: number): { wall: number[]; cpu: number[] } {
  const wall: number[] = [];
  const cpu: number[] = [];
  run(); // warm-up
  for (let i = 0; i < n; i++) {
    gc();
    const c = process.cpuUsage();
    const t = performance.now();
    run();
    wall.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000);
  }
  return { wall, cpu };
}

async function keysOfMillionChunks(): Promise<void> {
  const workload = "scale: keys of a selection touching 1e6 chunks";
  if (!wanted(args, workload)) return;
  // 10⁵ × 10⁵ elements, 100 × 100 chunks: the whole array is 10⁶ chunks.
  const meta = {
    shape: [100_000, 100_000],
    chunkShape: [100, 100],
    chunkKeyEncoding: { name: "default" as const, separator: "/" as const },
  };
  const scope = lockScope("file:/data/x.zarr", "/temps");
  const sel = normalizeSelection(null, meta.shape);
  let count = 0;
  const variants: Record<string, () => unknown> = {
    "visit only (forEachTouchedChunk)": () => {
      count = 0;
      forEachTouchedChunk(sel, meta.shape, meta.chunkShape, () => {
        count++;
      });
    },
    "lock keys (what a transaction plans)": () => {
      const keys: string[] = [];
      forEachTouchedChunk(sel, meta.shape, meta.chunkShape, (linear) => keys.push(lockKey(scope, linear)));
      return keys;
    },
    "lock keys and store keys (touchedKeys)": () => touchedKeys(meta, "/temps", scope, null),
  };
  const samples: Record<string, number[]> = {};
  const cpu: Record<string, number> = {};
  for (const [variant, run] of Object.entries(variants)) {
    const t = timeSync(run, repeats);
    samples[variant] = t.wall;
    cpu[variant] = round(stats(t.cpu).median);
  }
  const lines = compare(workload, "ms", "visit only (forEachTouchedChunk)", samples, {
    extra: Object.fromEntries(
      Object.keys(variants).map((v) => [v, { chunks: count, cpu_median_ms: cpu[v] }]),
    ),
  });
  for (const line of lines) {
    // The goal is on what a transaction computes to lock a selection: its lock keys.
    const goal =
      line.variant === "lock keys (what a transaction plans)"
        ? { goal: "median < 500 ms", met: line.median < 500 }
        : {};
    emit({ ...line, ...goal });
  }

  // Memory: the same 10⁶-chunk selection (1000 × 1000 chunks) in ever larger arrays.
  const memWorkload = "scale: heap of planning a 1e6-chunk selection vs array size";
  for (const side of [100_000, 1_000_000, 10_000_000] as const) {
    const m = { ...meta, shape: [side, side] };
    const region = [slice(0, 100_000), slice(0, 100_000)];
    const s = normalizeSelection(region, m.shape);
    let before = heapAfterGc();
    let visited = 0;
    forEachTouchedChunk(s, m.shape, m.chunkShape, () => {
      visited++;
    });
    const visitGrowth = heapAfterGc() - before;
    before = heapAfterGc();
    held = touchedKeys(m, "/temps", scope, region);
    const retained = heapAfterGc() - before;
    const keys = held.lockKeys.length;
    held = undefined;
    emit({
      workload: memWorkload,
      variant: `array of ${(side * side).toExponential(0)} elements`,
      n: 1,
      median: round(retained / 2 ** 20, 4),
      unit: "MiB",
      what: "heap retained by the 1e6 lock keys + 1e6 store keys",
      chunks: visited,
      keys,
      visit_only_heap_growth_bytes: visitGrowth,
    });
  }
}

/** Keeps the keys alive while the heap is measured, and lets them go after. */
let held: { lockKeys: string[] } | undefined;

async function lockTenToTheFive(dir: string): Promise<void> {
  const workload = "scale: acquire+release 1e5 contiguous chunks (+ metadata shared)";
  if (!wanted(args, workload)) return;
  const store = new FileSystemStore(join(dir, "locks.zarr"), { fsync: false });
  const fileSync = new FileSynchronizer();
  const inProcess = new InProcessSynchronizer();
  const n = 100_000;
  // A 1000 × 1000-chunk array; rows 0..99 of the chunk grid are 10⁵ contiguous linear indices.
  const array = await create(store, {
    path: "big",
    shape: [100_000, 100_000],
    chunkShape: [100, 100],
    dtype: "uint8",
    synchronizer: fileSync,
  });
  const scope = array.lockScope;
  const locks = {
    shared: [lockKey(scope, META_SLOT)],
    exclusive: Array.from({ length: n }, (_, i) => lockKey(scope, i)),
  };
  const samples: Record<string, number[]> = {
    "file (keys prebuilt)": [],
    "in-process (keys prebuilt)": [],
    "file: whole transaction (plan+lock+revalidate, no writes)": [],
  };
  const region = [slice(0, 10_000), null];
  const runs: [string, () => Promise<void>][] = [
    ["file (keys prebuilt)", async () => (await fileSync.acquireSet(locks)).release()],
    ["in-process (keys prebuilt)", async () => (await inProcess.acquireSet(locks)).release()],
    [
      "file: whole transaction (plan+lock+revalidate, no writes)",
      () => transaction([{ array, selection: region, mode: "write" }], async () => undefined),
    ],
  ];
  for (const [, run] of runs) await run(); // warm-up
  const perSide = args.quick ? 5 : 21;
  for (let i = 0; i < perSide; i++) {
    for (const [label, run] of i % 2 === 0 ? runs : [...runs].reverse()) {
      const t = performance.now();
      await run();
      samples[label]!.push(performance.now() - t);
    }
  }
  for (const line of compare(workload, "ms", "in-process (keys prebuilt)", samples, { p99: true })) {
    const goal =
      line.variant === "file (keys prebuilt)" ? { goal: "median < 10 ms", met: line.median < 10 } : {};
    emit({ ...line, keys: n + 1, ...goal });
  }
  await fileSync.close();
  await inProcess.close();
}

async function trillionElements(dir: string): Promise<void> {
  const workload = "scale: 1e12-element array (1e6 x 1e6 float64, 1000 x 1000 chunks), metadata only";
  if (!wanted(args, workload)) return;
  const rssBefore = process.memoryUsage().rss;
  const store = new FileSystemStore(join(dir, "huge.zarr"));
  const fileSync = new FileSynchronizer();
  const steps: Record<string, number[]> = { create: [], open: [], "write 10x10": [], "read 10x10": [] };
  let ok = true;
  for (let r = 0; r < (args.quick ? 2 : 5); r++) {
    let t = performance.now();
    await create(store, {
      path: "huge",
      shape: [1_000_000, 1_000_000],
      chunkShape: [1000, 1000],
      dtype: "float64",
      synchronizer: fileSync,
      overwrite: true,
    });
    steps.create!.push(performance.now() - t);
    t = performance.now();
    const array = await open(store, { path: "huge", synchronizer: fileSync });
    steps.open!.push(performance.now() - t);
    // Far corners: the last chunk's linear index is 10⁶ - 1, its lock byte 10⁶.
    const at = 999_990 - r;
    t = performance.now();
    await set(array, [slice(at, at + 10), slice(at, at + 10)], r + 1.5);
    steps["write 10x10"]!.push(performance.now() - t);
    t = performance.now();
    const back = await get(array, [slice(at, at + 10), slice(at, at + 10)]);
    steps["read 10x10"]!.push(performance.now() - t);
    ok &&= (back.data as Float64Array).every((v) => v === r + 1.5);
  }
  await fileSync.close();
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  for (const [variant, values] of Object.entries(steps)) {
    const s = stats(values);
    emit({
      workload,
      variant,
      n: s.n,
      median: round(s.median),
      spread: [round(s.min), round(s.max)],
      unit: "ms",
      correct: ok,
      rss_growth_mib: round(rssGrowth / 2 ** 20, 3),
      note: "a written 1000x1000 float64 chunk is 8 MB: the write is a read-modify-write of one chunk",
    });
  }
}

/**
 * A one-chunk write must not slow down as the store fills: time per small `set` against the number of
 * chunks stored, on the memory store and the filesystem store (no fsync), in-process locks.
 */
async function writesVsStoredChunks(dir: string): Promise<void> {
  const workload = "scale: one-chunk write vs chunks stored in the store";
  if (!wanted(args, workload)) return;
  const counts = args.quick ? [64, 16_384] : [64, 4_096, 65_536];
  for (const [storeName, makeStore] of [
    ["memory store", () => new MemoryStore()],
    [
      "filesystem store (no fsync)",
      () => new FileSystemStore(join(dir, `fill-${Math.random()}`), { fsync: false }),
    ],
  ] as const) {
    const samples: Record<string, number[]> = {};
    for (const count of counts) {
      const side = Math.sqrt(count) * 4;
      const array = await create(makeStore(), { shape: [side, side], chunkShape: [4, 4], dtype: "uint8" });
      await set(array, null, 1); // every chunk stored
      // Let the kernel write the fill back first, or the timed writes would wait behind that writeback.
      if (storeName !== "memory store") spawnSync("sync");
      const times: number[] = [];
      for (let i = 0; i < (args.quick ? 100 : 400); i++) {
        const t = performance.now();
        await set(array, [0, 0], i & 255);
        times.push((performance.now() - t) * 1000);
      }
      samples[`${count} chunks stored`] = times.slice(10);
    }
    const baseline = `${counts[0]} chunks stored`;
    for (const line of compare(`${workload}, ${storeName}`, "us", baseline, samples, { p99: true }))
      emit(line);
  }
}

note({ bench: "scale setup", node: process.version, quick: args.quick });
const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-scale-"));
try {
  await keysOfMillionChunks();
  await lockTenToTheFive(dir);
  await trillionElements(dir);
  await writesVsStoredChunks(dir);
} finally {
  await rm(dir, { recursive: true, force: true });
}
