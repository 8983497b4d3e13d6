/**
 * The main job with no server at all: many concurrent async tasks of one process write overlapping,
 * chunk-crossing slices of one array on the filesystem, then the result is checked.
 *
 *   npm run example                       # temp directory, 16 tasks × 50 transactions
 *   npm run example -- ./out.zarr 32 100  # your directory, 32 tasks × 100 transactions
 *
 * Each task repeatedly (a) increments a random 2-D box in a read-modify-write transaction and
 * (b) overwrites a random row slab with one value. At the end every cell must hold exactly the number of
 * increments that covered it (no lost update), and every slab written in one `set` must have been seen
 * uniform by concurrent readers (no torn write). Plain zarrita then reads the same array.
 * Exit code 0 when every check passes, 1 otherwise.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zarrita from "zarrita";
import { create, FileSystemStore, get, set, slice, transaction } from "../src/index.js";

const [dirArg, tasksArg, roundsArg] = process.argv.slice(2);
const TASKS = Number(tasksArg ?? 16);
const ROUNDS = Number(roundsArg ?? 50);
const SHAPE = [64, 48];
const dir = dirArg ?? (await mkdtemp(join(tmpdir(), "zarr-tx-example-")));

const store = new FileSystemStore(dir);
// Two arrays: `counts` takes increments, `slabs` takes whole-row-slab overwrites.
const counts = await create(store, {
  path: "counts",
  shape: SHAPE,
  chunkShape: [16, 16],
  dtype: "int32",
  overwrite: true,
});
const slabs = await create(store, {
  path: "slabs",
  shape: SHAPE,
  chunkShape: [16, 16],
  dtype: "int32",
  codecs: [{ name: "bytes" }, { name: "zstd", configuration: { level: 3, checksum: false } }],
  overwrite: true,
});

const expected = new Int32Array(SHAPE[0]! * SHAPE[1]!);
let torn = 0;
let reads = 0;

function random(n: number): number {
  return Math.floor(Math.random() * n);
}

async function task(id: number): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    // (a) read-modify-write increment of a box that usually crosses chunk borders.
    const r0 = random(SHAPE[0]!);
    const c0 = random(SHAPE[1]!);
    const r1 = Math.min(SHAPE[0]!, r0 + 1 + random(20));
    const c1 = Math.min(SHAPE[1]!, c0 + 1 + random(20));
    for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) expected[r * SHAPE[1]! + c]!++;
    const box = [slice(r0, r1), slice(c0, c1)];
    await transaction([{ array: counts, selection: box, mode: "write" }], async (tx) => {
      const current = await tx.get(counts, box);
      await tx.set(counts, box, {
        data: (current.data as Int32Array).map((v) => v + 1),
        shape: current.shape,
      });
    });
    // (b) overwrite a slab of rows (spanning several chunks) with one value, then read some other slab.
    const s0 = random(SHAPE[0]! - 8);
    await set(slabs, [slice(s0, s0 + 8)], id * 1_000_000 + round);
    const t0 = random(SHAPE[0]! - 8);
    const { data } = await get(slabs, [slice(t0, t0 + 8)]);
    reads++;
    // Every row written by one `set` is uniform, so each row read must be uniform too.
    const values = data as Int32Array;
    for (let row = 0; row < 8; row++) {
      const rowValues = values.subarray(row * SHAPE[1]!, (row + 1) * SHAPE[1]!);
      if (rowValues.some((v) => v !== rowValues[0])) torn++;
    }
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: TASKS }, (_, id) => task(id)));
const elapsedMs = performance.now() - started;

const final = (await get(counts)).data as Int32Array;
let lost = 0;
for (let i = 0; i < final.length; i++) lost += Math.abs(expected[i]! - final[i]!);
const plain = (await zarrita.open(zarrita.root(store).resolve("counts"), {
  kind: "array",
})) as zarrita.Array<"int32">;
const plainData = (await zarrita.get(plain)).data;
const zarritaAgrees = plainData.every((v, i) => v === final[i]);

const transactions = TASKS * ROUNDS * 2;
console.log(
  JSON.stringify({
    dir,
    tasks: TASKS,
    transactions,
    reads,
    elapsedMs: Math.round(elapsedMs),
    transactionsPerSecond: Math.round(transactions / (elapsedMs / 1000)),
    lostIncrements: lost,
    tornReads: torn,
    zarritaAgrees,
  }),
);
if (!dirArg) await rm(dir, { recursive: true, force: true });
const ok = lost === 0 && torn === 0 && zarritaAgrees;
console.log(ok ? "OK: no lost increment, no torn read, zarrita reads the same data" : "FAILED");
process.exitCode = ok ? 0 : 1;
