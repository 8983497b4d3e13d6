/**
 * The numcodecs filters (delta, shuffle) and blosc, byte for byte against numcodecs 0.11 (Debian
 * python3-numcodecs, /usr/bin/python3), and typed errors at open for unknown or unsupported codecs.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seededRandom as prng } from "../src/cli/workloads.js";
import { type BloscFrameOptions, bitShuffle, byteShuffle, writeBloscFrame } from "../src/codecs/blosc.js";
import { DeltaFilter, loadCodecPipeline, parseNumpyNumericType, ShuffleFilter } from "../src/codecs/index.js";
import { create, FileSystemStore, isZarrTxError, open, type ZarrTxErrorCode } from "../src/index.js";

const PYTHON = "/usr/bin/python3";

/**
 * For each case, numcodecs encodes `hex` (the raw bytes of an array of `dtype`) with `codec`, and decodes
 * both its own encoding and `ours` (our encoding, when given). Prints a JSON list of
 * `{ encoded, decoded, decodedOurs, flags }` or `{ error }`.
 */
const NUMCODECS = `
import json, sys, numcodecs, numpy as np
out = []
for case in json.load(open(sys.argv[1])):
    try:
        codec = numcodecs.get_codec(dict(case["codec"]))
        data = np.frombuffer(bytes.fromhex(case["hex"]), dtype=case["dtype"])
        encoded = bytes(np.asarray(codec.encode(data)).tobytes()) if case["codec"]["id"] != "blosc" else bytes(codec.encode(data))
        result = {"encoded": encoded.hex(), "decoded": np.asarray(codec.decode(encoded)).tobytes().hex()}
        if case.get("ours") is not None:
            ours = bytes.fromhex(case["ours"])
            result["decodedOurs"] = np.asarray(codec.decode(ours)).tobytes().hex()
            result["flags"] = [ours[2], ours[3]] if case["codec"]["id"] == "blosc" else None
        out.append(result)
    except Exception as e:
        out.append({"error": "%s: %s" % (type(e).__name__, e)})
print(json.dumps(out))
`;

