/**
 * Benchmarks: zarr-tx against raw zarrita on the same data and store, side by side in one run, plus the
 * in-process lock table. Prints one JSON line per result; ratios matter, not absolute times (noisy VMs).
 *
 *   npm run bench            # all
 *   npm run bench -- locks   # only names containing "locks"
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zarrita from "zarrita";
import { forEachTouchedChunk, normalizeSelection } from "../src/array/selection.js";
import {
  create,
  FileSystemStore,
  InProcessSynchronizer,
  lockKey,
  MemoryStore,
  type Store,
  set,
  slice,
  touchedKeys,
} from "../src/index.js";

const filter = process.argv[2] ?? "";
const REPEATS = 7;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function report(result: Record<string, unknown>): void {
  console.log(JSON.stringify({ date: new Date().toISOString().slice(0, 10), ...result }));
}

/** Times `fn` REPEATS times, alternating with `other` so both see the same machine state. */
async function sideBySide(
  name: string,
  a: { label: string; run: () => Promise<void> },
  b: { label: string; run: () => Promise<void> },
): Promise<void> {
  if (!name.includes(filter)) return;
  const times: Record<string, number[]> = { [a.label]: [], [b.label]: [] };
  await a.run();
  await b.run();
  for (let i = 0; i < REPEATS; i++) {
    for (const side of i % 2 === 0 ? [a, b] : [b, a]) {
      const t = performance.now();
      await side.run();
      times[side.label]!.push(performance.now() - t);
    }
  }
  const ma = median(times[a.label]!);
  const mb = median(times[b.label]!);
  report({
    bench: name,
    [`${a.label}_median_ms`]: +ma.toFixed(3),
    [`${b.label}_median_ms`]: +mb.toFixed(3),
    [`${b.label}_over_${a.label}`]: +(mb / ma).toFixed(3),
    spread_ms: {
      [a.label]: [+Math.min(...times[a.label]!).toFixed(3), +Math.max(...times[a.label]!).toFixed(3)],
      [b.label]: [+Math.min(...times[b.label]!).toFixed(3), +Math.max(...times[b.label]!).toFixed(3)],
    },
    repeats: REPEATS,
  });
}

async function writeBenches(storeName: string, makeStore: () => Promise<Store>): Promise<void> {
  const shape = [512, 512];
  const chunkShape = [64, 64];
  const data = Float64Array.from({ length: 512 * 512 }, (_, i) => Math.sin(i));
  const rawStore = await makeStore();
  const txStore = await makeStore();
  const txArray = await create(txStore, { shape, chunkShape, dtype: "float64" });
  const rawArray = await zarrita.create(rawStore, { shape, chunkShape, dtype: "float64" });

  await sideBySide(
    `full overwrite 512x512 float64, 64 chunks, ${storeName}`,
    { label: "zarrita", run: () => zarrita.set(rawArray, null, { data, shape, stride: [512, 1] }) },
    { label: "zarr_tx", run: () => set(txArray, null, { data, shape }) },
  );

  // 100 partial writes of random 40×40 boxes (read-modify-write of up to 4 chunks each), same boxes both sides.
  let seed = 1;
  const boxes = Array.from({ length: 100 }, () => {
    seed = (seed * 16807) % 2147483647;
    const r = seed % 472;
    seed = (seed * 16807) % 2147483647;
    return [r, seed % 472] as const;
  });
  const box = Float64Array.from({ length: 1600 }, (_, i) => i);
  await sideBySide(
    `100 partial writes 40x40 (RMW), ${storeName}`,
    {
      label: "zarrita",
      run: async () => {
        for (const [r, c] of boxes) {
          await zarrita.set(rawArray, [zarrita.slice(r, r + 40), zarrita.slice(c, c + 40)], {
            data: box,
            shape: [40, 40],
            stride: [40, 1],
          });
        }
      },
    },
    {
      label: "zarr_tx",
      run: async () => {
        for (const [r, c] of boxes)
          await set(txArray, [slice(r, r + 40), slice(c, c + 40)], { data: box, shape: [40, 40] });
      },
    },
  );
}

