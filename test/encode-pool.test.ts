import { describe, expect, it } from "vitest";
import * as zarrita from "zarrita";
import { EncodePool } from "../src/codecs/encode-pool.js";
import { create, get, MemoryStore, set, slice } from "../src/index.js";

describe("parallel encoding in worker threads (encodeWorkers)", () => {
  it("writes the same bytes as encoding on the main thread, plain and sharded", async () => {
    const codecsList = [
      [
        { name: "bytes" },
        {
          name: "blosc",
          configuration: { cname: "zstd", clevel: 5, shuffle: "shuffle", typesize: 8, blocksize: 0 },
        },
      ],
      [{ name: "bytes" }, { name: "zstd", configuration: { level: 3, checksum: false } }],
      [
        {
          name: "sharding_indexed",
          configuration: {
            chunk_shape: [8, 8],
            codecs: [{ name: "bytes" }, { name: "zlib", configuration: { level: 1 } }],
          },
        },
      ],
    ];
    const data = Float64Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i / 7));
    for (const codecs of codecsList) {
      const inThread = new MemoryStore();
      const inPool = new MemoryStore();
      const a = await create(inThread, { shape: [64, 48], chunkShape: [16, 16], dtype: "float64", codecs });
      const b = await create(inPool, {
        shape: [64, 48],
        chunkShape: [16, 16],
        dtype: "float64",
        codecs,
        encodeWorkers: 2,
      });
      for (const arr of [a, b]) {
        await set(arr, null, { data, shape: [64, 48] });
        await set(arr, [slice(3, 40), slice(5, 9)], -1.5);
      }
      const keys = await inThread.list("/");
      expect(await inPool.list("/")).toEqual(keys);
      for (const key of keys) expect(await inPool.get(key), key).toEqual(await inThread.get(key));
      expect([...((await get(b)).data as Float64Array)]).toEqual([...((await get(a)).data as Float64Array)]);
      if (codecs[0]!.name !== "sharding_indexed") {
        const plain = (await zarrita.open(inPool as never, { kind: "array" })) as zarrita.Array<"float64">;
        expect([...(await zarrita.get(plain)).data]).toEqual([...((await get(a)).data as Float64Array)]);
      }
    }
  });

  it("reports a codec failure in a worker as a typed error and keeps working", async () => {
    const pool = new EncodePool(1);
    try {
      await expect(
        pool.encode(
          {
            dataType: "int32",
            chunkShape: [4],
            fillValue: 0,
            codecs: [{ name: "bytes" }, { name: "no-such-codec", configuration: {} }],
          },
          { data: new Int32Array(4), shape: [4], stride: [1] },
        ),
      ).rejects.toMatchObject({ code: "ERR_CODEC" });
      const bytes = await pool.encode(
        {
          dataType: "int32",
          chunkShape: [4],
          fillValue: 0,
          codecs: [{ name: "bytes", configuration: { endian: "big" } }],
        },
        { data: Int32Array.from([1, 2, 3, 4]), shape: [4], stride: [1] },
      );
      expect([...bytes!]).toEqual([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
    } finally {
      await pool.close();
    }
  });

  it("rejects a bad worker count before writing anything", async () => {
    const store = new MemoryStore();
    await expect(
      create(store, { shape: [4], chunkShape: [2], dtype: "int32", encodeWorkers: -1 }),
    ).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
    expect(await store.list("/")).toEqual([]);
  });
});
