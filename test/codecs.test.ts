import { deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { type CodecPipeline, crc32c, loadCodecPipeline, registerCodecs } from "../src/codecs/index.js";
import { isZarrTxError, type ZarrTxErrorCode } from "../src/errors.js";

type Codec = { name: string; configuration: Record<string, unknown> };

const bytesLE: Codec = { name: "bytes", configuration: { endian: "little" } };
const bytesBE: Codec = { name: "bytes", configuration: { endian: "big" } };

async function expectCode(promise: Promise<unknown>, code: ZarrTxErrorCode): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isZarrTxError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error as Error;
}

function cStrides(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i] as number;
  }
  return strides;
}

/** Every element of a chunk in logical C order, whatever its memory order. */
function logical(chunk: zarr.Chunk<zarr.DataType>): unknown[] {
  const { shape, stride } = chunk;
  const data = chunk.data as unknown as {
    length: number;
    get?: (i: number) => unknown;
    [i: number]: unknown;
  };
  const at = (i: number) => (typeof data.get === "function" ? data.get(i) : data[i]);
  const out: unknown[] = [];
  const total = shape.reduce((a, b) => a * b, 1);
  const index = new Array<number>(shape.length).fill(0);
  for (let n = 0; n < total; n++) {
    out.push(at(index.reduce((acc, x, d) => acc + x * (stride[d] as number), 0)));
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      if (index[d] !== shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

function sampleData(dataType: string, n: number): zarr.Chunk<zarr.DataType>["data"] {
  switch (dataType) {
    case "int32":
      return Int32Array.from({ length: n }, (_, i) => (i * 2654435761) | 0);
    case "float64":
      return Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 1e6 + i / 7);
    case "uint8":
      return Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
    case "int64":
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * -1234567890123n + 7n);
    case "bool":
      return new zarr.BoolArray(Array.from({ length: n }, (_, i) => i % 3 === 0));
    default:
      throw new Error(`no sample for ${dataType}`);
  }
}

async function roundTrip(
  dataType: zarr.DataType,
  shape: number[],
  codecs: Codec[],
): Promise<{ pipeline: CodecPipeline; encoded: Uint8Array; input: zarr.Chunk<zarr.DataType> }> {
  const pipeline = await loadCodecPipeline({ dataType, shape, codecs, fillValue: null });
  const n = shape.reduce((a, b) => a * b, 1);
  const input = {
    data: sampleData(dataType, n),
    shape,
    stride: cStrides(shape),
  } as zarr.Chunk<zarr.DataType>;
  const encoded = await pipeline.encode(input);
  const decoded = await pipeline.decode(encoded);
  expect(decoded.shape).toEqual(shape);
  expect(logical(decoded)).toEqual(logical(input));
  return { pipeline, encoded, input };
}

beforeAll(() => {
  registerCodecs();
});

describe("crc32c", () => {
  it("matches the standard check value", () => {
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // RFC 3720 (iSCSI) B.4 test vectors.
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
  });

  it("agrees with a bit-at-a-time reference for any input and alignment (property)", () => {
    const reference = (bytes: Uint8Array) => {
      let crc = 0xffffffff;
      for (const b of bytes) {
        crc ^= b;
        for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
      }
      return (crc ^ 0xffffffff) >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        expect(crc32c(view)).toBe(reference(view));
      }),
      { numRuns: 300 },
    );
  });

  it("appends the checksum little-endian and verifies it on decode", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "uint8",
      shape: [9],
      codecs: [bytesLE, { name: "crc32c", configuration: {} }],
      fillValue: 0,
    });
    const data = new TextEncoder().encode("123456789");
    const encoded = await pipeline.encode({ data, shape: [9], stride: [1] });
    expect(Array.from(encoded)).toEqual([...data, 0x83, 0x92, 0x06, 0xe3]);
    expect(pipeline.computeEncodedSize(9)).toBe(13);
    expect(Array.from((await pipeline.decode(encoded)).data as Uint8Array)).toEqual(Array.from(data));
  });

  it("detects damaged data and damaged checksums", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "int32",
      shape: [4],
      codecs: [bytesLE, { name: "crc32c", configuration: {} }],
      fillValue: 0,
    });
    const encoded = await pipeline.encode({ data: Int32Array.of(1, 2, 3, 4), shape: [4], stride: [1] });
    for (const position of [0, 7, encoded.length - 1]) {
      const damaged = encoded.slice();
      damaged[position] = (damaged[position] as number) ^ 0x10;
      const error = await expectCode(pipeline.decode(damaged), "ERR_CODEC");
      expect(error.message).toContain("crc32c checksum mismatch");
    }
    await expectCode(pipeline.decode(encoded.subarray(0, 3)), "ERR_CODEC");
  });
});