/** Compressed and sharded writes: encoding dominates, so parallel encoding in workers should pay off. */
async function compressedBenches(): Promise<void> {
  const shape = [1024, 1024];
  const chunkShape = [128, 128];
  // Smooth data with noise: compressible, but not trivially.
  const data = Float64Array.from(
    { length: 1024 * 1024 },
    (_, i) => Math.round(Math.sin(i / 500) * 1000 + (i % 7)) / 8,
  );
  const codecSets = {
    "blosc zstd shuffle": [
      { name: "bytes", configuration: { endian: "little" } },
      {
        name: "blosc",
        configuration: { cname: "zstd", clevel: 5, shuffle: "shuffle", typesize: 8, blocksize: 0 },
      },
    ],
    "zstd 3": [
      { name: "bytes", configuration: { endian: "little" } },
      { name: "zstd", configuration: { level: 3, checksum: false } },
    ],
  };
  for (const [label, codecs] of Object.entries(codecSets)) {
    const rawArray = await zarrita.create(new MemoryStore(), { shape, chunkShape, dtype: "float64", codecs });
    const txArray = await create(new MemoryStore(), { shape, chunkShape, dtype: "float64", codecs });
    const pooled = await create(new MemoryStore(), {
      shape,
      chunkShape,
      dtype: "float64",
      codecs,
      encodeWorkers: 2,
    });
    const value = { data, shape, stride: [1024, 1] };
    await sideBySide(
      `compressed full write 1024x1024 float64 (${label}), 64 chunks, memory store`,
      { label: "zarrita", run: () => zarrita.set(rawArray, null, value) },
      { label: "zarr_tx_2_workers", run: () => set(pooled, null, { data, shape }) },
    );
    await sideBySide(
      `compressed full write 1024x1024 float64 (${label}), 64 chunks, memory store, in-thread vs workers`,
      { label: "zarr_tx_in_thread", run: () => set(txArray, null, { data, shape }) },
      { label: "zarr_tx_2_workers", run: () => set(pooled, null, { data, shape }) },
    );
  }
  const sharded = (workers: number) =>
    create(new MemoryStore(), {
      shape,
      chunkShape: [512, 512],
      dtype: "float64",
      encodeWorkers: workers,
      codecs: [
        {
          name: "sharding_indexed",
          configuration: { chunk_shape: [128, 128], codecs: codecSets["zstd 3"] },
        },
      ],
    });
  const inThread = await sharded(0);
  const pooled = await sharded(2);
  await sideBySide(
    "sharded full write 1024x1024 float64, 4 shards of 16 zstd inner chunks, memory store",
    { label: "zarr_tx_in_thread", run: () => set(inThread, null, { data, shape }) },
    { label: "zarr_tx_2_workers", run: () => set(pooled, null, { data, shape }) },
  );
}

/** Scale: planning the locks of a selection that touches 10⁶ chunks (goal of issue 8: under 0.5 s). */
async function scaleBenches(): Promise<void> {
  const name = "scale: lock keys of a selection touching 1e6 chunks";
  if (!name.includes(filter)) return;
  const meta = {
    shape: [100_000, 100_000],
    chunkShape: [100, 100],
    chunkKeyEncoding: { name: "default" as const, separator: "/" as const },
  };
  const scope = "file:/data/x.zarr:/temps";
  const sel = normalizeSelection(null, meta.shape);
  const variants: [string, () => number][] = [
    [
      "lock keys only (what a transaction plans)",
      () => {
        const keys: string[] = [];
        forEachTouchedChunk(sel, meta.shape, meta.chunkShape, (linear) => keys.push(lockKey(scope, linear)));
        return keys.length;
      },
    ],
    [
      "lock keys and store keys (touchedKeys)",
      () => touchedKeys(meta, "/temps", scope, null).lockKeys.length,
    ],
  ];
  for (const [variant, run] of variants) {
    const samples: number[] = [];
    let count = 0;
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      count = run();
      samples.push(performance.now() - t);
    }
    report({
      bench: name,
      variant,
      chunks: count,
      median_ms: +median(samples).toFixed(1),
      spread_ms: [+Math.min(...samples).toFixed(1), +Math.max(...samples).toFixed(1)],
    });
  }
}

async function lockBenches(): Promise<void> {
  const name = "locks: in-process acquire+release, uncontended";
  if (!name.includes(filter)) return;
  const sync = new InProcessSynchronizer();
  for (const keyCount of [1, 16, 256, 4096]) {
    const keys = Array.from({ length: keyCount }, (_, i) => lockKey("bench", i));
    const iterations = Math.max(20, Math.floor(200_000 / keyCount));
    const samples: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const t = performance.now();
      for (let i = 0; i < iterations; i++) {
        const lease = await sync.acquire(keys, "exclusive");
        await lease.release();
      }
      samples.push(((performance.now() - t) * 1000) / iterations);
    }
    report({
      bench: name,
      keys: keyCount,
      median_us: +median(samples).toFixed(2),
      spread_us: [+Math.min(...samples).toFixed(2), +Math.max(...samples).toFixed(2)],
      iterations,
    });
  }
  await sync.close();
}

const dirs: string[] = [];
async function fsStore(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-"));
  dirs.push(dir);
  return new FileSystemStore(dir);
}

try {
  await writeBenches("memory store", async () => new MemoryStore());
  await writeBenches("filesystem store (fsync)", fsStore);
  await compressedBenches();
  await scaleBenches();
  await lockBenches();
} finally {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}
