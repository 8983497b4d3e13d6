/**
 * The `zarr-tx` CLI, run as a subprocess from source (`node --import tsx src/cli/main.ts …`), so no
 * build is needed; plus the CLI's pure helpers (selection syntax, .npy, compressor shorthands) in-process.
 * The .npy files are checked against NumPy (/usr/bin/python3 with python3-numpy, which python3-zarr
 * brings; `.ci/run` installs it).
 */
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { allocate } from "../src/array/dtype.js";
import { parseCompressor } from "../src/cli/codecs.js";
import { decodeNpy, encodeNpy } from "../src/cli/npy.js";
import { formatSelection, parseSelection } from "../src/cli/selection.js";
import { DATA_TYPES, FileSystemStore, isZarrTxError, slice } from "../src/index.js";
import { cliInProcess, type Run } from "./cli-harness.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = "/usr/bin/python3";

/** Runs the CLI from source; resolves with its exit code and output (never rejects on a non-zero exit). */
function cli(
  args: readonly string[],
  options: { input?: string; timeoutMs?: number; env?: Record<string, string>; killed?: boolean } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      {
        cwd: ROOT,
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 16 * 1024 * 1024,
        ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
      },
      (error, stdout, stderr) => {
        const code = child.exitCode;
        // A process killed on purpose (crash injection) reports its signal as a negative code.
        if (code === null && options.killed && child.signalCode !== null) {
          resolve({ code: -1, stdout, stderr: `${child.signalCode}\n${stderr}` });
          return;
        }
        if (code === null) {
          reject(new Error(`zarr-tx ${args.join(" ")} did not exit: ${error?.message}\n${stderr}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** {@link cliInProcess} with --json, stdout parsed. */
async function cliInProcessJson(args: readonly string[]): Promise<Run & { json: Record<string, unknown> }> {
  const run = await cliInProcess([...args, "--json"]);
  try {
    return { ...run, json: JSON.parse(run.stdout) as Record<string, unknown> };
  } catch {
    throw new Error(`not JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
}

/** Runs the CLI with --json and parses stdout. */
async function cliJson(
  args: readonly string[],
  options?: { input?: string },
): Promise<Run & { json: Record<string, unknown> }> {
  const run = await cli([...args, "--json"], options);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(run.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`not JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
  return { ...run, json };
}

function python(script: string, ...args: string[]): string {
  const run = spawnSync(PYTHON, ["-c", script, ...args], { encoding: "utf8" });
  if (run.error || run.status !== 0) {
    throw new Error(
      `python3 with numpy failed (apt-get install -y python3-numpy): ${run.error ?? ""}\n${run.stderr}`,
    );
  }
  return run.stdout;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zarr-tx-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("command-line helpers (in-process)", () => {
  it("parses NumPy-like selections", () => {
    expect(parseSelection("0:10,5", 2)).toEqual([slice(0, 10), 5]);
    expect(parseSelection("", 3)).toBeNull();
    expect(parseSelection(":, ::2", 2)).toEqual([null, slice(null, null, 2)]);
    expect(parseSelection("-1", 2)).toEqual([-1]);
    expect(parseSelection("...,3", 3)).toEqual([null, null, 3]);
    expect(parseSelection("1,...", 1)).toEqual([1]);
    expect(parseSelection("2::3, :-1", 2)).toEqual([slice(2, null, 3), slice(null, -1)]);
    expect(formatSelection(parseSelection("0:10,5,::2", 3))).toBe("0:10,5,::2");
    for (const bad of ["a", "1:2:3:4", "1.5", "...,...", "1,2,3"]) {
      let error: unknown;
      try {
        parseSelection(bad, 2);
      } catch (e) {
        error = e;
      }
      expect(isZarrTxError(error, "ERR_INVALID_SELECTION"), bad).toBe(true);
    }
  });

  it("parses compressor shorthands", () => {
    expect(parseCompressor("none")).toBeUndefined();
    expect(parseCompressor("zstd")).toEqual({ id: "zstd", level: 3 });
    expect(parseCompressor("gzip:9")).toEqual({ id: "gzip", level: 9 });
    expect(parseCompressor("blosc:zstd:7:bitshuffle")).toEqual({
      id: "blosc",
      cname: "zstd",
      clevel: 7,
      shuffle: "bitshuffle",
    });
    expect(parseCompressor("blosc::3:0")).toEqual({
      id: "blosc",
      cname: "lz4",
      clevel: 3,
      shuffle: "noshuffle",
    });
    for (const bad of ["zip", "gzip:10", "zstd:x", "blosc:foo", "lz4:1:2"])
      expect(() => parseCompressor(bad), bad).toThrow();
  });

  it("round-trips .npy for every dtype, C and Fortran order", () => {
    for (const dtype of DATA_TYPES) {
      const shape = [2, 3, 4];
      const data = allocate(dtype, 24);
      for (let i = 0; i < 24; i++) {
        (data as unknown as { [i: number]: number | bigint })[i] =
          dtype === "bool" ? i % 2 : dtype.endsWith("64") && dtype.includes("int") ? BigInt(i * 3) : i * 3;
      }
      for (const fortranOrder of [false, true]) {
        const bytes = encodeNpy(dtype, shape, data, { fortranOrder });
        const header = bytes[8]! + bytes[9]! * 256;
        expect((10 + header) % 64, "data aligned to 64 bytes").toBe(0);
        const back = decodeNpy(bytes);
        expect(back.dtype).toBe(dtype);
        expect(back.shape).toEqual(shape);
        expect(back.fortranOrder).toBe(fortranOrder);
        // Element (i, j, k) through the decoded strides equals the C-order original.
        for (let n = 0; n < 24; n++) {
          const [i, j, k] = [Math.floor(n / 12), Math.floor(n / 4) % 3, n % 4];
          const at = i * back.stride[0]! + j * back.stride[1]! + k * back.stride[2]!;
          expect((back.data as unknown as ArrayLike<unknown>)[at]).toBe(
            (data as unknown as ArrayLike<unknown>)[n],
          );
        }
      }
    }
    expect(() => decodeNpy(new Uint8Array([1, 2, 3]))).toThrow(/not a readable \.npy/);
  });
});

// Subprocess tests use separate stores, so they run concurrently (the machines have 2 cores).
describe.concurrent("zarr-tx CLI (subprocess)", () => {
  it("prints top-level help and help for every command", async () => {
    const [top, one, none] = await Promise.all([cli(["--help"]), cli(["stress", "--help"]), cli([])]);
    expect(top.code).toBe(0);
    const commands = ["create", "info", "get", "set", "recover", "verify", "stress", "bench"];
    for (const name of commands) expect(top.stdout).toMatch(new RegExp(`\\n  ${name} `));
    expect(top.stdout).toMatch(/Exit codes:[\s\S]*2 +bad arguments/);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain("Usage: zarr-tx stress");
    expect(none.code, "no command is a usage error").toBe(2);
    expect(none.stderr).toContain("Usage: zarr-tx <command>");
    for (const name of commands) {
      for (const args of [
        [name, "--help"],
        ["help", name],
      ]) {
        const run = await cliInProcess(args);
        expect(run.code, args.join(" ")).toBe(0);
        expect(run.stdout).toContain(`Usage: zarr-tx ${name}`);
        expect(run.stdout).toContain("--json");
        expect(run.stdout).toContain("Exit codes: 0 ok");
      }
    }
  });

  it("rejects bad arguments with a clear message and exit code 2", async () => {
    const store = join(dir, "bad.zarr");
    expect(
      (await cli(["create", store, "-p", "a", "--shape", "4,4", "--chunks", "2,2", "--dtype", "int32"])).code,
    ).toBe(0);
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /unknown command "frobnicate"/],
      [["info"], /missing the STORE argument/],
      [["info", store, "--bogus"], /Unknown option '--bogus'/],
      [["create", store, "-p", "b", "--shape", "4", "--chunks", "2"], /--dtype is required/],
      [
        ["create", store, "-p", "b", "--shape", "4,x", "--chunks", "2", "--dtype", "int8"],
        /--shape must be a whole number/,
      ],
      [
        ["create", store, "-p", "b", "--shape", "4", "--chunks", "2", "--dtype", "int9"],
        /--dtype must be one of/,
      ],
      [
        [
          "create",
          store,
          "-p",
          "b",
          "--shape",
          "4",
          "--chunks",
          "2",
          "--dtype",
          "int8",
          "--compressor",
          "zip",
        ],
        /unknown compressor/,
      ],
      [
        ["create", store, "-p", "b", "--shape", "4", "--chunks", "3", "--shard", "4", "--dtype", "int8"],
        /not a whole multiple/,
      ],
      [
        ["create", store, "-p", "b", "--shape", "4", "--chunks", "2", "--dtype", "int8", "--order", "F"],
        /--order is a v2 option/,
      ],
      [
        [
          "create",
          store,
          "-p",
          "b",
          "--zarr-format",
          "4",
          "--shape",
          "4",
          "--chunks",
          "2",
          "--dtype",
          "int8",
        ],
        /--zarr-format must be one of 2, 3/,
      ],
      [["get", store, "-p", "a", "--sel", "0:2,x"], /not an integer/],
      [["get", store, "-p", "a", "--sel", "9"], /out of bounds/],
      [["get", store, "-p", "a", "--sel", "::-1"], /step/],
      [["set", store, "-p", "a", "--value", "[1,2]"], /shape/],
      [["set", store, "-p", "a", "--sel", "0,0", "--value", "3000000000"], /outside/],
      [["set", store, "-p", "a", "--sel", "0,0"], /exactly one of --value/],
      [["set", store, "-p", "a", "--value", "{oops"], /not valid JSON/],
      [["get", store, "--sync", "carrier-pigeon"], /--sync must be one of inprocess, file, redis/],
      [["get", store, "--sync", "redis"], /--sync redis needs at least one --redis/],
      [["get", store, "--redis", "http://x"], /--redis takes redis:\/\//],
      [["get", store, "--sync", "file", "--redis", "redis://127.0.0.1:1"], /--redis needs --sync redis/],
      [["info", "gs://bucket/x"], /unsupported store URL scheme/],
      [["info", store, "--endpoint", "http://127.0.0.1:9"], /--endpoint applies to s3:\/\/ stores only/],
      [["stress", "--procs", "0"], /--procs must be a whole number from 1 to 256/],
      [["recover", store, "--min-age", "-3"], /--min-age must be a number/],
      [
        ["create", store, "-p", "b", "--shape", "4", "--chunks", "2", "--dtype", "int8", "--fill", "-300"],
        /does not fit int8/,
      ],
    ];
    // A few through the executable (exit code and stderr plumbing), the rest in-process (same code).
    const subprocess = new Set([0, 2, 6, 10]);
    const runs = await Promise.all(
      cases.map(([args], i) => (subprocess.has(i) ? cli(args) : cliInProcess(args))),
    );
    runs.forEach((run, i) => {
      const [args, pattern] = cases[i]!;
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr, args.join(" ")).toMatch(pattern);
      expect(run.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    });
    // With --json the error is one JSON object on stdout.
    const json = await cliJson(["get", store, "-p", "a", "--sel", "9"]);
    expect(json.code).toBe(2);
    expect(json.json).toMatchObject({
      ok: false,
      command: "get",
      exitCode: 2,
      error: { code: "ERR_OUT_OF_BOUNDS" },
    });
  });

  it("fails clearly where a store cannot be reached or the array is missing (exit code 1)", async () => {
    // Nothing listens on port 9 here: the S3 store's requests are refused (after the SDK's retries).
    const s3 = await cli(["info", "s3://bucket/prefix", "--endpoint", "http://127.0.0.1:9"], {
      env: { AWS_ACCESS_KEY_ID: "AKIAEXAMPLEEXAMPLE12", AWS_SECRET_ACCESS_KEY: "not-a-real-secret" },
    });
    expect(s3.code).toBe(1);
    expect(s3.stderr).toMatch(/ERR_STORE_IO/);
    expect(s3.stderr).toMatch(/could not be reached/);
    expect(s3.stderr).not.toMatch(/AKIAEXAMPLE|not-a-real-secret/);
    const missing = await cli(["get", join(dir, "nowhere.zarr")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ERR_STORE_IO/);
    expect(existsSync(join(dir, "nowhere.zarr")), "a read-only command creates no store").toBe(false);
  });

  it("create, set and get round-trip JSON values (v3, compressed); info reports chunks, bytes and the lock file", async () => {
    const store = join(dir, "v3.zarr");
    const created = await cliJson([
      "create",
      store,
      "-p",
      "temps",
      "--shape",
      "6,8",
      "--chunks",
      "2,3",
      "--dtype",
      "int32",
      "--compressor",
      "zstd:3",
      "--crc32c",
      "--attrs",
      '{"units":"K"}',
    ]);
    expect(created.code).toBe(0);
    expect(created.json).toMatchObject({
      ok: true,
      path: "/temps",
      zarrFormat: 3,
      shape: [6, 8],
      chunks: [2, 3],
      dtype: "int32",
    });
    expect((created.json.codecs as { name: string }[]).map((c) => c.name)).toEqual([
      "bytes",
      "zstd",
      "crc32c",
    ]);

    const broadcast = await cliJson(["set", store, "-p", "temps", "--sel", "1:4,2:7", "--value", "7"]);
    expect(broadcast.code).toBe(0);
    expect(broadcast.json).toMatchObject({ elements: 15, shape: [3, 5] });
    expect(broadcast.json.metrics).toMatchObject({ outcome: "committed", chunksWritten: 6 });
    const row = await cli(["set", store, "-p", "temps", "--sel", "0,0:3", "--value", "-"], {
      input: "[1, 2, 3]",
    });
    expect(row.code).toBe(0);
    expect(row.stdout).toMatch(/wrote 3 elements to \/temps\[0,0:3\]: 1 chunk\(s\) written/);

    const got = await cliJson(["get", store, "-p", "temps", "--sel", "0:3,..."]);
    expect(got.json.data).toEqual([
      [1, 2, 3, 0, 0, 0, 0, 0],
      [0, 0, 7, 7, 7, 7, 7, 0],
      [0, 0, 7, 7, 7, 7, 7, 0],
    ]);
    const human = await cli(["get", store, "-p", "temps", "--sel", "1,1:4"]);
    expect(human.stdout.trim()).toBe("[0, 7, 7]");
    const scalar = await cli(["get", store, "-p", "temps", "--sel", "0,1"]);
    expect(scalar.stdout.trim()).toBe("2");

    const info = await cliJson(["info", store]);
    expect(info.code).toBe(0);
    const [array] = info.json.arrays as Record<string, unknown>[];
    expect(array).toMatchObject({
      path: "/temps",
      grid: [3, 3],
      gridObjects: 9,
      storedObjects: 6,
      attributes: { units: "K" },
    });
    expect(array!.storedBytes).toBeGreaterThan(0);
    expect((array!.lockFile as { path: string }).path).toBe(
      join(await realDir(store), "temps", ".zarr-tx", "locks"),
    );
    expect(info.json.journal).toEqual({ pending: 0, entries: [], keys: [], error: null });

    // A write through the file synchronizer creates the lock file info points at.
    expect(
      (await cli(["set", store, "-p", "temps", "--sel", "5", "--value", "9", "--sync", "file"])).code,
    ).toBe(0);
    const after = await cliJson(["info", store, "--path", "temps"]);
    expect(
      ((after.json.arrays as Record<string, unknown>[])[0]!.lockFile as { exists: boolean }).exists,
    ).toBe(true);
    const text = await cli(["info", store]);
    expect(text.stdout).toMatch(/lock file +\/.*temps\/\.zarr-tx\/locks\n/);
    expect(text.stdout).toMatch(/journal: no pending entries/);
  });

  it("creates v2 arrays (blosc, F order) and sharded v3 arrays, and writes 64-bit and bool values exactly", async () => {
    const store = join(dir, "mixed.zarr");
    const v2 = await cliJson([
      "create",
      store,
      "-p",
      "legacy",
      "--zarr-format",
      "2",
      "--shape",
      "5,4",
      "--chunks",
      "2,3",
      "--dtype",
      "int64",
      "--compressor",
      "blosc:lz4:5:shuffle",
      "--order",
      "F",
      "--fill",
      "-1",
    ]);
    expect(v2.code).toBe(0);
    const zarray = JSON.parse(await readFile(join(store, "legacy", ".zarray"), "utf8"));
    expect(zarray).toMatchObject({
      zarr_format: 2,
      order: "F",
      dtype: "<i8",
      fill_value: -1,
      compressor: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1 },
    });
    const big = "9007199254740993"; // 2^53 + 1: exact only as digits
    expect(
      (await cli(["set", store, "-p", "legacy", "--sel", "1:3,1", "--value", `["${big}", -5]`])).code,
    ).toBe(0);
    const got = await cli(["get", store, "-p", "legacy", "--sel", ":,1", "--json"]);
    expect(got.stdout).toContain(`"data":[-1,${big},-5,-1,-1]`);

    const sharded = await cliJson([
      "create",
      store,
      "-p",
      "flags",
      "--shape",
      "8,8",
      "--chunks",
      "2,2",
      "--shard",
      "4,4",
      "--dtype",
      "bool",
      "--compressor",
      "gzip:1",
    ]);
    expect(sharded.json).toMatchObject({ chunks: [4, 4], innerChunks: [2, 2] });
    expect((await cli(["set", store, "-p", "flags", "--sel", "3:5,3:5", "--value", "true"])).code).toBe(0);
    const flags = await cliJson(["get", store, "-p", "flags", "--sel", "2:6,4"]);
    expect(flags.json.data).toEqual([false, true, true, false]);
    const info = await cliJson(["info", store, "--path", "flags"]);
    expect((info.json.arrays as Record<string, unknown>[])[0]).toMatchObject({
      innerChunks: [2, 2],
      grid: [2, 2],
      storedObjects: 4,
    });
    expect((await cli(["verify", store])).code).toBe(0);
  });

  it("writes .npy files NumPy reads (C and F order), and reads .npy files NumPy wrote (big-endian, Fortran)", async () => {
    const store = join(dir, "npy.zarr");
    await cli([
      "create",
      store,
      "-p",
      "a",
      "--shape",
      "4,5",
      "--chunks",
      "3,2",
      "--dtype",
      "float32",
      "--fill",
      "nan",
    ]);
    await cli([
      "set",
      store,
      "-p",
      "a",
      "--sel",
      "0:3,0:4",
      "--value",
      "[[1.5,2,3,4],[5,6,7,8],[9,10,11,12]]",
    ]);
    const c = join(dir, "c.npy");
    const f = join(dir, "f.npy");
    expect((await cli(["get", store, "-p", "a", "--out", c])).code).toBe(0);
    expect((await cli(["get", store, "-p", "a", "--out", f, "--order", "F"])).code).toBe(0);
    const seen = JSON.parse(
      python(
        `
import json, sys, numpy as np
c = np.load(sys.argv[1]); f = np.load(sys.argv[2])
print(json.dumps({"dtype": c.dtype.str, "shape": list(c.shape), "c": bool(c.flags["C_CONTIGUOUS"]),
  "f": bool(f.flags["F_CONTIGUOUS"]) and not bool(f.flags["C_CONTIGUOUS"]), "same": bool(np.array_equal(c, f, equal_nan=True)),
  "values": [None if np.isnan(v) else float(v) for v in c.ravel()]}))
`,
        c,
        f,
      ),
    );
    expect(seen).toMatchObject({ dtype: "<f4", shape: [4, 5], c: true, f: true, same: true });
    expect(seen.values.slice(0, 6)).toEqual([1.5, 2, 3, 4, null, 5]);

    const be = join(dir, "be.npy");
    const fo = join(dir, "fo.npy");
    python(
      `
import sys, numpy as np
np.save(sys.argv[1], (np.arange(6, dtype=">f4") * 2).reshape(2, 3))
np.save(sys.argv[2], np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3) + 100))
`,
      be,
      fo,
    );
    expect((await cli(["set", store, "-p", "a", "--sel", "0:2,0:3", "--in", be])).code).toBe(0);
    expect((await cli(["set", store, "-p", "a", "--sel", "2:4,2:5", "--in", fo])).code).toBe(0);
    const got = await cliJson(["get", store, "-p", "a"]);
    expect(got.json.data).toEqual([
      [0, 2, 4, 4, "NaN"],
      [6, 8, 10, 8, "NaN"],
      [9, 10, 100, 101, 102],
      ["NaN", "NaN", 103, 104, 105],
    ]);
    // Round trip through zarr-tx's own writer and reader too.
    const back = join(dir, "back.npy");
    await cli(["get", store, "-p", "a", "--out", back, "--order", "F"]);
    expect((await cli(["set", store, "-p", "a", "--in", back])).code).toBe(0);
    expect((await cliJson(["get", store, "-p", "a"])).json.data).toEqual(got.json.data);
    // A dtype mismatch is refused before any lock.
    const i8 = join(dir, "i8.npy");
    python("import sys, numpy as np; np.save(sys.argv[1], np.zeros((4, 5), dtype='i8'))", i8);
    const wrong = await cli(["set", store, "-p", "a", "--in", i8]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/holds int64 but the array is float32.*ERR_VALUE_DTYPE/);
  });

  it("verify finds a chunk truncated from outside, by key, and exits 1", async () => {
    const store = join(dir, "verify.zarr");
    await cli(["create", store, "-p", "raw", "--shape", "6,6", "--chunks", "3,3", "--dtype", "int16"]);
    await cli([
      "create",
      store,
      "-p",
      "zipped",
      "--zarr-format",
      "2",
      "--shape",
      "6",
      "--chunks",
      "2",
      "--dtype",
      "float64",
      "--compressor",
      "zlib:1",
    ]);
    await cli(["set", store, "-p", "raw", "--value", "5"]);
    await cli(["set", store, "-p", "zipped", "--value", "2.5"]);
    const clean = await cliJson(["verify", store]);
    expect(clean.code).toBe(0);
    expect(clean.json).toMatchObject({ ok: true, objects: 7, damage: [], journal: { pending: 0 } });

    await truncate(join(store, "raw", "c", "1", "0"), 7); // 18 bytes expected
    await truncate(join(store, "zipped", "1"), 3);
    const damaged = await cliJson(["verify", store]);
    expect(damaged.code).toBe(1);
    expect(damaged.json.ok).toBe(false);
    expect(
      (damaged.json.damage as { key: string; kind: string; code: string }[]).map((d) => [
        d.key,
        d.kind,
        d.code,
      ]),
    ).toEqual([
      ["/raw/c/1/0", "chunk", "ERR_CORRUPT_CHUNK"],
      ["/zipped/1", "chunk", "ERR_CORRUPT_CHUNK"],
    ]);
    const human = await cli(["verify", store, "--path", "raw"]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      /1 DAMAGED\n {2}damaged chunk \/raw\/c\/1\/0 \(ERR_CORRUPT_CHUNK\): chunk \/raw\/c\/1\/0 is damaged: its 7 bytes do not decode/,
    );
    expect(human.stderr, "no progress line when stdout is not a terminal").toBe("");

    // Broken metadata is damage too.
    await writeFile(join(store, "zipped", ".zarray"), "{not json");
    const meta = await cliJson(["verify", store, "--path", "zipped"]);
    expect(meta.code).toBe(1);
    expect(meta.json.damage).toEqual([expect.objectContaining({ key: "/zipped/.zarray", kind: "metadata" })]);
  });

  // util-linux `script` gives the command a terminal; without it there is nothing to test here.
  it.skipIf(!existsSync("/usr/bin/script"))(
    "shows a progress line on stderr when stdout is a terminal",
    async () => {
      const store = join(dir, "tty.zarr");
      await cli(["create", store, "-p", "a", "--shape", "8", "--chunks", "2", "--dtype", "int8"]);
      await cli(["set", store, "-p", "a", "--value", "1"]);
      const command = `${process.execPath} --import tsx src/cli/main.ts verify ${store}`;
      const tty = await new Promise<string>((resolve, reject) => {
        execFile(
          "/usr/bin/script",
          ["-qec", command, "/dev/null"],
          { cwd: ROOT, timeout: 30_000 },
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        );
      });
      const erase = "\r\u001b[K"; // carriage return + erase line: the progress line is redrawn in place
      expect(tty).toContain(`${erase}verify: 1/4 objects`);
      expect(tty).toMatch(/verify file:.*4 objects decoded, no damage/);
      expect(tty.indexOf(`${erase}verify file:`), "erased before the result").toBeGreaterThan(0);
    },
  );

  it("recover removes temp files of dead writers only, and finds no journal", async () => {
    const store = join(dir, "recover.zarr");
    await cli(["create", store, "-p", "a", "--shape", "4", "--chunks", "2", "--dtype", "uint8"]);
    await mkdir(join(store, "a", "c"), { recursive: true });
    // pid 4999999 is above Linux's pid_max (2^22): never a live process.
    const dead = join(store, "a", "c", ".zarr-tx-tmp-4999999-0123456789abcdef");
    const alive = join(store, "a", ".zarr-tx-tmp-" + process.pid + "-fedcba9876543210");
    await writeFile(dead, "partial");
    await writeFile(alive, "partial");
    const info = await cliJson(["info", store]);
    expect((info.json.tempFiles as unknown[]).length).toBe(2);

    const young = await cliJson(["recover", store]);
    expect(young.code).toBe(0);
    expect(young.json).toMatchObject({
      sync: "none",
      journal: { rolledForward: [], discarded: [], superseded: [], inProgress: [] },
      tempFiles: { removed: [] },
    });
    const dry = await cliJson(["recover", store, "--min-age", "0", "--dry-run"]);
    expect((dry.json.tempFiles as { removed: { file: string }[] }).removed.map((t) => t.file)).toEqual([
      dead,
    ]);
    expect(existsSync(dead)).toBe(true);

    const run = await cli(["recover", store, "--min-age", "0"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/journal: no pending entries/);
    expect(run.stdout).toMatch(/removed 1, kept 1/);
    expect(run.stdout).toMatch(new RegExp(`kept .*: its writer \\(pid ${process.pid}\\) is alive`));
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(alive)).toBe(true);
    expect((await stat(alive)).size).toBe(7);
  });

  it("recover rolls forward a transaction killed mid-apply, and discards one that never committed", async () => {
    const store = join(dir, "crashed.zarr");
    await cliInProcess(["create", store, "-p", "a", "--shape", "4,4", "--chunks", "2,2", "--dtype", "int32"]);
    expect((await cliInProcess(["set", store, "-p", "a", "--value", "1"])).code).toBe(0);
    // Plain zarrita sees the chunk files as they are: no locks, no recovery.
    const plain = async (): Promise<number[]> => {
      const array = await zarr.open.v3(zarr.root(new FileSystemStore(store)).resolve("a"), { kind: "array" });
      return [...((await zarr.get(array)).data as Int32Array)];
    };
    // A 4-chunk write killed after its first chunk was renamed into place: a torn array on disk. Only the
    // killed writers run as processes (the crash injection is read from their environment at start).
    const killed = await cli(["set", store, "-p", "a", "--value", "7"], {
      env: { ZARR_TX_CRASH_AT: "apply-partial" },
      killed: true,
    });
    expect(killed.code, killed.stderr).toBe(-1);
    expect((await plain()).filter((v) => v === 7)).toHaveLength(4); // one 2×2 chunk of four

    const info = await cliInProcessJson(["info", store]);
    const journal = info.json.journal as { pending: number; entries: Record<string, unknown>[] };
    expect(journal.pending).toBe(1);
    expect(journal.entries[0]).toMatchObject({ state: "commit", writerPid: expect.any(Number) });
    expect(journal.entries[0]!.targets).toEqual(["/a/c/0/0", "/a/c/0/1", "/a/c/1/0", "/a/c/1/1"]);
    const txid = journal.entries[0]!.txid as string;
    expect((await cliInProcess(["info", store])).stdout).toMatch(
      /journal: 1 pending entry .*\n .*committed, 4 object/,
    );
    const noted = await cliInProcessJson(["verify", store]);
    expect(noted.code, "a pending entry is not damage").toBe(0);
    expect(noted.json.journal).toEqual({ pending: 1, txids: [txid] });

    const dry = await cliInProcessJson(["recover", store, "--dry-run"]);
    expect(dry.json.journal).toMatchObject({ rolledForward: [txid], inProgress: [] });
    expect((await plain()).filter((v) => v === 7)).toHaveLength(4);
    // No --sync: allowed because the writer's pid is dead.
    const run = await cliInProcessJson(["recover", store]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ sync: "none", journal: { rolledForward: [txid], discarded: [] } });
    expect(await plain()).toEqual(new Array(16).fill(7));

    // Killed right after its commit record: nothing applied yet; recover through the writers' file locks.
    await cli(["set", store, "-p", "a", "--sel", "1:3,1:3", "--value", "9"], {
      env: { ZARR_TX_CRASH_AT: "journal-written" },
      killed: true,
    });
    expect((await plain()).filter((v) => v === 9)).toHaveLength(0);
    const locked = await cliInProcessJson(["recover", store, "--sync", "file"]);
    expect(locked.json).toMatchObject({ sync: "file", journal: { discarded: [], inProgress: [] } });
    expect((locked.json.journal as { rolledForward: string[] }).rolledForward).toHaveLength(1);
    expect((await plain()).filter((v) => v === 9)).toHaveLength(4);

    // An entry whose writer died before its commit record (pid 4999999 is above pid_max: never alive).
    const hostTag = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
    const orphan = `${Date.now().toString(36)}-${hostTag}-4999999-00aa11bb22cc`;
    await mkdir(join(store, ".zarr-tx", "journal"), { recursive: true });
    await writeFile(join(store, ".zarr-tx", "journal", `${orphan}.0`), "half a chunk");
    const discarded = await cliInProcessJson(["recover", store, "--sync", "file"]);
    expect(discarded.json.journal).toMatchObject({ rolledForward: [], discarded: [orphan] });
    const after = await cliInProcessJson(["info", store]);
    expect(after.json.journal).toMatchObject({ pending: 0, entries: [], keys: [] });
    const clean = await cliInProcessJson(["verify", store]);
    expect(clean.json).toMatchObject({ ok: true, damage: [], journal: { pending: 0 }, tempFiles: 0 });
  }, 120_000); // two CLI processes (the killed writers), each starting through tsx

  it("stress with file locks: 2 processes, 0 torn reads and 0 lost increments", async () => {
    const run = await cliJson([
      "stress",
      join(dir, "stress.zarr"),
      "--sync",
      "file",
      "--procs",
      "2",
      "--tasks",
      "3",
      "--seconds",
      "2",
      "--seed",
      "7",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toMatchObject({
      ok: true,
      verdict: "ok",
      sync: "file",
      isolatedAcrossProcesses: true,
      procs: 2,
      errors: 0,
      diagonal: { tornReads: 0, tornAtEnd: 0 },
      counter: { lost: 0, extra: 0 },
    });
    const d = run.json.diagonal as { writes: number; reads: number };
    const c = run.json.counter as { increments: number; expectedSum: number };
    expect(d.writes).toBeGreaterThan(0);
    expect(d.reads).toBeGreaterThan(0);
    expect(c.increments).toBeGreaterThan(0);
    expect((run.json.throughput as { transactionsPerSecond: number }).transactionsPerSecond).toBeGreaterThan(
      0,
    );
    // The workload arrays are removed afterwards.
    expect((await cliJson(["info", join(dir, "stress.zarr")])).json.arrays).toEqual([]);
  });

  it("stress with in-process locks across processes runs, warns, and reports what it sees", async () => {
    const run = await cliJson([
      "stress",
      "--procs",
      "2",
      "--tasks",
      "2",
      "--seconds",
      "1",
      "--workload",
      "counter",
    ]);
    expect(run.stderr).toMatch(/--sync inprocess does not isolate processes/);
    expect(run.json).toMatchObject({ sync: "inprocess", isolatedAcrossProcesses: false, procs: 2 });
    // Lost increments are likely but not certain in one second; the exit code follows what was seen.
    const lost = (run.json.counter as { lost: number }).lost;
    expect(run.code).toBe(lost > 0 ? 1 : 0);
  });

  it("bench prints how it runs the benchmarks", async () => {
    const run = await cliJson(["bench", "--print"]);
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ runnable: true });
    expect(run.json.command).toMatch(/npm run bench$/);
  });
});

async function realDir(path: string): Promise<string> {
  const { realpath } = await import("node:fs/promises");
  return realpath(path);
}
