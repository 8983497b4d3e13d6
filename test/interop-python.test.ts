/**
 * Interop with zarr-python 2.13 (Debian's python3-zarr, run with /usr/bin/python3), the oracle for the
 * v2 format. `.ci/run` installs python3-zarr when it is missing; without it these tests fail loudly.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, FileSystemStore, get, open, set, slice, type V2CodecConfig } from "../src/index.js";

const PYTHON = "/usr/bin/python3";

function python(script: string, ...args: string[]): unknown {
  const run = spawnSync(PYTHON, ["-c", script, ...args], { encoding: "utf8" });
  if (run.error || run.status !== 0) {
    throw new Error(
      `zarr-python failed (is python3-zarr installed? apt-get install -y python3-zarr): ${run.error ?? ""}\n${run.stderr}`,
    );
  }
  return JSON.parse(run.stdout);
}

const READ = `
import json, sys, zarr
a = zarr.open_array(sys.argv[1], mode="r")
print(json.dumps({"shape": list(a.shape), "dtype": a.dtype.str, "order": a.order,
  "compressor": None if a.compressor is None else a.compressor.codec_id,
  "values": [v.item() for v in a[...].ravel(order="C")]}))
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zarr-tx-py-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("zarr-python 2.13 interop (v2)", () => {
  it("has python3-zarr", () => {
    expect(python("import json, zarr; print(json.dumps(zarr.__version__))")).toMatch(/^2\./);
  });

  const compressors: [string, V2CodecConfig | null][] = [
    ["raw", null],
    ["blosc", { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1, blocksize: 0 }],
    ["zlib", { id: "zlib", level: 1 }],
    ["gzip", { id: "gzip", level: 5 }],
  ];

  for (const [name, compressor] of compressors) {
    for (const order of ["C", "F"] as const) {
      it(`zarr-python reads what zarr-tx wrote: ${name}, order ${order}`, async () => {
        const store = new FileSystemStore(dir);
        const path = `w-${name}-${order}`;
        const arr = await create(store, {
          path,
          shape: [7, 9],
          chunkShape: [3, 4],
          dtype: "int32",
          zarrFormat: 2,
          compressor,
          order,
          fillValue: -1,
        });
        const data = Int32Array.from({ length: 63 }, (_, i) => i * 31 - 1000);
        await set(arr, null, { data, shape: [7, 9] });
        await set(arr, [slice(2, 5), slice(1, 8, 3)], 42);
        const expected = [...data];
        for (let r = 2; r < 5; r++) for (let c = 1; c < 8; c += 3) expected[r * 9 + c] = 42;
        const read = python(READ, join(dir, path)) as {
          shape: number[];
          values: number[];
          compressor: string | null;
          order: string;
        };
        expect(read.shape).toEqual([7, 9]);
        expect(read.order).toBe(order);
        expect(read.compressor).toBe(compressor?.id ?? null);
        expect(read.values).toEqual(expected);
      });
    }
  }

  it("zarr-tx partly overwrites an array zarr-python wrote, and zarr-python reads it back right", async () => {
    const path = join(dir, "from-python");
    python(
      `
import json, sys, zarr, numpy as np
from numcodecs import Blosc
a = zarr.open_array(sys.argv[1], mode="w", shape=(10, 6), chunks=(4, 4), dtype=">f8", compressor=Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE), fill_value=0.5)
a[:8, :] = np.arange(48, dtype=">f8").reshape(8, 6) / 4
print(json.dumps(True))
`,
      path,
    );
    const store = new FileSystemStore(dir);
    const arr = await open(store, { path: "from-python" });
    expect(arr.zarrFormat).toBe(2);
    expect(arr.dtype).toBe("float64");
    const before = await get(arr, null);
    const expected = [...(before.data as Float64Array)];
    for (let i = 0; i < 48; i++) expect(expected[i]).toBe(i / 4);
    for (let i = 48; i < 60; i++) expect(expected[i]).toBe(0.5);
    await set(arr, [slice(3, 9), slice(2, 5)], -7.25);
    for (let r = 3; r < 9; r++) for (let c = 2; c < 5; c++) expected[r * 6 + c] = -7.25;
    const read = python(READ, path) as { dtype: string; values: number[]; compressor: string };
    expect(read.dtype).toBe(">f8");
    expect(read.compressor).toBe("blosc");
    expect(read.values).toEqual(expected);
  });
});
