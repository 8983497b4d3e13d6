import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import * as zarrita from "zarrita";
import type { DimSelector, Slice } from "../src/array/selection.js";
import {
  type CodecMetadata,
  coordinates,
  create,
  type DataType,
  FileSystemStore,
  get,
  MemoryStore,
  normalizeSelection,
  open,
  type Selection,
  set,
  slice,
  transaction,
} from "../src/index.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-array-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Dense reference model: row-major numbers, updated by brute force. */
function modelIndices(selection: readonly DimSelector[], shape: readonly number[]): number[][] {
  return shape.map((n, axis) => {
    const s = (selection[axis] ?? null) as Slice | number | null;
    if (typeof s === "number") return [s < 0 ? s + n : s];
    const step = s?.step ?? 1;
    const norm = (b: number | null, d: number) =>
      b === null ? d : b < 0 ? Math.max(0, b + n) : Math.min(b, n);
    const out: number[] = [];
    for (let i = norm(s?.start ?? null, 0); i < norm(s?.stop ?? null, n); i += step) out.push(i);
    return out;
  });
}

function forEachPoint(lists: number[][], fn: (point: number[], flat: number) => void): void {
  const points = lists.reduce<number[][]>((acc, l) => acc.flatMap((p) => l.map((v) => [...p, v])), [[]]);
  points.forEach((p, i) => {
    fn(p, i);
  });
}

/** A zarrita result in C order, whatever its strides (zarrita returns a transposed array's native order). */
function cOrder(result: { data: ArrayLike<unknown>; shape: number[]; stride: number[] }): unknown[] {
  const out: unknown[] = [];
  forEachPoint(
    result.shape.map((n) => Array.from({ length: n }, (_, i) => i)),
    (point) => out.push(result.data[point.reduce((acc, v, axis) => acc + v * result.stride[axis]!, 0)]),
  );
  return out;
}

function linear(point: number[], shape: readonly number[]): number {
  return point.reduce((acc, v, axis) => acc * shape[axis]! + v, 0);
}

describe("get/set against a dense model (property)", () => {
  const dimArb = fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 4 }));
  const selArb = (n: number): fc.Arbitrary<DimSelector> =>
    fc.oneof(
      fc.constant(null),
      fc.integer({ min: -n, max: n - 1 }),
      fc.record({
        start: fc.option(fc.integer({ min: -n, max: n }), { nil: null }),
        stop: fc.option(fc.integer({ min: -n, max: n }), { nil: null }),
        step: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
      }),
    );
  const scenario = fc.array(dimArb, { minLength: 1, maxLength: 3 }).chain((dims) => {
    const shape = dims.map(([n]) => n);
    const selection = fc.tuple(...shape.map(selArb));
    return fc.record({
      shape: fc.constant(shape),
      chunkShape: fc.constant(dims.map(([, c]) => c)),
      order: fc.constantFrom<"C" | "F">("C", "F"),
      writes: fc.array(fc.tuple(selection, fc.integer({ min: -1000, max: 1000 }), fc.boolean()), {
        minLength: 1,
        maxLength: 6,
      }),
      read: selection,
    });
  });

  it("every read equals the model after random writes (v3 with transpose, v2 with order)", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ shape, chunkShape, order, writes, read }) => {
        const store = new MemoryStore();
        const v2 = order === "F";
        const arr = await create(store, {
          shape,
          chunkShape,
          dtype: "int32",
          fillValue: 7,
          ...(v2
            ? { zarrFormat: 2 as const, order }
            : { codecs: [{ name: "transpose", configuration: { order: "F" } }] }),
        });
        const model = new Int32Array(shape.reduce((a, b) => a * b, 1)).fill(7);
        for (const [selection, value, asArray] of writes) {
          const lists = modelIndices(selection, shape);
          const outShape = lists
            .filter((_, axis) => typeof selection[axis] !== "number")
            .map((l) => l.length);
          const size = outShape.reduce((a, b) => a * b, 1);
          const data = Int32Array.from({ length: size }, (_, i) => value + i);
          await set(arr, selection, asArray ? { data, shape: outShape } : value);
          forEachPoint(lists, (point, flat) => {
            model[linear(point, shape)] = asArray ? data[flat]! : value;
          });
        }
        const lists = modelIndices(read, shape);
        const got = await get(arr, read);
        const expected: number[] = [];
        forEachPoint(lists, (point) => expected.push(model[linear(point, shape)]!));
        expect([...(got.data as Int32Array)]).toEqual(expected);
        // Plain zarrita reads the same bytes (v3 and v2 alike).
        const plain = await zarrita.open(store as never, { kind: "array" });
        expect(cOrder(await zarrita.get(plain as zarrita.Array<"int32">))).toEqual([...model]);
      }),
      { numRuns: 150 },
    );
  });
});

