/**
 * The processes of the crash tests (test/crash.*.test.ts, driven by test/crash-harness.ts): one role
 * per process, configured by a JSON argument. They are SIGKILLed at random times by the test, or by
 * themselves at a protocol step through `ZARR_TX_CRASH_AT=<point>[@<n>]` (src/array/journal.ts).
 *
 *   node crash-child.mjs '{"role":"writer","store":{"kind":"fs","root":"/tmp/x","fsync":false},...}'
 *
 * Roles:
 * - writer: runs transactions until killed (or `count` of them): each picks a rectangle spanning 2–16
 *   stored objects (chunks, or shards), reads it under its exclusive locks, appends
 *   `{"b":value,"sel":[r0,r1,c0,c1],"prev":[…the cells it read…]}` to its log, writes one unique value
 *   to every cell, and appends `{"c":value}` once commit resolved. The log is appended with one write(2)
 *   per line and no fsync: a SIGKILL of the process does not lose what the kernel already has.
 * - reader: reads random rectangles through `get` (shared locks) until killed, appending each snapshot.
 * - recoverer: runs `recover()` once through the writers' synchronizer and prints its report.
 * - locker: takes every chunk of the array exclusively (a transaction over the whole array) with a
 *   timeout, and prints "locked": proof that no dead process left a lock behind.
 *
 * Messages to the test are JSON lines on stdout ({"event":"ready"}, …). Pipes are synchronous on Linux,
 * so a line printed before a kill reaches the test.
 */
import { appendFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
// mulberry32, the CLI's seeded PRNG: a failing run can be replayed from its seed.
import { seededRandom } from "../src/cli/workloads.js";
import {
  FileSynchronizer,
  FileSystemStore,
  get,
  open,
  recover,
  type Store,
  type Synchronizer,
  slice,
  transaction,
  type ZarrTxArray,
} from "../src/index.js";

/** Where the array lives. JSON-serializable, so that the test can hand it to a child. */
export type StoreConfig =
  | { readonly kind: "fs"; readonly root: string; readonly fsync: boolean; readonly applyInPlace?: boolean }
  | {
      readonly kind: "s3";
      readonly bucket: string;
      readonly prefix: string;
      /** S3Client options (endpoint, region, credentials, forcePathStyle): plain data. */
      readonly client: Record<string, unknown>;
    };

/** How processes lock: every process of one test uses the same. */
export type SyncConfig =
  | { readonly kind: "file"; readonly lockDirectory?: string }
  | { readonly kind: "redis"; readonly masters: readonly string[]; readonly ttlMs: number };

/** A rectangle [r0, r1) × [c0, c1) of a 2-D array. */
export type Rect = readonly [number, number, number, number];

interface Common {
  readonly store: StoreConfig;
  readonly sync: SyncConfig;
  readonly path: string;
}

/** What one child does. */
export type CrashChildConfig =
  | (Common & {
      readonly role: "writer";
      /** Unique over the whole test (respawned writers get new ones): values are instance·10⁴ + seq. */
      readonly instance: number;
      readonly seed: number;
      readonly log: string;
      /** Stop (exit 0) after this many transactions; default: run until killed. */
      readonly count?: number;
      /** The first transaction's rectangle (to aim at a pending journal entry). */
      readonly first?: Rect;
      /** `journal: false` commits without the journal (to show what the oracle catches then). */
      readonly journal?: boolean;
    })
  | (Common & { readonly role: "reader"; readonly seed: number; readonly log: string })
  | (Common & { readonly role: "recoverer" })
  | (Common & { readonly role: "locker"; readonly timeoutMs: number });

/** Values a writer instance may use: instance·10⁴ + 1 … instance·10⁴ + 9999. */
export const SEQ_PER_INSTANCE = 10_000;

function randomInt(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/**
 * A random rectangle that touches exactly a×b stored objects with 2 ≤ a·b ≤ 16 (a, b ≤ 4): it starts
 * anywhere in its first object and ends anywhere in its last, so most objects are partly covered (read,
 * merged, rewritten) and some fully.
 */
export function randomRegion(
  random: () => number,
  shape: readonly number[],
  objectShape: readonly number[],
): Rect {
  const grid = shape.map((n, axis) => Math.ceil(n / objectShape[axis]!));
  for (;;) {
    const a = randomInt(random, 1, Math.min(4, grid[0]!));
    const b = randomInt(random, 1, Math.min(4, grid[1]!));
    if (a * b < 2) continue;
    const i = randomInt(random, 0, grid[0]! - a);
    const j = randomInt(random, 0, grid[1]! - b);
    const [h, w] = objectShape as [number, number];
    const r0 = randomInt(random, i * h, (i + 1) * h - 1);
    const r1 = randomInt(random, Math.max(r0 + 1, (i + a - 1) * h + 1), Math.min((i + a) * h, shape[0]!));
    const c0 = randomInt(random, j * w, (j + 1) * w - 1);
    const c1 = randomInt(random, Math.max(c0 + 1, (j + b - 1) * w + 1), Math.min((j + b) * w, shape[1]!));
    return [r0, r1, c0, c1];
  }
}

/** Any rectangle of at least one cell. */
function anyRect(random: () => number, shape: readonly number[]): Rect {
  const r0 = randomInt(random, 0, shape[0]! - 1);
  const c0 = randomInt(random, 0, shape[1]! - 1);
  return [r0, randomInt(random, r0 + 1, shape[0]!), c0, randomInt(random, c0 + 1, shape[1]!)];
}

/** The cells of an n-d result in C order of its rectangle, whatever its strides. */
export function cellsOf(result: {
  data: ArrayLike<number>;
  shape: readonly number[];
  stride: readonly number[];
}): number[] {
  const [rows, cols] = result.shape as [number, number];
  const [sr, sc] = result.stride as [number, number];
  const out: number[] = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out.push(Number(result.data[r * sr + c * sc]));
  return out;
}

export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.kind === "fs") {
    return new FileSystemStore(config.root, {
      fsync: config.fsync,
      applyInPlace: config.applyInPlace === true,
    });
  }
  // Loaded only for S3, so that filesystem children never load the AWS SDK.
  const { S3Store } = await import("../src/store/s3.js");
  return new S3Store({ bucket: config.bucket, prefix: config.prefix, config: config.client as never });
}

