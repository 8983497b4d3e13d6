/**
 * FileSynchronizer with real processes (and worker threads): zarr-python #857 as its reporter wrote it,
 * the #857 diagonals, the counter, a holder SIGKILLed while it holds locks, and the counter on
 * `worker_threads`. Each child runs test/file-sync-child.ts (bundled once, see `childCommand`).
 *
 * Set ZARR_TX_TEST_DIR to run the arrays (and so the lock files) on another filesystem, e.g. an NFS or
 * Lustre mount you want to trust: `ZARR_TX_TEST_DIR=/mnt/nfs/tmp npx vitest run test/sync.file`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  create,
  FileSynchronizer,
  FileSystemStore,
  get,
  open,
  slice,
  type ZarrTxArray,
} from "../src/index.js";
import { killAll, type Message, Child as ProcessChild } from "./child-process.js";
import type { ChildConfig } from "./file-sync-child.js";
import { counterRegion, countTornDiagonals, diagonalCount, seededRandom } from "./workloads.js";

const here = dirname(fileURLToPath(import.meta.url));
const childScript = join(here, "file-sync-child.ts");
/**
 * How children are started. `node --import tsx` costs ~0.5 s of CPU per process (the loader and the
 * transforms), so 30 processes on 2 cores spend ~10 s just starting. The child is bundled once with
 * esbuild (present through tsx and vitest) into node_modules/.cache, where its bare imports resolve, and
 * then starts in ~0.15 s. Without esbuild, children run through tsx.
 */
let childCommand: string[] = [];
let bundle: string | undefined;

beforeAll(async () => {
  const repo = join(here, "..");
  try {
    const { build } = await import("esbuild");
    bundle = join(repo, "node_modules", ".cache", "zarr-tx-test", `file-sync-child-${process.pid}.mjs`);
    await build({
      entryPoints: [childScript],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      outfile: bundle,
      logLevel: "error",
    });
    childCommand = [bundle];
  } catch {
    bundle = undefined;
    // An absolute URL, so that children resolve tsx whatever their working directory.
    childCommand = [
      "--import",
      pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href,
      childScript,
    ];
  }
});

const dirs: string[] = [];

// A failed test must not leave processes behind; each is killed by its own pid.
afterEach(killAll);
afterAll(async () => {
  await Promise.all(
    [...dirs, ...(bundle === undefined ? [] : [bundle])].map((d) => rm(d, { recursive: true, force: true })),
  );
});

async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(join(process.env.ZARR_TX_TEST_DIR ?? tmpdir(), "zarr-tx-file-sync-"));
  dirs.push(dir);
  return dir;
}

/** Rounds of each #857 process: write its value, read the whole array. */
const ROUNDS_857 = 10;
/** Whole-array reads of each diagonal reader process. */
const DIAGONAL_READS = 100;

/** A child running test/file-sync-child.ts with `config`. */
class Child extends ProcessChild {
  constructor(config: ChildConfig) {
    super([...childCommand, JSON.stringify(config)]);
  }

  send(word: string): void {
    this.process.stdin.write(`${word}\n`);
  }

  /** The child's result, after it exited cleanly. */
  async result(): Promise<Message> {
    const result = await this.next("result");
    const { code, stderr } = await this.exited;
    expect(code, stderr).toBe(0);
    return result;
  }
}

/** Starts every child, waits until all are ready, then lets them go at once. */
async function startTogether(configs: ChildConfig[]): Promise<Child[]> {
  const started = configs.map((config) => new Child(config));
  await Promise.all(started.map((child) => child.next("ready")));
  for (const child of started) child.send("go");
  return started;
}

async function newArray(
  shape: number[],
  chunkShape: number[],
): Promise<{ root: string; array: ZarrTxArray; sync: FileSynchronizer }> {
  const root = await tempRoot();
  const sync = new FileSynchronizer();
  const array = await create(new FileSystemStore(root, { fsync: false }), {
    shape,
    chunkShape,
    dtype: "int32",
    synchronizer: sync,
  });
  return { root, array, sync };
}