interface NumcodecsCase {
  codec: Record<string, unknown>;
  dtype: string;
  hex: string;
  ours?: string;
}
interface NumcodecsResult {
  encoded?: string;
  decoded?: string;
  decodedOurs?: string;
  flags?: [number, number] | null;
  error?: string;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zarr-tx-filters-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function numcodecs(cases: NumcodecsCase[]): Promise<NumcodecsResult[]> {
  const file = join(dir, `cases-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(cases));
  const run = spawnSync(PYTHON, ["-c", NUMCODECS, file], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (run.error || run.status !== 0) {
    throw new Error(`numcodecs failed (is python3-numcodecs installed?): ${run.error ?? ""}\n${run.stderr}`);
  }
  return JSON.parse(run.stdout) as NumcodecsResult[];
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
const unhex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

/** `n` elements of NumPy type `dtype` as raw bytes: random bits, or (for floats) random finite values. */
function randomElements(dtype: string, n: number, rng: () => number, small = false): Uint8Array {
  const t = parseNumpyNumericType(dtype, "test dtype");
  const bytes = new Uint8Array(n * t.size);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) {
    if (t.kind === "f") {
      const v = (rng() - 0.5) * 10 ** Math.floor(rng() * 12 - 4);
      if (t.size === 4) view.setFloat32(i * 4, v, t.littleEndian);
      else view.setFloat64(i * 8, v, t.littleEndian);
    } else if (small) {
      view.setInt8(i * t.size + (t.littleEndian ? 0 : t.size - 1), Math.floor(rng() * 101) - 50);
    } else {
      for (let b = 0; b < t.size; b++) bytes[i * t.size + b] = Math.floor(rng() * 256);
    }
  }
  return bytes;
}

async function expectCode(promise: Promise<unknown>, code: ZarrTxErrorCode): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isZarrTxError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error as Error;
}

describe("delta filter, byte for byte as numcodecs", () => {
  const TYPES = [
    "|i1",
    "|u1",
    "<i2",
    ">i2",
    "<u2",
    ">u2",
    "<i4",
    ">i4",
    "<u4",
    ">u4",
    "<i8",
    ">i8",
    "<u8",
    ">u8",
  ];
  const FLOATS = ["<f4", ">f4", "<f8", ">f8"];
  const configs: { dtype: string; astype: string; small?: boolean }[] = [
    ...[...TYPES, ...FLOATS].map((t) => ({ dtype: t, astype: t })),
    // Narrowing, widening, signedness and byte-order changes between dtype and astype.
    { dtype: "<i8", astype: "<i2", small: true },
    { dtype: ">i4", astype: "|i1", small: true },
    { dtype: "<u2", astype: "|i1", small: true },
    { dtype: "<i4", astype: ">i4" },
    { dtype: ">f8", astype: "<f8" },
    { dtype: "<f4", astype: ">f4" },
    // Every pair of integer types, with random bits: where astype cannot hold the differences, the
    // data do not survive, but they must not survive in exactly the way numcodecs' do not.
    ...["|i1", "<i2", ">i4", "<i8", "|u1", ">u2", "<u4", ">u8"].flatMap((dtype) =>
      ["|i1", ">i2", "<i4", ">i8", "|u1", "<u2", ">u4", "<u8"]
        // uint64 with a signed type is refused (see the next test).
        .filter(
          (astype) =>
            !(dtype.includes("i") && astype.endsWith("u8")) &&
            !(dtype.endsWith("u8") && astype.includes("i")),
        )
        .map((astype) => ({ dtype, astype })),
    ),
  ];

  it("encodes as numcodecs encodes, and decodes numcodecs' encoding as numcodecs decodes it", async () => {
    const rng = prng(7);
    const inputs = configs.map((c) => {
      const bytes = randomElements(c.dtype, 97, rng, c.small);
      // The first element is stored as it is; numcodecs raises OverflowError when it does not fit astype.
      const t = parseNumpyNumericType(c.dtype, "t");
      if (t.kind !== "f") {
        bytes.fill(0, 0, t.size);
        bytes[t.littleEndian ? 0 : t.size - 1] = 5;
      }
      return bytes;
    });
    const filters = configs.map((c) => DeltaFilter.fromConfig(c, { dataType: "int32" }));
    const results = await numcodecs(
      configs.map((c, i) => ({
        codec: { id: "delta", dtype: c.dtype, astype: c.astype },
        dtype: c.dtype,
        hex: hex(inputs[i] as Uint8Array),
      })),
    );
    configs.forEach((c, i) => {
      const result = results[i] as NumcodecsResult;
      const label = `${c.dtype} -> ${c.astype}`;
      expect(result.error, label).toBeUndefined();
      const filter = filters[i] as DeltaFilter;
      expect(hex(filter.encode(inputs[i] as Uint8Array)), label).toBe(result.encoded);
      // numcodecs' own decoding of its encoding, even where floats make it inexact.
      expect(hex(filter.decode(unhex(result.encoded as string))), label).toBe(result.decoded);
    });
  });

  it("refuses uint64 paired with a signed type, which numcodecs itself decodes through float64", () => {
    expect(() => DeltaFilter.fromConfig({ dtype: "<i4", astype: "<u8" }, { dataType: "int32" })).toThrow(
      /float64/,
    );
    expect(() => DeltaFilter.fromConfig({ dtype: ">u8", astype: ">i8" }, { dataType: "uint64" })).toThrow(
      /float64/,
    );
  });

  it("round trips integers exactly for any values (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("|i1", "|u1", "<i2", ">u2", ">i4", "<u4", "<i8", ">u8"),
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        (dtype, raw) => {
          const size = parseNumpyNumericType(dtype, "t").size;
          const bytes = raw.subarray(0, raw.length - (raw.length % size));
          const filter = DeltaFilter.fromConfig({ dtype }, { dataType: "int8" });
          expect(hex(filter.decode(filter.encode(bytes)))).toBe(hex(bytes));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("takes the chunk's data type when the configuration names none, and sizes its output by astype", () => {
    const filter = DeltaFilter.fromConfig({}, { dataType: "uint16" });
    expect(filter.dtype).toEqual({ kind: "u", size: 2, littleEndian: true });
    expect(Array.from(filter.encode(Uint8Array.of(5, 0, 7, 0, 6, 0)))).toEqual([5, 0, 2, 0, 255, 255]);
    expect(
      DeltaFilter.fromConfig({ dtype: "<i8", astype: "<i2" }, { dataType: "int64" }).computeEncodedSize(80),
    ).toBe(20);
  });

  it("refuses byte counts that are not whole elements", () => {
    const filter = DeltaFilter.fromConfig({ dtype: "<i4" }, { dataType: "int32" });
    expect(() => filter.encode(new Uint8Array(6))).toThrow(/whole number/);
    expect(() => filter.decode(new Uint8Array(3))).toThrow(/whole number/);
  });
});

describe("shuffle filter, byte for byte as numcodecs", () => {
  it("encodes and decodes as numcodecs does for every element size", async () => {
    const rng = prng(11);
    const sizes = [0, 1, 2, 3, 4, 8, 16];
    const inputs = sizes.map(() => randomElements("|u1", 96, rng));
    const results = await numcodecs(
      sizes.map((elementsize, i) => ({
        codec: { id: "shuffle", elementsize },
        dtype: "|u1",
        hex: hex(inputs[i] as Uint8Array),
      })),
    );
    sizes.forEach((elementsize, i) => {
      const result = results[i] as NumcodecsResult;
      expect(result.error).toBeUndefined();
      const filter = ShuffleFilter.fromConfig({ elementsize }, { dataType: "uint8" });
      expect(hex(filter.encode(inputs[i] as Uint8Array)), `elementsize ${elementsize}`).toBe(result.encoded);
      expect(hex(filter.decode(unhex(result.encoded as string)))).toBe(hex(inputs[i] as Uint8Array));
    });
  });

  it("refuses lengths that are not a multiple of the element size, as numcodecs does", async () => {
    const [result] = await numcodecs([
      { codec: { id: "shuffle", elementsize: 4 }, dtype: "|u1", hex: "0102030405" },
    ]);
    expect(result?.error).toMatch(/multiple of elementsize/);
    expect(() => new ShuffleFilter(4).encode(new Uint8Array(5))).toThrow(/multiple of elementsize/);
  });

  it("uses the chunk's item size when elementsize is absent (zarr-python 3's rule)", () => {
    expect(ShuffleFilter.fromConfig({}, { dataType: "float64" }).elementSize).toBe(8);
    expect(ShuffleFilter.fromConfig({}, { dataType: "bool" }).elementSize).toBe(1);
    expect(ShuffleFilter.fromConfig({ elementsize: 4 }, { dataType: "float64" }).elementSize).toBe(4);
  });
});

describe("blosc against numcodecs", () => {
  const bytesLE = { name: "bytes", configuration: { endian: "little" } };

  async function encodeWith(
    dataType: "int8" | "int16" | "int32" | "int64",
    shuffle: unknown,
    cname: string,
    data: Uint8Array,
  ) {
    const size = { int8: 1, int16: 2, int32: 4, int64: 8 }[dataType];
    const pipeline = await loadCodecPipeline({
      dataType,
      shape: [data.length / size],
      codecs: [
        bytesLE,
        { name: "blosc", configuration: { cname, clevel: 5, shuffle, typesize: size, blocksize: 0 } },
      ],
      fillValue: 0,
    });
    const Ctor = { int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array }[dataType];
    const chunk = { data: new Ctor(data.slice().buffer), shape: [data.length / size], stride: [1] };
    return { pipeline, encoded: await pipeline.encode(chunk as never) };
  }

  it("numcodecs decodes every frame zarr-tx writes, for every compressor, shuffle and item size, and vice versa", async () => {
    const rng = prng(3);
    const cases: {
      dataType: "int8" | "int16" | "int32" | "int64";
      dtype: string;
      cname: string;
      shuffle: unknown;
    }[] = [];
    for (const [dataType, dtype] of [
      ["int8", "|i1"],
      ["int16", "<i2"],
      ["int32", "<i4"],
      ["int64", "<i8"],
    ] as const) {
      for (const cname of ["lz4", "lz4hc", "zstd", "zlib", "blosclz"]) {
        for (const shuffle of ["noshuffle", "shuffle", "bitshuffle", 0, 1, 2, -1])
          cases.push({ dataType, dtype, cname, shuffle });
      }
    }
    // Compressible data (a slow ramp with noise) of an odd length, so blocks do not divide evenly.
    const inputs = cases.map((c) => {
      const size = parseNumpyNumericType(c.dtype, "t").size;
      const n = 1001;
      const bytes = new Uint8Array(n * size);
      for (let i = 0; i < n; i++) bytes[i * size] = (i >> 3) + Math.floor(rng() * 3);
      return bytes;
    });
    const ours = await Promise.all(
      cases.map((c, i) => encodeWith(c.dataType, c.shuffle, c.cname, inputs[i] as Uint8Array)),
    );
    const numericShuffle = (s: unknown) =>
      typeof s === "number" ? s : { noshuffle: 0, shuffle: 1, bitshuffle: 2 }[s as string];
    const results = await numcodecs(
      cases.map((c, i) => ({
        codec: { id: "blosc", cname: c.cname, clevel: 5, shuffle: numericShuffle(c.shuffle), blocksize: 0 },
        dtype: c.dtype,
        hex: hex(inputs[i] as Uint8Array),
        ours: hex(ours[i]?.encoded as Uint8Array),
      })),
    );
    for (const [i, c] of cases.entries()) {
      const label = `${c.dataType} ${c.cname} ${String(c.shuffle)}`;
      const result = results[i] as NumcodecsResult;
      expect(result.error, label).toBeUndefined();
      expect(result.decodedOurs, label).toBe(hex(inputs[i] as Uint8Array));
      // zarr-tx decodes numcodecs' frames (which carry the real typesize).
      const { pipeline } = ours[i] as (typeof ours)[number];
      const decoded = (await pipeline.decode(unhex(result.encoded as string))).data as Int8Array;
      expect(hex(new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength)), label).toBe(
        hex(inputs[i] as Uint8Array),
      );
      // The header's flags carry the shuffle asked for; AUTOSHUFFLE (-1) resolves as numcodecs does.
      const size = parseNumpyNumericType(c.dtype, "t").size;
      let want = numericShuffle(c.shuffle) as number;
      if (want === -1) want = size === 1 ? 2 : 1;
      const [flags, typesize] = result.flags as [number, number];
      if (c.cname === "blosclz") {
        // Written by numcodecs.js, which cannot set the typesize (every frame says 4); it must not
        // byte-shuffle one-byte items in groups of 4, so those are stored unshuffled.
        if (want === 1 && size === 1) want = 0;
        expect(typesize, label).toBe(4);
      } else {
        // Written by src/codecs/blosc.ts with the real typesize, as c-blosc writes them.
        expect(typesize, label).toBe(size);
      }
      expect(flags & 0x5, label).toBe(want === 0 ? 0 : want === 1 ? 1 : 4);
    }
  });

  it("frames of every size, typesize, block size and level decode in numcodecs, and say their typesize", async () => {
    const rng = prng(17);
    const cases: { options: BloscFrameOptions; data: Uint8Array }[] = [];
    for (const typesize of [1, 2, 3, 4, 8, 16]) {
      for (const elements of [1, 7, 8, 31, 200, 1001, 4100]) {
        for (const shuffle of [0, 1, 2] as const) {
          const data = new Uint8Array(elements * typesize);
          for (let i = 0; i < data.length; i++)
            data[i] = i % typesize === 0 ? (i >> 6) & 0xff : Math.floor(rng() * 4);
          const cname = ["lz4", "zstd", "zlib", "lz4hc"][(typesize + elements + shuffle) % 4] as string;
          // Small fixed blocks force many blocks and a short last one (whose count is not a multiple of 8).
          const blocksize = elements % 2 === 0 ? 0 : 200 * typesize + 4;
          cases.push({ options: { cname, clevel: (elements % 9) + 1, shuffle, typesize, blocksize }, data });
        }
      }
    }
    // A last block of 12 elements: bit shuffle leaves blocks whose count is not a multiple of 8 alone.
    for (const typesize of [1, 2, 4, 8]) {
      for (const cname of ["lz4", "zstd"]) {
        const data = Uint8Array.from({ length: 1012 * typesize }, (_, i) => (i >> 5) & 0xff);
        cases.push({ options: { cname, clevel: 5, shuffle: 2, typesize, blocksize: 200 * typesize }, data });
      }
    }
    cases.push({
      options: { cname: "lz4", clevel: 0, shuffle: 1, typesize: 4, blocksize: 0 },
      data: new Uint8Array(4096),
    });
    cases.push({
      options: { cname: "zstd", clevel: 9, shuffle: 2, typesize: 300, blocksize: 0 },
      data: new Uint8Array(2400),
    });
    const lz4 = (await import("numcodecs/lz4")).default.fromConfig({ id: "lz4", acceleration: 1 });
    const zstd = (await import("numcodecs/zstd")).default.fromConfig({ id: "zstd", level: 3 });
    const zlib = (await import("numcodecs/zlib")).default.fromConfig({ id: "zlib", level: 5 });
    const frames = await Promise.all(
      cases.map(({ options, data }) =>
        writeBloscFrame(data, options, async (block) =>
          options.cname.startsWith("lz4")
            ? (await lz4.encode(block)).subarray(4)
            : options.cname === "zstd"
              ? zstd.encode(block)
              : zlib.encode(block),
        ),
      ),
    );
    const results = await numcodecs(
      cases.map(({ data }, i) => ({
        codec: { id: "blosc" },
        dtype: "|u1",
        hex: hex(data),
        ours: hex(frames[i] as Uint8Array),
      })),
    );
    // numcodecs.js (c-blosc in WebAssembly: what zarrita and zarr-tx decode with) reads them too.
    const wasm = (await import("numcodecs/blosc")).default.fromConfig({ id: "blosc" });
    for (const [i, { options, data }] of cases.entries()) {
      const label = JSON.stringify({ ...options, bytes: data.length });
      const result = results[i] as NumcodecsResult;
      expect(result.error, label).toBeUndefined();
      expect(result.decodedOurs, label).toBe(hex(data));
      expect(result.flags?.[1], label).toBe(options.typesize > 255 ? 1 : options.typesize);
      expect(hex(await wasm.decode(frames[i] as Uint8Array)), label).toBe(hex(data));
    }
  });

  it("compresses shuffled 2- and 8-byte data about as well as zarr-python", async () => {
    const n = 8192;
    const datasets: ["int16" | "int64", string, Uint8Array][] = [
      ["int16", "<i2", new Uint8Array(Int16Array.from({ length: n }, (_, i) => i * 3).buffer)],
      ["int64", "<i8", new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 1000n).buffer)],
    ];
    const cases: NumcodecsCase[] = [];
    const ours: number[] = [];
    for (const [dataType, dtype, data] of datasets) {
      for (const cname of ["lz4", "zstd"]) {
        for (const shuffle of [1, 2]) {
          ours.push((await encodeWith(dataType, shuffle, cname, data)).encoded.length);
          cases.push({
            codec: { id: "blosc", cname, clevel: 5, shuffle, blocksize: 0 },
            dtype,
            hex: hex(data),
          });
        }
      }
    }
    const results = await numcodecs(cases);
    results.forEach((result, i) => {
      const theirs = unhex(result.encoded as string).length;
      expect(ours[i] as number, JSON.stringify(cases[i]?.codec)).toBeLessThan(theirs * 1.25);
    });
  });

  it("the fast bit shuffle equals the bit-by-bit definition (property)", () => {
    const reference = (block: Uint8Array, typesize: number) => {
      const n = block.length / typesize;
      if (!Number.isInteger(n) || n % 8 !== 0) return block.slice();
      const out = new Uint8Array(block.length);
      for (let i = 0; i < n; i++) {
        for (let b = 0; b < typesize; b++) {
          for (let k = 0; k < 8; k++) {
            if (((block[i * typesize + b] as number) >> k) & 1) {
              const at = (b * 8 + k) * (n / 8) + (i >> 3);
              out[at] = (out[at] as number) | (1 << (i & 7));
            }
          }
        }
      }
      return out;
    };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.uint8Array({ maxLength: 300 }), (typesize, bytes) => {
        expect(hex(bitShuffle(bytes, typesize))).toBe(hex(reference(bytes, typesize)));
      }),
      { numRuns: 500 },
    );
    expect(hex(byteShuffle(Uint8Array.of(1, 2, 3, 4, 5, 6, 7), 2))).toBe(
      hex(Uint8Array.of(1, 3, 5, 2, 4, 6, 7)),
    );
  });

  it("shuffle takes effect: the three shuffles give three different sizes on compressible data", async () => {
    const data = new Uint8Array(new Int32Array(Array.from({ length: 4096 }, (_, i) => i * 3)).buffer);
    for (const cname of ["lz4", "zstd"]) {
      const sizes = new Set<number>();
      for (const shuffle of ["noshuffle", "shuffle", "bitshuffle"]) {
        sizes.add((await encodeWith("int32", shuffle, cname, data)).encoded.length);
      }
      expect(sizes.size, cname).toBe(3);
    }
  });
});

describe("v2 filters followed by blosc, as zarr-python chains them", () => {
  /** numcodecs runs the filters, then Blosc on what they return; reports the frame and decodes ours. */
  const CHAIN = `
import json, sys, numcodecs, numpy as np
out = []
for case in json.load(open(sys.argv[1])):
    x = np.frombuffer(bytes.fromhex(case["hex"]), dtype=case["dtype"])
    filters = [numcodecs.get_codec(dict(f)) for f in case["filters"]]
    compressor = numcodecs.get_codec(dict(case["compressor"]))
    y = x
    for f in filters:
        y = f.encode(y)
    frame = bytes(compressor.encode(y))
    z = compressor.decode(bytes.fromhex(case["ours"]))
    for f in reversed(filters):
        z = f.decode(z)
    out.append({"flags": frame[2], "typesize": frame[3], "decodedOurs": np.asarray(z).tobytes().hex()})
print(json.dumps(out))
`;

  it("uses the item size numcodecs' Blosc sees after the filters (AUTOSHUFFLE, one-byte shuffle)", async () => {
    const chains: { filters: Record<string, unknown>[]; shuffle: number }[] = [
      { filters: [{ id: "shuffle", elementsize: 4 }], shuffle: -1 },
      { filters: [{ id: "shuffle", elementsize: 4 }], shuffle: 1 },
      { filters: [{ id: "shuffle", elementsize: 4 }], shuffle: 2 },
      { filters: [{ id: "delta", dtype: "<i4", astype: "|i1" }], shuffle: -1 },
      { filters: [{ id: "delta", dtype: "<i4", astype: "<i2" }], shuffle: -1 },
      { filters: [{ id: "delta", dtype: "<i4", astype: "<i4" }], shuffle: -1 },
      { filters: [], shuffle: -1 },
    ];
    const data = new Uint8Array(new Int32Array(Array.from({ length: 512 }, (_, i) => (i * 7) % 100)).buffer);
    const ours: string[] = [];
    for (const chain of chains) {
      const pipeline = await loadCodecPipeline({
        dataType: "int32",
        shape: [512],
        codecs: [
          bytesLE(),
          ...chain.filters.map(({ id, ...configuration }) => ({
            name: `numcodecs.${String(id)}`,
            configuration,
          })),
          {
            name: "numcodecs.blosc",
            configuration: { cname: "lz4", clevel: 5, shuffle: chain.shuffle, blocksize: 0 },
          },
        ],
        fillValue: 0,
      });
      ours.push(
        hex(await pipeline.encode({ data: new Int32Array(data.slice().buffer), shape: [512], stride: [1] })),
      );
    }
    const file = join(dir, "chains.json");
    await writeFile(
      file,
      JSON.stringify(
        chains.map((chain, i) => ({
          dtype: "<i4",
          hex: hex(data),
          filters: chain.filters,
          compressor: { id: "blosc", cname: "lz4", clevel: 5, shuffle: chain.shuffle, blocksize: 0 },
          ours: ours[i],
        })),
      ),
    );
    const run = spawnSync(PYTHON, ["-c", CHAIN, file], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    const results = JSON.parse(run.stdout) as { flags: number; typesize: number; decodedOurs: string }[];
    chains.forEach((chain, i) => {
      const result = results[i] as (typeof results)[number];
      const label = JSON.stringify(chain);
      expect(result.decodedOurs, label).toBe(hex(data));
      // The same shuffle and typesize as numcodecs' own frame.
      const frame = unhex(ours[i] as string);
      expect([(frame[2] as number) & 0x5, frame[3]], label).toEqual([result.flags & 0x5, result.typesize]);
    });
  });
});

describe("codecs are checked at open, not at first write", () => {
  async function writeV2(path: string, zarray: Record<string, unknown>): Promise<void> {
    await mkdir(join(dir, path), { recursive: true });
    const doc = {
      zarr_format: 2,
      shape: [4],
      chunks: [2],
      dtype: "<i4",
      compressor: null,
      fill_value: 0,
      order: "C",
      filters: null,
      ...zarray,
    };
    await writeFile(join(dir, path, ".zarray"), JSON.stringify(doc));
  }

  it("an unknown v2 compressor or filter is ERR_UNKNOWN_CODEC at open", async () => {
    const store = new FileSystemStore(dir, { fsync: false });
    await writeV2("unknown-compressor", { compressor: { id: "nope" } });
    await writeV2("unknown-filter", { filters: [{ id: "nope", level: 1 }] });
    await writeV2("unknown-second-filter", { filters: [{ id: "shuffle", elementsize: 4 }, { id: "nope" }] });
    for (const path of ["unknown-compressor", "unknown-filter", "unknown-second-filter"]) {
      const error = await expectCode(open(store, { path }), "ERR_UNKNOWN_CODEC");
      expect(error.message).toContain("numcodecs.nope");
    }
  });

  it("an unknown v3 codec is ERR_UNKNOWN_CODEC at open", async () => {
    const store = new FileSystemStore(dir, { fsync: false });
    await mkdir(join(dir, "unknown-v3"), { recursive: true });
    await writeFile(
      join(dir, "unknown-v3", "zarr.json"),
      JSON.stringify({
        zarr_format: 3,
        node_type: "array",
        shape: [4],
        data_type: "int32",
        chunk_grid: { name: "regular", configuration: { chunk_shape: [2] } },
        chunk_key_encoding: { name: "default", configuration: { separator: "/" } },
        fill_value: 0,
        codecs: [{ name: "bytes", configuration: { endian: "little" } }, { name: "nope" }],
      }),
    );
    await expectCode(open(store, { path: "unknown-v3" }), "ERR_UNKNOWN_CODEC");
  });

  it("create refuses an unknown compressor or filter before writing anything", async () => {
    const root = join(dir, "create-unknown");
    await mkdir(root, { recursive: true });
    const store = new FileSystemStore(root, { fsync: false });
    const base = { shape: [4], chunkShape: [2], dtype: "int32", zarrFormat: 2 } as const;
    await expectCode(create(store, { ...base, path: "a", compressor: { id: "nope" } }), "ERR_UNKNOWN_CODEC");
    await expectCode(create(store, { ...base, path: "b", filters: [{ id: "nope" }] }), "ERR_UNKNOWN_CODEC");
    expect(await readdir(root)).toEqual([]);
  });

  it("unsupported or invalid filter and blosc configurations are typed errors at open", async () => {
    const store = new FileSystemStore(dir, { fsync: false });
    const cases: [string, Record<string, unknown>, ZarrTxErrorCode][] = [
      ["delta-mixed-kinds", { filters: [{ id: "delta", dtype: "<i4", astype: "<f4" }] }, "ERR_UNSUPPORTED"],
      [
        "delta-bool",
        { dtype: "|b1", fill_value: false, filters: [{ id: "delta", dtype: "|b1" }] },
        "ERR_UNSUPPORTED",
      ],
      ["delta-float16", { filters: [{ id: "delta", dtype: "<f2" }] }, "ERR_UNSUPPORTED"],
      ["shuffle-negative", { filters: [{ id: "shuffle", elementsize: -1 }] }, "ERR_INVALID_METADATA"],
      ["shuffle-string", { filters: [{ id: "shuffle", elementsize: "4" }] }, "ERR_INVALID_METADATA"],
      [
        "blosc-shuffle-7",
        { compressor: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 7 } },
        "ERR_INVALID_METADATA",
      ],
      [
        "blosc-cname",
        { compressor: { id: "blosc", cname: "brotli", clevel: 5, shuffle: 1 } },
        "ERR_INVALID_METADATA",
      ],
    ];
    for (const [path, zarray, code] of cases) {
      await writeV2(path, zarray);
      await expectCode(open(store, { path }), code);
    }
    const v3 = await loadCodecPipeline({
      dataType: "int32",
      shape: [4],
      codecs: [
        bytesLE(),
        { name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle: "shuffle", typesize: 4 } },
      ],
      fillValue: 0,
    });
    expect(v3.codecNames).toEqual(["bytes", "blosc"]);
    await expectCode(
      loadCodecPipeline({
        dataType: "int32",
        shape: [4],
        codecs: [
          bytesLE(),
          { name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle: "shuffle", typesize: 0 } },
        ],
        fillValue: 0,
      }),
      "ERR_INVALID_METADATA",
    );
  });

  it("a pipeline of bytes, shuffle and delta has a fixed encoded size", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "int64",
      shape: [10],
      codecs: [
        bytesLE(),
        { name: "numcodecs.delta", configuration: { dtype: "<i8", astype: "<i2" } },
        { name: "numcodecs.shuffle", configuration: { elementsize: 2 } },
      ],
      fillValue: 0n,
    });
    expect(pipeline.computeEncodedSize(80)).toBe(20);
  });
});

function bytesLE() {
  return { name: "bytes", configuration: { endian: "little" } };
}
