import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AcquireOptions,
  create,
  FileSystemStore,
  InProcessSynchronizer,
  isZarrTxError,
  type Lease,
  type LockMode,
  type LockSet,
  open,
  type Synchronizer,
  set,
  slice,
  transaction,
  type ZarrTxArray,
} from "../src/index.js";

/** Counts acquisitions, to prove bad input is rejected before any lock is taken. */
class CountingSynchronizer implements Synchronizer {
  readonly inner = new InProcessSynchronizer();
  acquisitions = 0;
  acquire(keys: Iterable<string>, mode: LockMode, options?: AcquireOptions): Promise<Lease> {
    this.acquisitions++;
    return this.inner.acquire(keys, mode, options);
  }
  acquireSet(locks: LockSet, options?: AcquireOptions): Promise<Lease> {
    this.acquisitions++;
    return this.inner.acquireSet(locks, options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else out[relative(dir, p)] = (await readFile(p)).toString("base64");
    }
  };
  await walk(dir);
  return out;
}

let dir: string;
let store: FileSystemStore;
let sync: CountingSynchronizer;
let arr: ZarrTxArray;
let big: ZarrTxArray;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zarr-tx-bad-"));
  store = new FileSystemStore(dir);
  sync = new CountingSynchronizer();
  arr = await create(store, {
    path: "a",
    shape: [10, 10],
    chunkShape: [4, 4],
    dtype: "int32",
    synchronizer: sync,
  });
  big = await create(store, { path: "b", shape: [4], chunkShape: [2], dtype: "int64", synchronizer: sync });
  await set(arr, null, 3);
  await mkdir(join(dir, "corrupt"));
  await writeFile(join(dir, "corrupt", "zarr.json"), "{ not json");
  await mkdir(join(dir, "strings"));
  await writeFile(
    join(dir, "strings", ".zarray"),
    JSON.stringify({
      zarr_format: 2,
      shape: [2],
      chunks: [2],
      dtype: "<U4",
      compressor: null,
      fill_value: "",
      order: "C",
      filters: null,
    }),
  );
});
afterAll(async () => {
  await sync.close();
  await rm(dir, { recursive: true, force: true });
});

const cases: [string, string, () => Promise<unknown>][] = [
  ["index out of bounds", "ERR_OUT_OF_BOUNDS", () => set(arr, [10, 0], 1)],
  ["negative index out of bounds", "ERR_OUT_OF_BOUNDS", () => set(arr, [0, -11], 1)],
  ["step 0", "ERR_INVALID_STEP", () => set(arr, [slice(0, 10, 0)], 1)],
  ["negative step", "ERR_INVALID_STEP", () => set(arr, [slice(9, 0, -1)], 1)],
  ["too many dimensions", "ERR_INVALID_SELECTION", () => set(arr, [0, 0, 0], 1)],
  ["fractional index", "ERR_INVALID_SELECTION", () => set(arr, [1.5], 1)],
  [
    "value of the wrong shape",
    "ERR_VALUE_SHAPE",
    () => set(arr, [slice(0, 2), slice(0, 2)], { data: new Int32Array(6), shape: [2, 3] }),
  ],
  [
    "value data too short for its stride",
    "ERR_VALUE_SHAPE",
    () => set(arr, [slice(0, 2), slice(0, 2)], { data: new Int32Array(4), shape: [2, 2], stride: [4, 1] }),
  ],
  [
    "Float64Array into int32",
    "ERR_VALUE_DTYPE",
    () => set(arr, [0, slice(0, 2)], { data: new Float64Array(2), shape: [2] }),
  ],
  ["scalar out of int32 range", "ERR_VALUE_DTYPE", () => set(arr, [0], 2 ** 40)],
  ["fractional scalar into int32", "ERR_VALUE_DTYPE", () => set(arr, [0], 0.5)],
  ["number into int64", "ERR_VALUE_DTYPE", () => set(big, [0], 1)],
  ["string scalar", "ERR_VALUE_DTYPE", () => set(arr, [0], "1" as never)],
  [
    "unknown codec",
    "ERR_UNKNOWN_CODEC",
    () =>
      create(store, {
        path: "x1",
        shape: [4],
        chunkShape: [2],
        dtype: "int32",
        codecs: [{ name: "bytes" }, { name: "no-such-codec" }],
        synchronizer: sync,
      }),
  ],
  ["missing array", "ERR_ARRAY_NOT_FOUND", () => open(store, { path: "nothing-here", synchronizer: sync })],
  ["corrupt metadata", "ERR_INVALID_METADATA", () => open(store, { path: "corrupt", synchronizer: sync })],
  ["unsupported dtype", "ERR_UNSUPPORTED", () => open(store, { path: "strings", synchronizer: sync })],
  [
    "read-only store",
    "ERR_STORE_READ_ONLY",
    async () =>
      set(
        await open(new FileSystemStore(dir, { readOnly: true }), { path: "a", synchronizer: sync }),
        [0],
        1,
      ),
  ],
  [
    "chunk shape of 0",
    "ERR_INVALID_ARGUMENT",
    () => create(store, { path: "x2", shape: [4], chunkShape: [0], dtype: "int32", synchronizer: sync }),
  ],
  [
    "fill value not an integer",
    "ERR_INVALID_ARGUMENT",
    () =>
      create(store, {
        path: "x3",
        shape: [4],
        chunkShape: [2],
        dtype: "int32",
        fillValue: 1.5,
        synchronizer: sync,
      }),
  ],
  [
    "unknown dtype",
    "ERR_INVALID_ARGUMENT",
    () =>
      create(store, {
        path: "x4",
        shape: [4],
        chunkShape: [2],
        dtype: "complex64" as never,
        synchronizer: sync,
      }),
  ],
  ["hostile array path", "ERR_INVALID_ARGUMENT", () => open(store, { path: "../etc", synchronizer: sync })],
  ["empty footprint", "ERR_INVALID_ARGUMENT", () => transaction([], async () => 1)],
  [
    "bad footprint mode",
    "ERR_INVALID_ARGUMENT",
    () => transaction([{ array: arr, mode: "append" as never }], async () => 1),
  ],
];

describe("bad input is rejected with a typed error, before any lock, and writes nothing", () => {
  it.each(cases)("%s → %s", async (_name, code, run) => {
    const before = await snapshot(dir);
    const acquisitions = sync.acquisitions;
    let thrown: unknown;
    try {
      await run();
    } catch (error) {
      thrown = error;
    }
    expect(thrown, "it must throw").toBeDefined();
    expect(isZarrTxError(thrown), String(thrown)).toBe(true);
    expect((thrown as { code: string }).code).toBe(code);
    expect((thrown as Error).message.length).toBeGreaterThan(20);
    expect(sync.acquisitions, "no lock may be taken").toBe(acquisitions);
    expect(await snapshot(dir)).toEqual(before);
  });

  it("covers at least 12 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(12);
  });

  it("an array already there is not overwritten by create", async () => {
    const before = await snapshot(dir);
    await expect(
      create(store, { path: "a", shape: [2], chunkShape: [2], dtype: "int32", synchronizer: sync }),
    ).rejects.toMatchObject({
      code: "ERR_ARRAY_EXISTS",
    });
    expect(await snapshot(dir)).toEqual(before);
  });
});
