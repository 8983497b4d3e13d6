/**
 * The filesystem operations FileSystemStore's design rests on, measured side by side (issue 8):
 * 1. Replacing an existing small file: a new temp file renamed over it (what rename(2)-based atomic
 *    replace costs, and what zarr-python's `os.replace` does), against the same temp file exchanged with
 *    it (`renameat2(RENAME_EXCHANGE)`) and the old file unlinked (what FileSystemStore does on Linux),
 *    against creating and unlinking a file (the floor: no replace at all). Idle, and with another
 *    process replacing files in a loop meanwhile (the filesystem journal busy, as under concurrent
 *    writers).
 * 2. `FileSystemStore.set` over an existing object, replacing by exchange (default) vs by rename.
 * 3. Listing an empty directory that once held many files against a fresh one: ext4 directories never
 *    shrink, which is why large journal entries get a directory of their own.
 *
 *   npm run bench:fs-ops [-- --quick]
 *
 * Prints JSON lines in the schema of bench/lib.ts; times per operation in µs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AbsolutePath, FileSystemStore } from "../src/index.js";
import { nativeExtensions } from "../src/native.js";
import { compare, emit, note, parseArgs, wanted } from "./lib.js";

const args = parseArgs();
const OPS = args.number("ops", args.quick ? 300 : 1500);
const ROUND = 100;
const FILES = 9;
const bytes = new Uint8Array(64).fill(7);
const swapSync = nativeExtensions().swapSync;

function createFile(path: string): void {
  const fd = openSync(path, "wx");
  try {
    writeSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

/** Per-operation times (µs) of each variant, taking turns in rounds of ROUND operations. */
function timeRounds(variants: Record<string, (i: number) => void>): Record<string, number[]> {
  const samples: Record<string, number[]> = {};
  for (const name of Object.keys(variants)) samples[name] = [];
  let i = 0;
  for (let done = 0; done < OPS; done += ROUND) {
    for (const [name, op] of Object.entries(variants)) {
      for (let k = 0; k < ROUND; k++, i++) {
        const t = performance.now();
        op(i);
        samples[name]!.push((performance.now() - t) * 1000);
      }
    }
  }
  return samples;
}

/** Another process replacing 4 KiB files in a loop in `dir` until it is killed. */
function startLoad(dir: string): ChildProcess {
  const script = `
    const fs = require("node:fs"); const dir = ${JSON.stringify(dir)}; fs.mkdirSync(dir, { recursive: true });
    const buf = Buffer.alloc(4096, 1);
    for (let i = 0; ; i++) { const p = dir + "/t" + i; const fd = fs.openSync(p, "wx"); fs.writeSync(fd, buf);
      fs.closeSync(fd); fs.renameSync(p, dir + "/c" + (i % 50)); }`;
  return spawn(process.execPath, ["-e", script], { stdio: "ignore" });
}

async function replaceFile(base: string): Promise<void> {
  const workload = "fs-ops: replace an existing 64-byte file";
  if (!wanted(args, workload)) return;
  for (const loaded of [false, true]) {
    const dir = join(base, `replace-${loaded}`);
    mkdirSync(dir);
    for (let k = 0; k < FILES; k++) createFile(join(dir, `c${k}`));
    const load = loaded ? startLoad(join(base, "load")) : undefined;
    try {
      if (load) await new Promise((resolve) => setTimeout(resolve, 300));
      const samples = timeRounds({
        "create temp + rename over": (i) => {
          const temp = join(dir, `r${i}`);
          createFile(temp);
          renameSync(temp, join(dir, `c${i % FILES}`));
        },
        "create temp + exchange + unlink old": (i) => {
          const temp = join(dir, `x${i}`);
          createFile(temp);
          swapSync(temp, join(dir, `c${i % FILES}`));
          unlinkSync(temp);
        },
        "create + unlink (floor)": (i) => {
          const temp = join(dir, `u${i}`);
          createFile(temp);
          unlinkSync(temp);
        },
      });
      const label = `${workload}${loaded ? ", another process replacing files meanwhile" : ", idle"}`;
      for (const line of compare(label, "us", "create temp + rename over", samples, { p99: true }))
        emit(line);
    } finally {
      load?.kill("SIGKILL");
    }
  }
}

async function storeSet(base: string): Promise<void> {
  const workload = "fs-ops: FileSystemStore.set of an existing 64-byte object (fsync off)";
  if (!wanted(args, workload)) return;
  const byExchange = new FileSystemStore(join(base, "set-exchange"), { fsync: false });
  const byRename = new FileSystemStore(join(base, "set-rename"), { fsync: false, replaceByExchange: false });
  note({ bench: "fs-ops", replacesByExchange: byExchange.replacesByExchange });
  const keys = Array.from({ length: FILES }, (_, k) => `/c/${k}` as AbsolutePath);
  for (const store of [byExchange, byRename]) for (const key of keys) await store.set(key, bytes);
  const samples: Record<string, number[]> = { "by exchange (default)": [], "by rename": [] };
  for (let done = 0; done < OPS; done += ROUND) {
    for (const [name, store] of [
      ["by exchange (default)", byExchange],
      ["by rename", byRename],
    ] as const) {
      for (let k = 0; k < ROUND; k++) {
        const t = performance.now();
        await store.set(keys[k % FILES]!, bytes);
        samples[name]!.push((performance.now() - t) * 1000);
      }
    }
  }
  for (const line of compare(workload, "us", "by rename", samples, { p99: true })) emit(line);
}

async function listBloated(base: string): Promise<void> {
  const held = args.quick ? 16_384 : 65_536;
  const workload = `fs-ops: list an empty directory that once held ${held} files`;
  if (!wanted(args, workload)) return;
  const store = new FileSystemStore(join(base, "list"), { fsync: false });
  const bloated = join(store.root, "bloated");
  mkdirSync(bloated);
  mkdirSync(join(store.root, "fresh"));
  for (let i = 0; i < held; i++) createFile(join(bloated, `f${i}`));
  for (const name of readdirSync(bloated)) unlinkSync(join(bloated, name));
  const samples: Record<string, number[]> = { "fresh directory": [], "directory that held the files": [] };
  for (let r = 0; r < (args.quick ? 100 : 500); r++) {
    for (const [name, prefix] of [
      ["fresh directory", "/fresh/"],
      ["directory that held the files", "/bloated/"],
    ] as const) {
      const t = performance.now();
      await store.list(prefix);
      samples[name]!.push((performance.now() - t) * 1000);
    }
  }
  for (const line of compare(workload, "us", "fresh directory", samples, { p99: true })) emit(line);
}

note({
  bench: "fs-ops setup",
  node: process.version,
  ops: OPS,
  quick: args.quick,
  platform: process.platform,
});
const base = await mkdtemp(join(tmpdir(), "zarr-tx-bench-fs-ops-"));
try {
  await replaceFile(base);
  await storeSet(base);
  await listBloated(base);
} finally {
  await rm(base, { recursive: true, force: true });
}
