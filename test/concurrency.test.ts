import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import {
  create,
  FileSystemStore,
  get,
  InProcessSynchronizer,
  MemoryStore,
  type Store,
} from "../src/index.js";
import {
  counterRegion,
  countTornDiagonals,
  diagonalCount,
  incrementRegion,
  seededRandom,
  writeDiagonal,
} from "./workloads.js";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function stores(): Promise<[string, Store][]> {
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-conc-"));
  dirs.push(dir);
  return [
    ["memory", new MemoryStore()],
    // Isolation, not durability, is under test here: fsync off keeps 10,000 contended reads fast.
    ["filesystem", new FileSystemStore(dir, { fsync: false })],
  ];
}

const WRITERS = 8;
const READERS = 2;
/** Reads per run: 10,000 on the memory store; the filesystem run repeats the 2-D case with fewer reads. */
const MIN_READS: Record<string, number> = { memory: 10_000, filesystem: 2_000 };

describe("diagonal invariant (zarr-python #857), 8 writer tasks and 2 reader tasks", () => {
  for (const [label, shape, chunkShape] of [
    ["10×10, 2×2 chunks", [10, 10], [2, 2]],
    ["3-D 6×6×6, 2×2×2 chunks", [6, 6, 6], [2, 2, 2]],
  ] as const) {
    it(`never shows a torn diagonal: ${label}`, { timeout: 300_000 }, async () => {
      for (const [storeName, store] of await stores()) {
        // The filesystem run shows the same invariant on real files; the store does not isolate, the
        // synchronizer does, so one shape on files is enough to keep the suite fast.
        if (storeName === "filesystem" && shape.length === 3) continue;
        const minReads = MIN_READS[storeName]!;
        const started = performance.now();
        const synchronizer = new InProcessSynchronizer();
        const array = await create(store, {
          shape: [...shape],
          chunkShape: [...chunkShape],
          dtype: "int32",
          synchronizer,
        });
        const diagonals = diagonalCount(shape);
        let reads = 0;
        let torn = 0;
        let writes = 0;
        let done = false;
        const writer = async (w: number): Promise<void> => {
          let value = w * 1_000_000;
          while (!done) {
            for (let d = w; d < diagonals; d += WRITERS) {
              await writeDiagonal(array, d, ++value);
              writes++;
              // Pace the writers so that the 10,000 reads, not a flood of writes, set the run time.
              await sleep(15);
            }
          }
        };
        const reader = async (): Promise<void> => {
          while (reads < minReads) {
            torn += await countTornDiagonals(array);
            reads++;
            // Yield to timers and I/O: a memory store resolves in microtasks and would starve the writers.
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        };
        const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
        await Promise.all(Array.from({ length: READERS }, reader));
        done = true;
        await Promise.all(writers);
        expect({ storeName, torn }).toEqual({ storeName, torn: 0 });
        console.log(
          `${label} on ${storeName}: ${reads} reads, ${writes} diagonal writes, ${torn} torn, ${Math.round(performance.now() - started)} ms`,
        );
        expect(reads).toBeGreaterThanOrEqual(minReads);
        expect(writes, "writers must make progress while readers read").toBeGreaterThan(WRITERS);
        // Afterwards every diagonal holds exactly its last writer's value.
        expect(await countTornDiagonals(array)).toBe(0);
        await synchronizer.close();
      }
    });
  }
});

describe("counter: 8 tasks × 100 read-modify-write increments over chunk-crossing regions", () => {
  it("loses no increment", { timeout: 300_000 }, async () => {
    for (const [storeName, store] of await stores()) {
      const shape = [12, 12];
      const array = await create(store, { shape, chunkShape: [4, 4], dtype: "int32" });
      const expected = new Int32Array(144);
      const task = async (t: number): Promise<void> => {
        const random = seededRandom(1000 + t);
        for (let i = 0; i < 100; i++) {
          const { start, stop } = counterRegion(shape, random);
          for (let r = start[0]!; r < stop[0]!; r++)
            for (let c = start[1]!; c < stop[1]!; c++) expected[r * 12 + c]!++;
          await incrementRegion(array, start, stop);
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, t) => task(t)));
      const { data } = await get(array);
      expect({ storeName, cells: [...(data as Int32Array)] }).toEqual({ storeName, cells: [...expected] });
    }
  });
});