describe("bytes codec round trips", () => {
  for (const dataType of ["int32", "float64", "uint8", "int64", "bool"] as const) {
    for (const codec of [bytesLE, bytesBE]) {
      it(`${dataType}, ${String(codec.configuration.endian)} endian`, async () => {
        await roundTrip(dataType, [3, 5], [codec]);
      });
    }
  }

  it("writes the requested byte order", async () => {
    const chunk = { data: Int32Array.of(1, 0x01020304), shape: [2], stride: [1] };
    const le = await loadCodecPipeline({ dataType: "int32", shape: [2], codecs: [bytesLE], fillValue: 0 });
    const be = await loadCodecPipeline({ dataType: "int32", shape: [2], codecs: [bytesBE], fillValue: 0 });
    expect(Array.from(await le.encode(chunk))).toEqual([1, 0, 0, 0, 4, 3, 2, 1]);
    expect(Array.from(await be.encode(chunk))).toEqual([0, 0, 0, 1, 1, 2, 3, 4]);
    const be64 = await loadCodecPipeline({ dataType: "int64", shape: [1], codecs: [bytesBE], fillValue: 0n });
    const big = await be64.encode({ data: BigInt64Array.of(1n), shape: [1], stride: [1] });
    expect(Array.from(big)).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it("ignores the byte order for one-byte types, as the spec says (zarrita would swap bools in fours)", async () => {
    const be = await loadCodecPipeline({ dataType: "bool", shape: [6], codecs: [bytesBE], fillValue: false });
    const data = new zarr.BoolArray([true, false, false, false, true, true]);
    expect(Array.from(await be.encode({ data, shape: [6], stride: [1] }))).toEqual([1, 0, 0, 0, 1, 1]);
    const decoded = await be.decode(Uint8Array.of(1, 1, 0, 0, 0, 1));
    expect([...(decoded.data as zarr.BoolArray)]).toEqual([true, true, false, false, false, true]);
  });

  it("uses little-endian bytes when no array-to-bytes codec is listed", async () => {
    const pipeline = await loadCodecPipeline({ dataType: "uint16", shape: [2], codecs: [], fillValue: 0 });
    expect(
      Array.from(await pipeline.encode({ data: Uint16Array.of(0x0102, 3), shape: [2], stride: [1] })),
    ).toEqual([2, 1, 3, 0]);
  });

  it("encodes only the chunk's own elements when its data is a view into a larger buffer", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "int32",
      shape: [3],
      codecs: [bytesLE],
      fillValue: 0,
    });
    const backing = Int32Array.of(100, 1, 2, 3, 200);
    const encoded = await pipeline.encode({ data: backing.subarray(1, 4), shape: [3], stride: [1] });
    expect(encoded.length).toBe(12);
    expect(Array.from(new Int32Array(encoded.slice().buffer))).toEqual([1, 2, 3]);
  });

  it("returns encoded bytes and decoded data that share no memory with the inputs", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "int32",
      shape: [3],
      codecs: [bytesLE],
      fillValue: 0,
    });
    const data = Int32Array.of(1, 2, 3);
    const encoded = await pipeline.encode({ data, shape: [3], stride: [1] });
    expect(encoded.buffer).not.toBe(data.buffer);
    data[0] = 42;
    const decoded = await pipeline.decode(encoded);
    expect(decoded.data.buffer).not.toBe(encoded.buffer);
    expect(decoded.data.byteOffset).toBe(0);
    expect(decoded.data.buffer.byteLength).toBe(12);
    encoded.fill(0);
    expect(Array.from(decoded.data as Int32Array)).toEqual([1, 2, 3]);
  });

  it("writes a chunk in F memory order as C order when there is no transpose codec", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "uint8",
      shape: [2, 3],
      codecs: [bytesLE],
      fillValue: 0,
    });
    // Logical [[0, 1, 2], [3, 4, 5]] stored column-major.
    const fOrder = { data: Uint8Array.of(0, 3, 1, 4, 2, 5), shape: [2, 3], stride: [1, 2] };
    expect(Array.from(await pipeline.encode(fOrder))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("refuses a chunk of the wrong shape and bytes of the wrong size", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "int32",
      shape: [2, 2],
      codecs: [bytesLE],
      fillValue: 0,
    });
    await expectCode(pipeline.encode({ data: new Int32Array(4), shape: [4], stride: [1] }), "ERR_CODEC");
    await expectCode(
      pipeline.encode({ data: new Int32Array(3), shape: [2, 2], stride: [2, 1] }),
      "ERR_CODEC",
    );
    await expectCode(pipeline.decode(new Uint8Array(12)), "ERR_CODEC");
    await expectCode(pipeline.decode(new Uint8Array(15)), "ERR_CODEC");
  });
});

