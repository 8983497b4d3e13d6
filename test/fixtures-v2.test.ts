/**
 * Reads every zarr-python 2.13 fixture under test/fixtures/v2 (made by test/fixtures/make_v2_fixtures.py)
 * and compares it bit for bit with the values zarr-python read back, recorded in manifest.json. Needs no
 * Python: the fixtures are committed.
 */
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BoolArray } from "zarrita";
import { rawConstructor } from "../src/codecs/chunk-codec.js";
import { type DataType, FileSystemStore, get, open, set, type UserTypedArray } from "../src/index.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "v2");

interface Fixture {
  dtype: string;
  order: "C" | "F";
  shape: number[];
  chunks: number[];
  compressor: { id: string; shuffle?: number; cname?: string } | null;
  filters: { id: string }[] | null;
  fill_value: number | boolean | string;
  dimension_separator: "." | "/";
  values: string;
}

const manifest = JSON.parse(await readFile(join(FIXTURES, "manifest.json"), "utf8")) as {
  arrays: Record<string, Fixture>;
};
const NAMES = Object.keys(manifest.arrays).sort();

const DTYPES: Record<string, { name: DataType; size: number }> = {
  b1: { name: "bool", size: 1 },
  i1: { name: "int8", size: 1 },
  u1: { name: "uint8", size: 1 },
  i2: { name: "int16", size: 2 },
  u2: { name: "uint16", size: 2 },
  i4: { name: "int32", size: 4 },
  u4: { name: "uint32", size: 4 },
  i8: { name: "int64", size: 8 },
  u8: { name: "uint64", size: 8 },
  f4: { name: "float32", size: 4 },
  f8: { name: "float64", size: 8 },
};
const dtypeOf = (f: Fixture) => DTYPES[f.dtype.slice(1)] as { name: DataType; size: number };

/** The elements of a result in C order, as little-endian bytes, whatever its strides. */
function cOrderBytes(
  result: { data: UserTypedArray; shape: readonly number[]; stride: readonly number[] },
  size: number,
) {
  const { data, shape, stride } = result;
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.length * size);
  const total = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(total * size);
  const index = shape.map(() => 0);
  for (let k = 0; k < total; k++) {
    let offset = 0;
    for (let d = 0; d < shape.length; d++) offset += (index[d] as number) * (stride[d] as number);
    out.set(raw.subarray(offset * size, (offset + 1) * size), k * size);
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      if (index[d] !== shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** A typed array of a (non-bool) data type viewing `buffer`. */
function typedView(dtype: DataType, buffer: ArrayBuffer): UserTypedArray {
  return new (rawConstructor(dtype))(buffer) as UserTypedArray;
}

async function chunkFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith("."))
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "zarr-tx-fixtures-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("zarr-python 2.13 fixtures", () => {
  const store = new FileSystemStore(FIXTURES, { readOnly: true });

  it("cover every compressor, blosc shuffle, filter, dtype, order and byte order", () => {
    const all = Object.values(manifest.arrays);
    expect(NAMES.length).toBeGreaterThanOrEqual(20);
    expect(new Set(all.map((f) => f.compressor?.id ?? "none"))).toEqual(
      new Set(["none", "zlib", "gzip", "blosc", "zstd", "lz4"]),
    );
    const bloscShuffles = all.filter((f) => f.compressor?.id === "blosc").map((f) => f.compressor?.shuffle);
    expect(new Set(bloscShuffles)).toEqual(new Set([-1, 0, 1, 2]));
    expect(new Set(all.flatMap((f) => (f.filters ?? []).map((x) => x.id)))).toEqual(
      new Set(["delta", "shuffle"]),
    );
    expect(new Set(all.map((f) => f.dtype.slice(1)))).toEqual(new Set(Object.keys(DTYPES)));
    expect(new Set(all.map((f) => f.order))).toEqual(new Set(["C", "F"]));
    expect(new Set(all.map((f) => f.dtype[0]))).toEqual(new Set(["<", ">", "|"]));
  });

  for (const name of NAMES) {
    const fixture = manifest.arrays[name] as Fixture;
    it(`reads ${name} bit for bit`, async () => {
      const arr = await open(store, { path: `${name}.zarr` });
      const { name: dtype, size } = dtypeOf(fixture);
      expect(arr.zarrFormat).toBe(2);
      expect(arr.dtype).toBe(dtype);
      expect(arr.shape).toEqual(fixture.shape);
      expect(arr.chunks).toEqual(fixture.chunks);
      if (fixture.fill_value === "NaN") expect(arr.fillValue).toBeNaN();
      else if (dtype === "int64" || dtype === "uint64")
        expect(arr.fillValue).toBe(BigInt(fixture.fill_value));
      else expect(arr.fillValue).toBe(fixture.fill_value);
      const got = cOrderBytes(await get(arr, null), size);
      expect(Buffer.from(got).toString("base64")).toBe(fixture.values);
    });
  }

  // Without a compressor the chunk bytes are fully determined, so zarr-tx must write exactly zarr-python's.
  const uncompressed = NAMES.filter((n) => manifest.arrays[n]?.compressor === null);
  it.each(uncompressed)(
    "rewriting %s with the same values reproduces zarr-python's chunk bytes",
    async (name) => {
      const fixture = manifest.arrays[name] as Fixture;
      const { name: dtype } = dtypeOf(fixture);
      const copy = join(scratch, `${name}.zarr`);
      await cp(join(FIXTURES, `${name}.zarr`), copy, { recursive: true });
      const arr = await open(new FileSystemStore(scratch, { fsync: false }), { path: `${name}.zarr` });
      const bytes = new Uint8Array(Buffer.from(fixture.values, "base64")).buffer;
      const data = dtype === "bool" ? new BoolArray(bytes) : typedView(dtype as DataType, bytes);
      await set(arr, null, { data, shape: fixture.shape });
      const original = await chunkFiles(join(FIXTURES, `${name}.zarr`));
      expect(original.length).toBeGreaterThan(0);
      for (const file of original) {
        const theirs = await readFile(join(FIXTURES, `${name}.zarr`, file));
        const ours = await readFile(join(copy, file));
        expect(ours.equals(theirs), `${name}/${file}`).toBe(true);
      }
    },
  );
});
