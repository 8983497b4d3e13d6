/**
 * Worker processes on one machine: N processes write overlapping, chunk-crossing slices of two arrays
 * through the FileSynchronizer (OFD byte-range locks, one lock file per array), then the parent checks
 * the result.
 *
 *   npx tsx examples/worker-processes.ts                      # temp directory, 8 processes × 50 rounds
 *   npx tsx examples/worker-processes.ts ./out.zarr 16 100    # your directory, 16 processes × 100 rounds
 *
 * Each process repeatedly (a) increments a random box of `counts` in a read-modify-write transaction and
 * (b) overwrites a random slab of rows of `slabs` with one value, then reads another slab. The parent then
 * checks that every cell of `counts` holds exactly the number of increments that covered it (no lost
 * update: it replays each process's seeded random boxes), that no process ever read a slab row that was
 * not uniform (no torn write), and that plain zarrita reads the same data.
 * Exit code 0 when every check passes, 1 otherwise.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zarrita from "zarrita";
import { seededRandom as seeded } from "../src/cli/workloads.js";
import {
  create,
  FileSynchronizer,
  FileSystemStore,
  get,
  open,
  set,
  slice,
  transaction,
  type ZarrTxArray,
} from "../src/index.js";

const SHAPE = [64, 48];
const CHUNKS = [16, 16];

/** The box that round `round` of a worker increments (drawn first in each round, so it can be replayed). */
function nextBox(random: () => number): [number, number, number, number] {
  const r0 = Math.floor(random() * SHAPE[0]!);
  const c0 = Math.floor(random() * SHAPE[1]!);
  const r1 = Math.min(SHAPE[0]!, r0 + 1 + Math.floor(random() * 20));
  const c1 = Math.min(SHAPE[1]!, c0 + 1 + Math.floor(random() * 20));
  return [r0, r1, c0, c1];
}

/** One worker process: its own store handle and its own FileSynchronizer, like any other process. */
async function worker(dir: string, id: number, rounds: number): Promise<void> {
  const store = new FileSystemStore(dir);
  const synchronizer = new FileSynchronizer();
  const counts = await open(store, { path: "counts", synchronizer });
  const slabs = await open(store, { path: "slabs", synchronizer });
  const random = seeded(1_000 + id);
  let torn = 0;
  for (let round = 0; round < rounds; round++) {
    // (a) read-modify-write increment of a box that usually crosses chunk borders.
    const [r0, r1, c0, c1] = nextBox(random);
    const box = [slice(r0, r1), slice(c0, c1)];
    await transaction([{ array: counts, selection: box, mode: "write" }], async (tx) => {
      const current = await tx.get(counts, box);
      await tx.set(counts, box, {
        data: (current.data as Int32Array).map((v) => v + 1),
        shape: current.shape,
      });
    });
    // (b) overwrite 8 rows (several chunks) with one value, then read 8 other rows: each must be uniform.
    const s0 = Math.floor(random() * (SHAPE[0]! - 8));
    await set(slabs, [slice(s0, s0 + 8)], id * 1_000_000 + round);
    const t0 = Math.floor(random() * (SHAPE[0]! - 8));
    torn += countTornRows(await readRows(slabs, t0));
  }
  await synchronizer.close();
  process.stdout.write(`${JSON.stringify({ id, rounds, torn })}\n`);
}

async function readRows(array: ZarrTxArray, start: number): Promise<Int32Array> {
  return (await get(array, [slice(start, start + 8)])).data as Int32Array;
}

function countTornRows(values: Int32Array): number {
  let torn = 0;
  for (let row = 0; row < values.length / SHAPE[1]!; row++) {
    const cells = values.subarray(row * SHAPE[1]!, (row + 1) * SHAPE[1]!);
    if (cells.some((v) => v !== cells[0])) torn++;
  }
  return torn;
}

/** Starts this file again as a worker process (with the same Node flags, e.g. tsx's loader). */
function spawnWorker(dir: string, id: number, rounds: number): Promise<{ torn: number }> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    [...process.execArgv, self, "--worker", dir, String(id), String(rounds)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out) as { torn: number });
      else reject(new Error(`worker ${id} exited with code ${code}`));
    });
  });
}

async function main(): Promise<void> {
  const [dirArg, processesArg, roundsArg] = process.argv.slice(2);
  const processes = Number(processesArg ?? 8);
  const rounds = Number(roundsArg ?? 50);
  const dir = dirArg ?? (await mkdtemp(join(tmpdir(), "zarr-tx-processes-")));
  const store = new FileSystemStore(dir);
  const synchronizer = new FileSynchronizer();
  const counts = await create(store, {
    path: "counts",
    shape: SHAPE,
    chunkShape: CHUNKS,
    dtype: "int32",
    overwrite: true,
    synchronizer,
  });
  await create(store, {
    path: "slabs",
    shape: SHAPE,
    chunkShape: CHUNKS,
    dtype: "int32",
    codecs: [{ name: "bytes" }, { name: "zstd", configuration: { level: 3, checksum: false } }],
    overwrite: true,
    synchronizer,
  });

  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: processes }, (_, id) => spawnWorker(dir, id, rounds)),
  );
  const elapsedMs = performance.now() - started;

  // Replay every worker's boxes: each cell must hold exactly the increments that covered it.
  const expected = new Int32Array(SHAPE[0]! * SHAPE[1]!);
  for (let id = 0; id < processes; id++) {
    const random = seeded(1_000 + id);
    for (let round = 0; round < rounds; round++) {
      const [r0, r1, c0, c1] = nextBox(random);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) expected[r * SHAPE[1]! + c]!++;
      random();
      random();
    }
  }
  const final = (await get(counts)).data as Int32Array;
  let lost = 0;
  for (let i = 0; i < final.length; i++) lost += Math.abs(expected[i]! - final[i]!);
  const torn = results.reduce((sum, r) => sum + r.torn, 0);
  const plain = (await zarrita.open(zarrita.root(store).resolve("counts"), {
    kind: "array",
  })) as zarrita.Array<"int32">;
  const zarritaAgrees = (await zarrita.get(plain)).data.every((v, i) => v === final[i]);
  await synchronizer.close();

  const transactions = processes * rounds * 3;
  console.log(
    JSON.stringify({
      dir,
      processes,
      transactions,
      elapsedMs: Math.round(elapsedMs),
      transactionsPerSecond: Math.round(transactions / (elapsedMs / 1000)),
      lostIncrements: lost,
      tornReads: torn,
      zarritaAgrees,
    }),
  );
  if (!dirArg) await rm(dir, { recursive: true, force: true });
  const ok = lost === 0 && torn === 0 && zarritaAgrees;
  console.log(
    ok
      ? `OK: ${processes} processes, no lost increment, no torn read, zarrita reads the same data`
      : "FAILED",
  );
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[2] === "--worker") {
  const [, , , dir, id, rounds] = process.argv;
  await worker(dir!, Number(id), Number(rounds));
} else {
  await main();
}