describe("arrays", () => {
  it("round-trips every dtype on the filesystem store, v3 and v2", async () => {
    const dtypes: [DataType, (i: number) => number | bigint | boolean][] = [
      ["int8", (i) => (i % 200) - 100],
      ["int16", (i) => i * 100 - 3000],
      ["int32", (i) => i * 100000 - 7],
      ["int64", (i) => BigInt(i) * 10000000000n - 5n],
      ["uint8", (i) => i % 256],
      ["uint16", (i) => i * 1000],
      ["uint32", (i) => i * 100000000],
      ["uint64", (i) => BigInt(i) * 10000000000000n],
      ["float32", (i) => i / 4],
      ["float64", (i) => i / 3],
      ["bool", (i) => i % 3 === 0],
    ];
    const store = new FileSystemStore(await tempDir());
    for (const zarrFormat of [2, 3] as const) {
      for (const [dtype, gen] of dtypes) {
        const arr = await create(store, {
          path: `${dtype}-v${zarrFormat}`,
          shape: [5, 7],
          chunkShape: [2, 3],
          dtype,
          zarrFormat,
        });
        const values = Array.from({ length: 35 }, (_, i) => gen(i));
        const data =
          dtype === "bool"
            ? new zarrita.BoolArray(values as boolean[])
            : dtype === "int64"
              ? BigInt64Array.from(values as bigint[])
              : dtype === "uint64"
                ? BigUint64Array.from(values as bigint[])
                : new (
                    {
                      int8: Int8Array,
                      int16: Int16Array,
                      int32: Int32Array,
                      uint8: Uint8Array,
                      uint16: Uint16Array,
                      uint32: Uint32Array,
                      float32: Float32Array,
                      float64: Float64Array,
                    } as const
                  )[dtype as "int8"](values as number[]);
        await set(arr, null, { data, shape: [5, 7] });
        const reopened = await open(store, { path: `${dtype}-v${zarrFormat}` });
        expect(reopened.zarrFormat).toBe(zarrFormat);
        const got = await get(reopened, null);
        const list =
          dtype === "bool" ? [...(got.data as zarrita.BoolArray)] : [...(got.data as Iterable<unknown>)];
        expect(list, `${dtype} v${zarrFormat}`).toEqual(values);
        // The scalar form and the fill value of untouched chunks.
        await set(arr, [4, slice(5, 7)], gen(1));
        const tail = await get(arr, [4]);
        const tailList =
          dtype === "bool" ? [...(tail.data as zarrita.BoolArray)] : [...(tail.data as Iterable<unknown>)];
        expect(tailList.slice(5)).toEqual([gen(1), gen(1)]);
      }
    }
  });

  it("encodes and decodes every codec (v3 list and v2 compressors), readable by plain zarrita", async () => {
    const v3: CodecMetadata[][] = [
      [{ name: "bytes", configuration: { endian: "big" } }],
      [
        { name: "transpose", configuration: { order: [1, 0] } },
        { name: "bytes", configuration: { endian: "little" } },
      ],
      [
        { name: "bytes" },
        {
          name: "blosc",
          configuration: { cname: "lz4", clevel: 5, shuffle: "shuffle", typesize: 4, blocksize: 0 },
        },
      ],
      [{ name: "bytes" }, { name: "zstd", configuration: { level: 3, checksum: false } }],
      [{ name: "bytes" }, { name: "gzip", configuration: { level: 5 } }],
      [{ name: "bytes" }, { name: "crc32c" }],
      [{ name: "bytes" }, { name: "gzip", configuration: { level: 1 } }, { name: "crc32c" }],
    ];
    const v2 = [
      { id: "zlib", level: 1 },
      { id: "gzip", level: 5 },
      { id: "blosc", cname: "zstd", clevel: 3, shuffle: 2, blocksize: 0 },
      { id: "zstd", level: 1 },
      { id: "lz4", acceleration: 1 },
    ];
    const store = new MemoryStore();
    const data = Int32Array.from({ length: 60 }, (_, i) => i * i - 30);
    let n = 0;
    for (const codecs of v3) {
      const arr = await create(store, {
        path: `v3-${n++}`,
        shape: [6, 10],
        chunkShape: [4, 4],
        dtype: "int32",
        codecs,
      });
      await set(arr, null, { data, shape: [6, 10] });
      const plain = (await zarrita.open(zarrita.root(store as never).resolve(arr.path), {
        kind: "array",
      })) as zarrita.Array<"int32">;
      expect(cOrder(await zarrita.get(plain)), JSON.stringify(codecs)).toEqual([...data]);
    }
    for (const compressor of v2) {
      const arr = await create(store, {
        path: `v2-${n++}`,
        shape: [6, 10],
        chunkShape: [4, 4],
        dtype: "int32",
        zarrFormat: 2,
        compressor,
      });
      await set(arr, [slice(1, 6), slice(2, 10)], 5);
      await set(arr, null, { data, shape: [6, 10] });
      const back = await get(await open(store, { path: arr.path }), null);
      expect([...(back.data as Int32Array)], compressor.id).toEqual([...data]);
    }
  });

  it("writes 0-d arrays, integer indices and non-contiguous values", async () => {
    const store = new MemoryStore();
    const scalar = await create(store, {
      path: "s",
      shape: [],
      chunkShape: [],
      dtype: "float64",
      fillValue: Number.NaN,
    });
    expect(
      Number.isNaN((await get(scalar)).data.valueOf() as unknown as number[]).toString() === "NaN" ||
        Number.isNaN([...((await get(scalar)).data as Float64Array)][0]!),
    ).toBe(true);
    await set(scalar, null, 2.5);
    expect([...(await get(scalar)).data]).toEqual([2.5]);

    const arr = await create(store, { path: "m", shape: [4, 6], chunkShape: [3, 4], dtype: "int16" });
    // A value given in F order (stride [1, 2]) for a [2, 3] selection.
    await set(arr, [slice(1, 3), slice(3, 6)], {
      data: Int16Array.from([1, 4, 2, 5, 3, 6]),
      shape: [2, 3],
      stride: [1, 2],
    });
    const got = await get(arr, [slice(1, 3), slice(3, 6)]);
    expect([...(got.data as Int16Array)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...(await get(arr, [-1, -1])).data]).toEqual([0]);
    expect([...(await get(arr, [2, -1])).data]).toEqual([6]);
  });

  it("commits nothing when the transaction's function throws, and sees its own writes", async () => {
    const store = new MemoryStore();
    const a = await create(store, { path: "a", shape: [8], chunkShape: [2], dtype: "uint8" });
    const b = await create(store, { path: "b", shape: [8], chunkShape: [2], dtype: "uint8" });
    const before = await store.list("/");
    await expect(
      transaction(
        [
          { array: a, selection: null, mode: "write" },
          { array: b, selection: null, mode: "write" },
        ],
        async (tx) => {
          await tx.set(a, [slice(0, 5)], 9);
          expect([...(await tx.get(a, [slice(3, 6)])).data]).toEqual([9, 9, 0]);
          await tx.set(b, null, 1);
          throw new Error("changed my mind");
        },
      ),
    ).rejects.toThrow("changed my mind");
    expect(await store.list("/")).toEqual(before);
    // Two arrays, one atomic commit.
    await transaction(
      [
        { array: a, selection: [slice(0, 4)], mode: "read" },
        { array: b, selection: [slice(0, 4)], mode: "write" },
      ],
      async (tx) => {
        const v = await tx.get(a, [slice(0, 4)]);
        await tx.set(b, [slice(0, 4)], { data: (v.data as Uint8Array).map((x) => x + 3), shape: v.shape });
      },
    );
    expect([...(await get(b)).data]).toEqual([3, 3, 3, 3, 0, 0, 0, 0]);
  });

  it("refuses access outside the footprint and after the transaction ended", async () => {
    const store = new MemoryStore();
    const a = await create(store, { shape: [8], chunkShape: [2], dtype: "uint8" });
    let leaked: { set: (s: Selection, v: number) => Promise<void> } | undefined;
    await expect(
      transaction([{ array: a, selection: [slice(0, 2)], mode: "write" }], async (tx) => {
        await tx.set(a, [slice(0, 4)], 1);
      }),
    ).rejects.toMatchObject({ code: "ERR_OUTSIDE_FOOTPRINT" });
    await expect(
      transaction([{ array: a, selection: [slice(0, 2)], mode: "read" }], async (tx) => {
        await tx.set(a, [slice(0, 2)], 1);
      }),
    ).rejects.toMatchObject({ code: "ERR_OUTSIDE_FOOTPRINT" });
    await transaction([{ array: a, selection: [slice(0, 2)], mode: "write" }], async (tx) => {
      leaked = { set: (s, v) => tx.set(a, s, v) };
    });
    await expect(leaked!.set([0], 1)).rejects.toMatchObject({ code: "ERR_TRANSACTION_CLOSED" });
    expect(await store.list("/c")).toEqual([]);
  });

  it("replans when another handle changed the array's shape", async () => {
    const store = new MemoryStore();
    const first = await create(store, { shape: [4], chunkShape: [2], dtype: "int32" });
    await set(first, null, 1);
    await create(store, { shape: [10], chunkShape: [5], dtype: "int32", overwrite: true });
    await set(first, [slice(0, 10)], 2);
    expect(first.shape).toEqual([10]);
    expect([...(await get(first)).data]).toEqual(new Array(10).fill(2));
  });
});