describe("FileSynchronizer with real processes", () => {
  it("zarr-python #857 as reported: 30 processes write one random value across [2:6] or [6:10]; every read shows each span uniform", async () => {
    const { root, array, sync } = await newArray([12], [4]);
    const configs: ChildConfig[] = Array.from({ length: 30 }, (_, i) => ({
      role: "span857",
      root,
      seed: 857_000 + i,
      span: i % 2 === 0 ? [2, 6] : [6, 10],
      rounds: ROUNDS_857,
    }));
    const t0 = performance.now();
    const started = await startTogether(configs);
    const t1 = performance.now();
    const results = await Promise.all(started.map((child) => child.result()));
    console.log(
      `#857: 30 processes ready in ${Math.round(t1 - t0)} ms, work ${Math.round(performance.now() - t1)} ms`,
    );
    const torn = results.reduce((sum, r) => sum + (r.torn as number), 0);
    const reads = results.reduce((sum, r) => sum + (r.reads as number), 0);
    expect({ torn, reads }).toEqual({ torn: 0, reads: 30 * ROUNDS_857 });

    // The final array: each span uniform and holding a value some process wrote to it; the rest untouched.
    const final = [...((await get(array)).data as Int32Array)];
    const written = (a: number) =>
      new Set(results.filter((r) => (r.span as number[])[0] === a).map((r) => r.value));
    expect(new Set(final.slice(2, 6)).size).toBe(1);
    expect(new Set(final.slice(6, 10)).size).toBe(1);
    expect(written(2).has(final[2])).toBe(true);
    expect(written(6).has(final[6])).toBe(true);
    expect([final[0], final[1], final[10], final[11]]).toEqual([0, 0, 0, 0]);
    await sync.close();
  });

  it("#857 diagonals: 4 writer processes rewrite their anti-diagonals, 2 reader processes see 0 torn diagonals", async () => {
    const { root, array, sync } = await newArray([10, 10], [2, 2]);
    const writers = 4;
    const readers = 2;
    const all = await startTogether([
      ...Array.from(
        { length: writers },
        (_, writer): ChildConfig => ({ role: "diagonal-writer", root, writer, writers }),
      ),
      ...Array.from(
        { length: readers },
        (): ChildConfig => ({ role: "diagonal-reader", root, reads: DIAGONAL_READS }),
      ),
    ]);
    const readerResults = await Promise.all(all.slice(writers).map((child) => child.result()));
    for (const child of all.slice(0, writers)) child.send("stop");
    const writerResults = await Promise.all(all.slice(0, writers).map((child) => child.result()));
    const torn = readerResults.reduce((sum, r) => sum + (r.torn as number), 0);
    const writes = writerResults.map((r) => r.writes as number);
    console.log(
      `diagonals: ${readers * DIAGONAL_READS} reads, writes per writer ${writes.join("/")}, ${torn} torn`,
    );
    expect(torn).toBe(0);
    for (const w of writes) expect(w, "every writer makes progress while readers read").toBeGreaterThan(0);
    expect(await countTornDiagonals(array)).toBe(0);
    // Every diagonal holds a value its own writer wrote (writer w owns d ≡ w mod 4).
    const { data, stride } = await get(array);
    for (let d = 0; d < diagonalCount(array.shape); d++) {
      const i = Math.min(d, 9);
      const value = (data as Int32Array)[i * stride[0]! + (d - i) * stride[1]!]!;
      // 0 only if its writer was stopped before its first pass reached it.
      if (value !== 0) expect(Math.floor(value / 1_000_000) - 1).toBe(d % writers);
    }
    await sync.close();
  });

  it("counter: 8 processes × 100 read-modify-write increments over chunk-crossing regions lose nothing", async () => {
    const { root, array, sync } = await newArray([12, 12], [4, 4]);
    const configs: ChildConfig[] = Array.from({ length: 8 }, (_, p) => ({
      role: "counter",
      root,
      seed: 4_000 + p,
      rounds: 100,
    }));
    await Promise.all((await startTogether(configs)).map((child) => child.result()));
    expect([...((await get(array)).data as Int32Array)]).toEqual(expectedCounts(array.shape, configs));
    await sync.close();
  });

  it("sharded: 8 processes each increment their own inner chunks of the same shards, and lose nothing", async () => {
    const root = await tempRoot();
    const sync = new FileSynchronizer();
    // 16×16 in four 8×8 shards of 2×2 inner chunks: process t owns columns 2t and 2t+1, so every shard
    // is rewritten by four processes, each changing only inner chunks of its own.
    const array = await create(new FileSystemStore(root, { fsync: false }), {
      shape: [16, 16],
      chunkShape: [8, 8],
      dtype: "int32",
      synchronizer: sync,
      codecs: [
        {
          name: "sharding_indexed",
          configuration: {
            chunk_shape: [2, 2],
            codecs: [{ name: "bytes" }, { name: "zstd", configuration: { level: 1 } }],
          },
        },
      ],
    });
    const configs: ChildConfig[] = Array.from({ length: 8 }, (_, column) => ({
      role: "shard-column",
      root,
      column,
      rounds: 25,
    }));
    await Promise.all((await startTogether(configs)).map((child) => child.result()));
    expect([...((await get(array)).data as Int32Array)]).toEqual(new Array(256).fill(25));
    await sync.close();
  });

  it("the same counter on 8 worker_threads of one process", async () => {
    const { root, array, sync } = await newArray([12, 12], [4, 4]);
    const config: ChildConfig = { role: "threads", root, threads: 8, seed: 7_000, rounds: 100 };
    const [child] = await startTogether([config]);
    await child!.result();
    const perThread: ChildConfig[] = Array.from({ length: 8 }, (_, t) => ({
      role: "counter",
      root,
      seed: 7_000 + t,
      rounds: 100,
    }));
    expect([...((await get(array)).data as Int32Array)]).toEqual(expectedCounts(array.shape, perThread));
    await sync.close();
  });

  it("a holder SIGKILLed while holding locks: the waiting process gets them within a second, and the array stays readable", async () => {
    const { root, array, sync } = await newArray([8, 8], [4, 4]);
    const [holder] = await startTogether([{ role: "holder", root }]);
    await holder!.next("held");
    const [waiter] = await startTogether([{ role: "waiter", root, value: 7 }]);
    await waiter!.next("waiting");
    // Give the waiter time to block on the kernel lock; it must still be waiting then.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(waiter!.messages.some((m) => m.event === "granted")).toBe(false);
    // While the holder lives, this process cannot take the locks either.
    await expect(get(array, null, { timeoutMs: 50 })).rejects.toMatchObject({ code: "ERR_LOCK_TIMEOUT" });

    const killedAt = Date.now();
    holder!.process.kill("SIGKILL");
    const granted = await waiter!.next("granted");
    console.log(`SIGKILL to grant in the waiting process: ${(granted.at as number) - killedAt} ms`);
    expect((granted.at as number) - killedAt).toBeLessThan(1_000);
    expect((await holder!.exited).signal).toBe("SIGKILL");
    expect((await waiter!.exited).code).toBe(0);

    // The holder's staged write never landed; the waiter's did; everything decodes.
    const reopened = await open(new FileSystemStore(root), { synchronizer: sync });
    const { data } = await get(reopened, [slice(0, 8), slice(0, 8)]);
    expect(new Set(data as Int32Array)).toEqual(new Set([7]));
    await sync.close();
  });
});

/** What every cell must hold after the counter processes ran with these seeds (same regions they drew). */
function expectedCounts(shape: readonly number[], configs: ChildConfig[]): number[] {
  const expected = new Array<number>(shape[0]! * shape[1]!).fill(0);
  for (const config of configs) {
    if (config.role !== "counter") continue;
    const random = seededRandom(config.seed);
    for (let i = 0; i < config.rounds; i++) {
      const { start, stop } = counterRegion(shape, random);
      for (let r = start[0]!; r < stop[0]!; r++)
        for (let c = start[1]!; c < stop[1]!; c++) expected[r * shape[1]! + c]!++;
    }
  }
  return expected;
}