export async function openSynchronizer(config: SyncConfig): Promise<Synchronizer> {
  if (config.kind === "file") {
    return new FileSynchronizer(
      config.lockDirectory === undefined ? {} : { lockDirectory: config.lockDirectory },
    );
  }
  const { RedisSynchronizer } = await import("../src/sync/redis.js");
  return new RedisSynchronizer({ masters: [...config.masters], ttlMs: config.ttlMs });
}

function emit(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function toSelection([r0, r1, c0, c1]: Rect) {
  return [slice(r0, r1), slice(c0, c1)];
}

async function runWriter(
  config: Extract<CrashChildConfig, { role: "writer" }>,
  array: ZarrTxArray,
): Promise<void> {
  const random = seededRandom(config.seed);
  const limit = Math.min(config.count ?? Number.POSITIVE_INFINITY, SEQ_PER_INSTANCE - 1);
  for (let seq = 1; seq <= limit; seq++) {
    const rect = seq === 1 && config.first ? config.first : randomRegion(random, array.shape, array.chunks);
    const value = config.instance * SEQ_PER_INSTANCE + seq;
    const selection = toSelection(rect);
    await transaction(
      [{ array, selection, mode: "write" }],
      async (tx) => {
        // Read under the exclusive locks: what this transaction overwrites, cell by cell. The test chains
        // these into each cell's history.
        const prev = cellsOf((await tx.get(array, selection)) as never);
        appendFileSync(config.log, `${JSON.stringify({ b: value, sel: rect, prev })}\n`);
        await tx.set(array, selection, value);
      },
      config.journal === false ? { journal: false } : {},
    );
    appendFileSync(config.log, `${JSON.stringify({ c: value })}\n`);
    // The first transaction of a process is slow (cold code, lazy codec set-up); the test kills at a
    // random time after this, so that kills land among many warm, short transactions.
    if (seq === 1) emit({ event: "warm" });
  }
}

async function runReader(
  config: Extract<CrashChildConfig, { role: "reader" }>,
  array: ZarrTxArray,
): Promise<void> {
  const random = seededRandom(config.seed);
  for (;;) {
    const rect = anyRect(random, array.shape);
    const cells = cellsOf((await get(array, toSelection(rect))) as never);
    appendFileSync(config.log, `${JSON.stringify({ sel: rect, cells })}\n`);
    // A pause between reads: a reader in a tight loop would take most of a 2-core machine's CPU from
    // the writers, and thousands of snapshots add nothing to the check that hundreds do not.
    await new Promise((resolve) => setTimeout(resolve, 5 + random() * 15));
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]!) as CrashChildConfig;
  const store = await openStore(config.store);
  const synchronizer = await openSynchronizer(config.sync);
  try {
    if (config.role === "recoverer") {
      emit({ event: "ready", pid: process.pid });
      const report = await recover(store, { synchronizer, minAgeMs: 0 });
      emit({ event: "report", report });
      return;
    }
    const array = await open(store, { path: config.path, synchronizer });
    emit({ event: "ready", pid: process.pid });
    switch (config.role) {
      case "writer":
        await runWriter(config, array);
        emit({ event: "done" });
        return;
      case "reader":
        await runReader(config, array);
        return;
      case "locker":
        await transaction([{ array, mode: "write" }], async () => undefined, { timeoutMs: config.timeoutMs });
        emit({ event: "locked" });
        return;
    }
  } finally {
    await synchronizer.close();
  }
}

// Run only as a process's entry point: the test imports this module for its store and lock helpers.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.stdout.write("", () => process.exit(0)),
    (error: unknown) => {
      const e = error as { code?: string; stack?: string };
      process.stderr.write(`${e.code ?? ""} ${e.stack ?? String(error)}\n`);
      process.stdout.write("", () => process.exit(1));
    },
  );
}