describe("transpose", () => {
  it("stores F order for order F and reads it back", async () => {
    const { encoded } = await roundTrip(
      "uint8",
      [2, 3],
      [{ name: "transpose", configuration: { order: "F" } }, bytesLE],
    );
    const pipeline = await loadCodecPipeline({
      dataType: "uint8",
      shape: [2, 3],
      codecs: [{ name: "transpose", configuration: { order: "F" } }, bytesLE],
      fillValue: 0,
    });
    const stored = await pipeline.encode({
      data: Uint8Array.of(0, 1, 2, 3, 4, 5),
      shape: [2, 3],
      stride: [3, 1],
    });
    expect(Array.from(stored)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(encoded.length).toBe(6);
  });

  it("round trips a permutation of a 3-d chunk, also big-endian", async () => {
    await roundTrip(
      "int32",
      [2, 3, 4],
      [{ name: "transpose", configuration: { order: [1, 2, 0] } }, bytesLE],
    );
    await roundTrip(
      "float64",
      [2, 3, 4],
      [{ name: "transpose", configuration: { order: [2, 0, 1] } }, bytesBE],
    );
  });

  it("re-encodes a decoded transposed chunk to the same bytes", async () => {
    const codecs = [{ name: "transpose", configuration: { order: [1, 2, 0] } }, bytesLE];
    const { pipeline, encoded } = await roundTrip("int32", [2, 3, 4], codecs);
    const decoded = await pipeline.decode(encoded);
    expect(Array.from(await pipeline.encode(decoded))).toEqual(Array.from(encoded));
  });
});

describe("compressors", () => {
  const compressible = ["int32", "float64", "uint8", "int64", "bool"] as const;

  for (const cname of ["lz4", "zstd"]) {
    for (const shuffle of [0, 1, 2]) {
      it(`blosc ${cname} shuffle ${shuffle}`, async () => {
        for (const dataType of compressible) {
          await roundTrip(
            dataType,
            [8, 16],
            [
              bytesLE,
              { name: "blosc", configuration: { cname, clevel: 5, shuffle, typesize: 4, blocksize: 0 } },
            ],
          );
        }
      });
    }
  }

  it("blosc honours the Zarr v3 shuffle names", async () => {
    // Byte 2 of a blosc header holds the flags: 0x1 byte shuffle, 0x4 bit shuffle.
    const flags = async (shuffle: unknown) => {
      const { encoded } = await roundTrip(
        "int32",
        [64],
        [
          bytesLE,
          { name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle, typesize: 4, blocksize: 0 } },
        ],
      );
      return (encoded[2] as number) & 0x5;
    };
    expect(await flags("noshuffle")).toBe(0);
    expect(await flags("shuffle")).toBe(1);
    expect(await flags("bitshuffle")).toBe(4);
    expect(await flags(1)).toBe(1);
    await expectCode(
      loadCodecPipeline({
        dataType: "int32",
        shape: [4],
        codecs: [bytesLE, { name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle: "sideways" } }],
        fillValue: 0,
      }),
      "ERR_INVALID_METADATA",
    );
  });

  for (const name of ["zstd", "lz4", "gzip", "zlib"]) {
    it(`${name} round trips`, async () => {
      const configuration = name === "lz4" ? { acceleration: 1 } : { level: 5 };
      for (const dataType of compressible) {
        await roundTrip(dataType, [8, 16], [bytesLE, { name, configuration }]);
      }
    });
  }

  it("gzip output is a gzip stream node:zlib reads, and node:zlib's gzip decodes", async () => {
    const { encoded, input } = await roundTrip(
      "int32",
      [100],
      [bytesLE, { name: "gzip", configuration: { level: 6 } }],
    );
    const raw = new Uint8Array((input.data as Int32Array).buffer);
    expect(Buffer.compare(gunzipSync(encoded), raw)).toBe(0);
    const pipeline = await loadCodecPipeline({
      dataType: "int32",
      shape: [100],
      codecs: [bytesLE, { name: "gzip", configuration: { level: 6 } }],
      fillValue: 0,
    });
    const decoded = await pipeline.decode(new Uint8Array(gzipSync(raw)));
    expect(Array.from(decoded.data as Int32Array)).toEqual(Array.from(input.data as Int32Array));
  });

  it("zlib output is a zlib stream node:zlib reads, and node:zlib's deflate decodes", async () => {
    const { encoded, input } = await roundTrip(
      "float64",
      [50],
      [bytesLE, { name: "zlib", configuration: { level: 1 } }],
    );
    const raw = new Uint8Array((input.data as Float64Array).buffer);
    expect(Buffer.compare(inflateSync(encoded), raw)).toBe(0);
    const pipeline = await loadCodecPipeline({
      dataType: "float64",
      shape: [50],
      codecs: [bytesLE, { name: "zlib", configuration: { level: 1 } }],
      fillValue: 0,
    });
    const decoded = await pipeline.decode(new Uint8Array(deflateSync(raw)));
    expect(Array.from(decoded.data as Float64Array)).toEqual(Array.from(input.data as Float64Array));
  });

  it("honours the compression level", async () => {
    // The uint8 sample repeats every 256 bytes, so any real compression shrinks it a lot.
    const sizeAt = async (name: string, level: number) =>
      (await roundTrip("uint8", [16384], [bytesLE, { name, configuration: { level } }])).encoded.length;
    for (const name of ["gzip", "zlib"]) {
      // Level 0 stores without compression: larger than the raw 16 KiB.
      expect(await sizeAt(name, 0)).toBeGreaterThan(16384);
      expect(await sizeAt(name, 9)).toBeLessThan(1024);
    }
  });

  it("rejects an out-of-range level when the pipeline is loaded", async () => {
    await expectCode(
      loadCodecPipeline({
        dataType: "uint8",
        shape: [4],
        codecs: [bytesLE, { name: "gzip", configuration: { level: 12 } }],
        fillValue: 0,
      }),
      "ERR_INVALID_METADATA",
    );
  });

  it("reports a corrupt compressed stream as ERR_CODEC", async () => {
    const { pipeline, encoded } = await roundTrip(
      "int32",
      [64],
      [bytesLE, { name: "gzip", configuration: { level: 1 } }],
    );
    const damaged = encoded.slice(0, encoded.length - 9);
    const error = await expectCode(pipeline.decode(damaged), "ERR_CODEC");
    expect(error.message).toContain("gzip");
  });
});