describe("orthogonal and coordinate selections against a dense model (property)", () => {
  const scenario = fc
    .array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4 })), {
      minLength: 1,
      maxLength: 3,
    })
    .chain((dims) => {
      const shape = dims.map(([n]) => n);
      const orthogonal = fc.tuple(
        ...shape.map((n) =>
          fc.oneof(
            fc.array(fc.integer({ min: -n, max: n - 1 }), { minLength: 1, maxLength: 5 }),
            fc.array(fc.boolean(), { minLength: n, maxLength: n }),
            fc.integer({ min: -n, max: n - 1 }),
            fc.constant(null),
          ),
        ),
      );
      const points = fc
        .integer({ min: 1, max: 6 })
        .chain((count) =>
          fc.tuple(
            ...shape.map((n) =>
              fc.array(fc.integer({ min: -n, max: n - 1 }), { minLength: count, maxLength: count }),
            ),
          ),
        );
      const selection = fc.oneof(
        orthogonal.map((s) => ({ kind: "orthogonal" as const, s })),
        points.map((p) => ({ kind: "coordinate" as const, p })),
      );
      return fc.record({
        shape: fc.constant(shape),
        chunkShape: fc.constant(dims.map(([, c]) => c)),
        sharded: fc.boolean(),
        writes: fc.array(fc.tuple(selection, fc.integer({ min: -100, max: 100 }), fc.boolean()), {
          minLength: 1,
          maxLength: 5,
        }),
        read: selection,
      });
    });

  /** The cells a selection picks, in output order, as flat indices of the dense model. */
  function cells(
    sel: { kind: "orthogonal"; s: DimSelector[] } | { kind: "coordinate"; p: number[][] },
    shape: number[],
  ): number[] {
    const wrap = (v: number, n: number) => (v < 0 ? v + n : v);
    if (sel.kind === "coordinate") {
      return sel.p[0]!.map((_, i) =>
        linear(
          sel.p.map((list, axis) => wrap(list[i]!, shape[axis]!)),
          shape,
        ),
      );
    }
    const lists = sel.s.map((s, axis) => {
      const n = shape[axis]!;
      if (s === null) return Array.from({ length: n }, (_, i) => i);
      if (typeof s === "number") return [wrap(s, n)];
      if (Array.isArray(s) && typeof s[0] === "boolean")
        return (s as boolean[]).flatMap((b, i) => (b ? [i] : []));
      return (s as number[]).map((v) => wrap(v, n));
    });
    const out: number[] = [];
    forEachPoint(lists, (point) => out.push(linear(point, shape)));
    return out;
  }

  it("reads equal the model after random orthogonal and coordinate writes (plain and sharded)", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ shape, chunkShape, sharded, writes, read }) => {
        const store = new MemoryStore();
        // Sharded: shards of 2 chunks along the first axis, inner chunks of the generated chunk shape.
        const shardShape = sharded ? chunkShape.map((c, axis) => (axis === 0 ? c * 2 : c)) : chunkShape;
        const arr = await create(store, {
          shape,
          chunkShape: shardShape,
          dtype: "int32",
          fillValue: 3,
          codecs: sharded
            ? [
                {
                  name: "sharding_indexed",
                  configuration: {
                    chunk_shape: chunkShape,
                    codecs: [{ name: "bytes" }],
                    index_location: "end",
                  },
                },
              ]
            : undefined,
        });
        const model = new Int32Array(shape.reduce((a, b) => a * b, 1)).fill(3);
        const toSelection = (sel: (typeof writes)[number][0]) =>
          sel.kind === "coordinate" ? coordinates(...sel.p) : sel.s;
        for (const [sel, value, asArray] of writes) {
          const picked = cells(sel, shape);
          const selection = toSelection(sel);
          const outShape = normalizeSelection(selection, shape).shape;
          const data = Int32Array.from({ length: picked.length }, (_, i) => value * 10 + i);
          await set(arr, selection, asArray ? { data, shape: outShape } : value);
          picked.forEach((cell, i) => {
            model[cell] = asArray ? data[i]! : value;
          });
        }
        const got = await get(arr, toSelection(read));
        expect([...(got.data as Int32Array)]).toEqual(cells(read, shape).map((cell) => model[cell]));
      }),
      { numRuns: 200 },
    );
  });
});
