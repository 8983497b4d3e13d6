/**
 * Uncontended bulk write (issue 8, goal 3): one write of a whole 4096×4096 float32 array (64 MiB) with
 * 256×256 chunks (256 chunks of 256 KiB, `bytes` codec), on one FileSystemStore with fsync (the default),
 * side by side in one run:
 * - `zarrita`: raw zarrita `set` on the same store (the baseline; same atomic, fsynced replace per chunk,
 *   no locks, no metadata re-read);
 * - `zarr-tx in-process`: zarr-tx `set` with the InProcessSynchronizer (goal ≥ 0.95× zarrita);
 * - `zarr-tx file`: zarr-tx `set` with the FileSynchronizer (goal ≥ 0.9× zarrita);
 * - `disk: one file write+fsync`: the same 64 MiB written to one file with one fsync (the disk's
 *   sequential write bandwidth, the physical ceiling);
 * - `disk: 256 files write+fsync+rename`: the same bytes as 256 temp files, each fsynced and renamed,
 *   then one directory fsync (what an atomic, durable replace per chunk costs at least, without any
 *   Zarr code).
 * Every repeat overwrites what the last one wrote (chunks exist). Also prints MB/s of every variant
 * against the sequential bandwidth, and a `dd conv=fsync` reading when dd is there.
 *
 *   npx tsx bench/bulk.ts [--quick] [--repeats 9] [--size 4096] [--chunk 256] [--no-fsync]
 */
import { spawnSync } from "node:child_process";
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zarrita from "zarrita";
import {
  create,
  FileSynchronizer,
  FileSystemStore,
  InProcessSynchronizer,
  set,
  type ZarrTxArray,
} from "../src/index.js";
import { alternate, type BenchLine, compare, emit, note, parseArgs, round, type Side } from "./lib.js";

const args = parseArgs();
const size = args.number("size", 4096);
const chunk = args.number("chunk", 256);
const repeats = args.number("repeats", args.quick ? 3 : 9);
const fsync = !process.argv.includes("--no-fsync");

const workload = `bulk write ${size}x${size} float32, ${chunk}x${chunk} chunks, filesystem store${fsync ? " (fsync)" : " (no fsync)"}`;

/** Writes `bytes` to one file with one fsync: the sequential bandwidth of the disk. */
function writeOneFile(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, "w");
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 24));
    if (fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `count` temp files of `bytes.length / count` bytes, each fsynced and renamed, then one directory fsync. */
function writeManyFiles(dir: string, bytes: Uint8Array, count: number): void {
  const per = bytes.length / count;
  for (let i = 0; i < count; i++) {
    const temp = join(dir, `.tmp-${i}`);
    const fd = openSync(temp, "w");
    try {
      writeSync(fd, bytes, i * per, per);
      if (fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, join(dir, String(i)));
  }
  if (fsync) {
    const fd = openSync(dir, "r");
    fsyncSync(fd);
    closeSync(fd);
  }
}

function ddBandwidth(dir: string, mib: number): number | undefined {
  const file = join(dir, "dd.bin");
  const run = spawnSync(
    "dd",
    ["if=/dev/zero", `of=${file}`, "bs=1M", `count=${mib}`, ...(fsync ? ["conv=fsync"] : [])],
    { encoding: "utf8" },
  );
  try {
    unlinkSync(file);
  } catch {
    // dd may not have created it
  }
  if (run.status !== 0) return undefined;
  // "67108864 bytes (67 MB, 64 MiB) copied, 0.21 s, 320 MB/s"
  const m = /copied, ([\d.]+) s/.exec(run.stderr);
  return m ? (mib * 1024 * 1024) / 1e6 / Number(m[1]) : undefined;
}

async function main(): Promise<void> {
  if (!workload.includes(args.filter) && !"bulk".includes(args.filter)) return;
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-bulk-"));
  const fileSync = new FileSynchronizer();
  const inProcess = new InProcessSynchronizer();
  try {
    const store = new FileSystemStore(join(dir, "store.zarr"), { fsync });
    const shape = [size, size];
    const chunkShape = [chunk, chunk];
    const data = new Float32Array(size * size);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
    const bytes = new Uint8Array(data.buffer);
    const value = { data, shape, stride: [size, 1] };
    const raw = await zarrita.create(zarrita.root(store).resolve("zarrita"), {
      shape,
      chunkShape,
      dtype: "float32",
    });
    const makeTx = (path: string, synchronizer: InProcessSynchronizer | FileSynchronizer) =>
      create(store, { path, shape, chunkShape, dtype: "float32", synchronizer });
    const txInProcess: ZarrTxArray = await makeTx("tx-in-process", inProcess);
    const txFile: ZarrTxArray = await makeTx("tx-file", fileSync);
    const diskDir = join(dir, "disk");
    const manyDir = join(dir, "many");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(diskDir);
    mkdirSync(manyDir);
    const chunks = (size / chunk) ** 2;

    const sides: Side[] = [
      { label: "zarrita", run: () => zarrita.set(raw, null, value) },
      { label: "zarr-tx in-process", run: () => set(txInProcess, null, { data, shape }) },
      { label: "zarr-tx file", run: () => set(txFile, null, { data, shape }) },
      {
        label: "disk: one file write+fsync",
        run: async () => writeOneFile(join(diskDir, "one.bin"), bytes),
      },
      {
        label: `disk: ${chunks} files write+fsync+rename`,
        run: async () => writeManyFiles(manyDir, bytes, chunks),
      },
    ];
    note({
      bench: "bulk setup",
      node: process.version,
      size,
      chunk,
      chunks,
      repeats,
      fsync,
      bytes: bytes.length,
    });
    const times = await alternate(sides, repeats);
    const mb = bytes.length / 1e6;
    const lines = compare(workload, "ms", "zarrita", times, {
      goals: {
        "zarr-tx in-process": { text: "ratio >= 0.95", min: 0.95 },
        "zarr-tx file": { text: "ratio >= 0.9", min: 0.9 },
      },
    });
    const seqMedian = lines.find((l) => l.variant === "disk: one file write+fsync")!.median;
    for (const line of lines) {
      emit({
        ...line,
        mb_per_s: round(mb / (line.median / 1000), 3),
        of_sequential_bandwidth: round(seqMedian / line.median, 3),
      } satisfies BenchLine);
    }
    const dd = ddBandwidth(diskDir, Math.round(bytes.length / 2 ** 20));
    if (dd !== undefined) {
      emit({
        workload: `disk sequential write ${Math.round(bytes.length / 2 ** 20)} MiB`,
        variant: `dd bs=1M${fsync ? " conv=fsync" : ""}`,
        n: 1,
        median: round(dd, 4),
        unit: "MB/s",
      });
    }
  } finally {
    await fileSync.close();
    await inProcess.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