describe("combinations", () => {
  it("transpose, bytes, blosc, crc32c", async () => {
    const codecs = [
      { name: "transpose", configuration: { order: [1, 0] } },
      bytesBE,
      {
        name: "blosc",
        configuration: { cname: "zstd", clevel: 3, shuffle: "shuffle", typesize: 8, blocksize: 0 },
      },
      { name: "crc32c", configuration: {} },
    ];
    const { pipeline, encoded } = await roundTrip("int64", [6, 7], codecs);
    const damaged = encoded.slice();
    damaged[10] = (damaged[10] as number) ^ 1;
    await expectCode(pipeline.decode(damaged), "ERR_CODEC");
  });

  it("bytes, gzip, crc32c and bytes, zstd, zlib", async () => {
    await roundTrip(
      "float64",
      [5, 5],
      [bytesLE, { name: "gzip", configuration: { level: 1 } }, { name: "crc32c", configuration: {} }],
    );
    await roundTrip(
      "int32",
      [5, 5],
      [bytesLE, { name: "zstd", configuration: { level: 1 } }, { name: "zlib", configuration: { level: 1 } }],
    );
  });

  it("a shard-index pipeline (uint64, bytes + crc32c) has a fixed encoded size", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "uint64",
      shape: [2, 2, 2],
      codecs: [bytesLE, { name: "crc32c", configuration: {} }],
      fillValue: null,
    });
    expect(pipeline.computeEncodedSize(64)).toBe(68);
    const data = BigUint64Array.of(0n, 10n, 10n, 20n, 18446744073709551615n, 18446744073709551615n, 30n, 5n);
    const encoded = await pipeline.encode({ data, shape: [2, 2, 2], stride: [4, 2, 1] });
    expect(encoded.length).toBe(68);
    expect(Array.from((await pipeline.decode(encoded)).data as BigUint64Array)).toEqual(Array.from(data));
  });

  it("computeEncodedSize refuses data-dependent codecs", async () => {
    const pipeline = await loadCodecPipeline({
      dataType: "uint8",
      shape: [4],
      codecs: [bytesLE, { name: "gzip", configuration: { level: 1 } }],
      fillValue: 0,
    });
    expect(() => pipeline.computeEncodedSize(4)).toThrow(/gzip/);
  });

  it("random int32 chunks round trip through random codec lists (property)", async () => {
    const b2b = fc.constantFrom<Codec>(
      { name: "gzip", configuration: { level: 1 } },
      { name: "zlib", configuration: { level: 3 } },
      { name: "crc32c", configuration: {} },
      { name: "zstd", configuration: { level: 1 } },
      { name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle: 1, typesize: 4, blocksize: 0 } },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(b2b, { maxLength: 3 }),
        fc.infiniteStream(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
        async (rows, cols, transpose, bigEndian, tail, values) => {
          const codecs: Codec[] = [
            ...(transpose ? [{ name: "transpose", configuration: { order: [1, 0] } }] : []),
            bigEndian ? bytesBE : bytesLE,
            ...tail,
          ];
          const pipeline = await loadCodecPipeline({
            dataType: "int32",
            shape: [rows, cols],
            codecs,
            fillValue: 0,
          });
          const it = values[Symbol.iterator]();
          const data = Int32Array.from({ length: rows * cols }, () => it.next().value as number);
          const chunk = { data, shape: [rows, cols], stride: [cols, 1] };
          const decoded = await pipeline.decode(await pipeline.encode(chunk));
          expect(logical(decoded)).toEqual(Array.from(data));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("loading", () => {
  it("rejects an unknown codec when the pipeline is loaded", async () => {
    const error = await expectCode(
      loadCodecPipeline({
        dataType: "int32",
        shape: [4],
        codecs: [bytesLE, { name: "no-such-codec", configuration: {} }],
        fillValue: 0,
      }),
      "ERR_UNKNOWN_CODEC",
    );
    expect(error.message).toContain("no-such-codec");
    await expectCode(
      loadCodecPipeline({
        dataType: "int32",
        shape: [4],
        codecs: [{ name: "sharding_indexed", configuration: {} }],
        fillValue: 0,
      }),
      "ERR_UNKNOWN_CODEC",
    );
  });

  it("rejects two array-to-bytes codecs", async () => {
    await expectCode(
      loadCodecPipeline({ dataType: "int32", shape: [4], codecs: [bytesLE, bytesBE], fillValue: 0 }),
      "ERR_INVALID_METADATA",
    );
  });

  it("accepts v2-style numcodecs names", async () => {
    for (const codec of [
      { name: "numcodecs.zlib", configuration: { level: 1 } },
      { name: "numcodecs.gzip", configuration: { level: 1 } },
      { name: "numcodecs.blosc", configuration: { cname: "lz4", clevel: 5, shuffle: 1, blocksize: 0 } },
      { name: "numcodecs.zstd", configuration: { level: 1 } },
      { name: "numcodecs.lz4", configuration: { acceleration: 1 } },
    ]) {
      await roundTrip("int32", [4, 4], [bytesLE, codec]);
    }
    const { encoded } = await roundTrip(
      "uint8",
      [64],
      [bytesLE, { name: "numcodecs.zlib", configuration: { level: 1 } }],
    );
    expect(inflateSync(encoded).length).toBe(64);
  });

  it("registerCodecs is idempotent", () => {
    const before = zarr.registry.get("gzip");
    registerCodecs();
    registerCodecs();
    expect(zarr.registry.get("gzip")).toBe(before);
  });
});

describe("plain zarrita with the registered codecs", () => {
  it("writes and reads gzip + crc32c arrays, and the stored chunks are standard", async () => {
    const store = new Map<string, Uint8Array>();
    const location = zarr.root(store).resolve("a");
    const arr = await zarr.create(location, {
      shape: [4, 6],
      chunkShape: [2, 3],
      dtype: "float32",
      codecs: [bytesLE, { name: "gzip", configuration: { level: 5 } }, { name: "crc32c", configuration: {} }],
    });
    const data = Float32Array.from({ length: 24 }, (_, i) => i / 4);
    await zarr.set(arr, null, { data, shape: [4, 6], stride: [6, 1] });
    await zarr.set(arr, [1, zarr.slice(0, 2)], 100);

    const opened = await zarr.open(location, { kind: "array" });
    const got = await zarr.get(opened, null);
    const expected = Float32Array.from(data);
    expected[6] = 100;
    expected[7] = 100;
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(expected));

    const chunk = store.get("/a/c/0/0");
    expect(chunk).toBeDefined();
    const body = (chunk as Uint8Array).subarray(0, (chunk as Uint8Array).length - 4);
    const stored = new DataView((chunk as Uint8Array).buffer, (chunk as Uint8Array).byteOffset).getUint32(
      body.length,
      true,
    );
    expect(stored).toBe(crc32c(body));
    const raw = new Float32Array(new Uint8Array(gunzipSync(body)).buffer);
    expect(Array.from(raw)).toEqual([0, 0.25, 0.5, 100, 100, 2]);
  });

  it("writes bool arrays with a big-endian bytes codec and blosc with a v3 shuffle name", async () => {
    const store = new Map<string, Uint8Array>();
    const location = zarr.root(store).resolve("b");
    const arr = await zarr.create(location, {
      shape: [10],
      chunkShape: [5],
      dtype: "bool",
      codecs: [
        bytesBE,
        {
          name: "blosc",
          configuration: { cname: "zstd", clevel: 5, shuffle: "bitshuffle", typesize: 1, blocksize: 0 },
        },
      ],
    });
    const values = [true, false, true, true, false, false, false, true, true, false];
    await zarr.set(arr, null, { data: new zarr.BoolArray(values), shape: [10], stride: [1] });
    const got = await zarr.get(await zarr.open(location, { kind: "array" }), null);
    expect([...(got.data as zarr.BoolArray)]).toEqual(values);
    const chunk = store.get("/b/c/0") as Uint8Array;
    // Bit shuffle flag set in the blosc header.
    expect((chunk[2] as number) & 0x4).toBe(4);
  });
});
