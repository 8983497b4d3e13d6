/**
 * zarr-tx against raw zarrita on the same data and the same store, side by side in one run: full and
 * partial (read-modify-write) writes on the memory and filesystem stores, and compressed and sharded
 * writes with in-thread and worker-thread encoding. JSON lines in the schema of bench/lib.ts; ratios
 * are "times as fast as the baseline" (zarrita, or in-thread encoding). Lock latency: bench/locks.ts;
 * key planning at scale: bench/scale.ts.
 *
 *   npx tsx bench/run.ts [--quick] [filter]     # filter: only workloads whose name contains it
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zarrita from "zarrita";
import { create, FileSystemStore, MemoryStore, type Store, set, slice } from "../src/index.js";
import { alternate, compare, emit, note, parseArgs, wanted } from "./lib.js";

const args = parseArgs();
const REPEATS = args.number("repeats", args.quick ? 3 : 7);

/** Times both sides REPEATS times, alternating, and prints one line per side (ratio vs `a`). */
async function sideBySide(
  name: string,
  a: { label: string; run: () => Promise<unknown> },
  b: { label: string; run: () => Promise<unknown> },
): Promise<void> {
  if (!wanted(args, name)) return;
  const times = await alternate([a, b], REPEATS);
  for (const line of compare(name, "ms", a.label, times)) emit({ ...line, repeats: REPEATS });
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

const dirs: string[] = [];
async function fsStore(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-"));
  dirs.push(dir);
  return new FileSystemStore(dir);
}

note({ bench: "run setup", node: process.version, repeats: REPEATS });
try {
  await writeBenches("memory store", async () => new MemoryStore());
  await writeBenches("filesystem store (fsync)", fsStore);
  await compressedBenches();
} finally {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}
