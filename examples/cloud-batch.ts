/**
 * The cloud batch job: N writer processes (think containers on many hosts) write overlapping regions of
 * two arrays in one S3 bucket, coordinated only through Redis (`RedisSynchronizer`, Redlock over 1, 3 or 5
 * masters), while reader processes read them; then the parent checks every result.
 *
 *   npx tsx examples/cloud-batch.ts --endpoint http://127.0.0.1:9000 --bucket scratch \
 *     --redis redis://127.0.0.1:6379 [--redis … --redis …] [--prefix jobs/run1.zarr] \
 *     [--processes 8] [--readers 2] [--rounds 20] [--region us-east-1]
 *
 * Every option also has an environment variable: S3_ENDPOINT, S3_BUCKET, S3_PREFIX, AWS_REGION,
 * REDIS_URLS (comma-separated), PROCESSES, READERS, ROUNDS. Credentials come from the AWS SDK's default
 * chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance or task role), never from the
 * command line. Against real AWS S3, leave out --endpoint and set --region (or AWS_REGION).
 *
 * Each writer repeatedly
 *  (a) writes one value unique to it and the round (id * 1 000 000 + round + 1) over a whole slab of rows
 *      (every column: several chunks), in one transaction, and
 *  (b) increments a random box of `counts` in a read-modify-write transaction (seeded, so the parent can
 *      replay every box).
 * Each reader repeatedly reads a random slab of `slabs` under shared locks and counts rows that are not
 * uniform (a torn read). The parent then checks: no torn read anywhere; every row of `slabs` is uniform
 * and holds a value some writer committed to it (or the fill value 0); every cell of `counts` equals the
 * number of increments that covered it (no lost update); plain zarrita, reading the bucket through the
 * same S3Store, sees the same data.
 * Prints one JSON line with the results; exit code 0 when every check passes, 1 otherwise.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as zarrita from "zarrita";
import { seededRandom } from "../src/cli/workloads.js";
import { create, get, isZarrTxError, open, set, slice, transaction, type ZarrTxArray } from "../src/index.js";
import { S3Store } from "../src/store/s3.js";
import { RedisSynchronizer } from "../src/sync/redis.js";

const SHAPE = [32, 64] as const;
const CHUNKS = [8, 16] as const;
/** Rows per slab: 6 rows × 64 columns touch 1–2 chunk rows × 4 chunk columns. */
const SLAB_ROWS = 6;
const ROW_LENGTH = SHAPE[1];

interface Settings {
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
  readonly bucket: string;
  readonly prefix: string;
  readonly redis: readonly string[];
  readonly processes: number;
  readonly readers: number;
  readonly rounds: number;
}

/** What a writer reports: the slab values it committed, per start row, and its typed errors. */
interface WriterReport {
  readonly id: number;
  readonly slabs: readonly (readonly [start: number, value: number])[];
  readonly increments: number;
  readonly errors: Record<string, number>;
}

interface ReaderReport {
  readonly id: number;
  readonly reads: number;
  readonly torn: number;
}

function usage(message: string): never {
  console.error(`cloud-batch: ${message}\n(see the comment at the top of examples/cloud-batch.ts)`);
  process.exit(2);
}

function settingsOf(argv: readonly string[]): Settings {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!;
    const value = argv[i + 1];
    if (!name.startsWith("--") || value === undefined) usage(`expected --option value pairs, got ${name}`);
    values.set(name.slice(2), [...(values.get(name.slice(2)) ?? []), value]);
  }
  const one = (name: string, env: string): string | undefined => values.get(name)?.at(-1) ?? process.env[env];
  const count = (name: string, env: string, fallback: number, min: number): number => {
    const text = one(name, env);
    const n = text === undefined ? fallback : Number(text);
    if (!Number.isInteger(n) || n < min) usage(`--${name} must be a whole number ≥ ${min}`);
    return n;
  };
  const bucket = one("bucket", "S3_BUCKET");
  if (bucket === undefined) usage("--bucket (or S3_BUCKET) is required");
  const redis = values.get("redis") ?? (process.env.REDIS_URLS ?? "").split(",").filter((u) => u !== "");
  if (redis.length === 0) usage("give at least one --redis redis://host:port (or REDIS_URLS)");
  return {
    endpoint: one("endpoint", "S3_ENDPOINT"),
    region: one("region", "AWS_REGION"),
    bucket,
    prefix: one("prefix", "S3_PREFIX") ?? `zarr-tx-cloud-batch/${Date.now()}.zarr`,
    redis,
    processes: count("processes", "PROCESSES", 8, 1),
    readers: count("readers", "READERS", 2, 0),
    rounds: count("rounds", "ROUNDS", 20, 1),
  };
}

function storeOf(settings: Settings): S3Store {
  return new S3Store({
    bucket: settings.bucket,
    prefix: settings.prefix,
    config: {
      // S3-compatible services (MinIO, Ceph…) want path-style addressing; AWS takes either.
      ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint, forcePathStyle: true } : {}),
      ...(settings.region !== undefined
        ? { region: settings.region }
        : settings.endpoint !== undefined
          ? { region: "us-east-1" }
          : {}),
    },
  });
}

/** The box that a writer's round increments: drawn from its seeded generator, so the parent can replay. */
function nextBox(random: () => number): [number, number, number, number] {
  const r0 = Math.floor(random() * SHAPE[0]);
  const c0 = Math.floor(random() * SHAPE[1]);
  const r1 = Math.min(SHAPE[0], r0 + 1 + Math.floor(random() * 12));
  const c1 = Math.min(SHAPE[1], c0 + 1 + Math.floor(random() * 24));
  return [r0, r1, c0, c1];
}

function slabValue(id: number, round: number): number {
  return id * 1_000_000 + round + 1;
}

/** Rows of a slab read that are not uniform. */
function tornRows(values: Int32Array): number {
  let torn = 0;
  for (let row = 0; row < values.length / ROW_LENGTH; row++) {
    const cells = values.subarray(row * ROW_LENGTH, (row + 1) * ROW_LENGTH);
    if (cells.some((v) => v !== cells[0])) torn++;
  }
  return torn;
}

/** Runs `work`, retrying transactions that lost their lease or met a conflict (counted by code). */
async function withRetries(errors: Record<string, number>, work: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await work();
      return;
    } catch (error) {
      const code = isZarrTxError(error) ? error.code : "unexpected";
      errors[code] = (errors[code] ?? 0) + 1;
      const retryable = code === "ERR_LEASE_LOST" || code === "ERR_CONFLICT" || code === "ERR_LOCK_TIMEOUT";
      if (!retryable || attempt >= 5) throw error;
    }
  }
}

async function writer(settings: Settings, id: number): Promise<WriterReport> {
  const store = storeOf(settings);
  const synchronizer = new RedisSynchronizer({ masters: settings.redis });
  const errors: Record<string, number> = {};
  const committed: [number, number][] = [];
  let increments = 0;
  try {
    const slabs = await open(store, { path: "slabs", synchronizer });
    const counts = await open(store, { path: "counts", synchronizer });
    const random = seededRandom(10_000 + id);
    for (let round = 0; round < settings.rounds; round++) {
      // Draw everything of the round first: the parent replays the same sequence.
      const [r0, r1, c0, c1] = nextBox(random);
      const start = Math.floor(random() * (SHAPE[0] - SLAB_ROWS + 1));
      const value = slabValue(id, round);
      await withRetries(errors, () => set(slabs, [slice(start, start + SLAB_ROWS), null], value));
      committed.push([start, value]);
      const box = [slice(r0, r1), slice(c0, c1)];
      await withRetries(errors, () =>
        transaction([{ array: counts, selection: box, mode: "write" }], async (tx) => {
          const current = await tx.get(counts, box);
          await tx.set(counts, box, {
            data: (current.data as Int32Array).map((v) => v + 1),
            shape: current.shape,
          });
        }),
      );
      increments++;
    }
  } finally {
    await synchronizer.close();
    store.close();
  }
  return { id, slabs: committed, increments, errors };
}

async function reader(settings: Settings, id: number): Promise<ReaderReport> {
  const store = storeOf(settings);
  const synchronizer = new RedisSynchronizer({ masters: settings.redis });
  let stop = false;
  // The parent closes our stdin when the writers are done.
  process.stdin.on("data", () => undefined);
  process.stdin.on("end", () => {
    stop = true;
  });
  let reads = 0;
  let torn = 0;
  try {
    const slabs = await open(store, { path: "slabs", synchronizer });
    const random = seededRandom(20_000 + id);
    while (!stop) {
      const start = Math.floor(random() * (SHAPE[0] - SLAB_ROWS + 1));
      const { data } = await get(slabs, [slice(start, start + SLAB_ROWS), null]);
      torn += tornRows(data as Int32Array);
      reads++;
    }
  } finally {
    await synchronizer.close();
    store.close();
  }
  return { id, reads, torn };
}

/** Starts this file again as a child process (same Node flags, e.g. tsx's loader) and reads its JSON. */
function child<T>(
  role: "writer" | "reader",
  id: number,
  argv: readonly string[],
): { done: Promise<T>; stop(): void } {
  const self = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, [...process.execArgv, self, `--${role}`, String(id), ...argv], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let out = "";
  proc.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const done = new Promise<T>((resolve, reject) => {
    proc.on("error", reject);
    proc.on("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out) as T);
      else reject(new Error(`${role} ${id} exited with code ${code}`));
    });
  });
  return { done, stop: () => proc.stdin.end() };
}

async function main(argv: readonly string[]): Promise<void> {
  const settings = settingsOf(argv);
  const store = storeOf(settings);
  const synchronizer = new RedisSynchronizer({ masters: settings.redis });
  const started = performance.now();
  let slabs: ZarrTxArray;
  let counts: ZarrTxArray;
  try {
    slabs = await create(store, {
      path: "slabs",
      shape: [...SHAPE],
      chunkShape: [...CHUNKS],
      dtype: "int32",
      codecs: [{ name: "bytes" }, { name: "zstd", configuration: { level: 3, checksum: false } }],
      overwrite: true,
      synchronizer,
    });
    counts = await create(store, {
      path: "counts",
      shape: [...SHAPE],
      chunkShape: [...CHUNKS],
      dtype: "int32",
      overwrite: true,
      synchronizer,
    });

    const readers = Array.from({ length: settings.readers }, (_, id) =>
      child<ReaderReport>("reader", id, argv),
    );
    const writers = await Promise.all(
      Array.from({ length: settings.processes }, (_, id) => child<WriterReport>("writer", id, argv).done),
    );
    for (const r of readers) r.stop();
    const readerReports = await Promise.all(readers.map((r) => r.done));
    const elapsedMs = performance.now() - started;

    // No lost update: replay every writer's boxes.
    const expected = new Int32Array(SHAPE[0] * SHAPE[1]);
    for (let id = 0; id < settings.processes; id++) {
      const random = seededRandom(10_000 + id);
      for (let round = 0; round < settings.rounds; round++) {
        const [r0, r1, c0, c1] = nextBox(random);
        random();
        for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) expected[r * SHAPE[1] + c]! += 1;
      }
    }
    const finalCounts = (await get(counts, null)).data as Int32Array;
    let lostIncrements = 0;
    for (let i = 0; i < expected.length; i++) lostIncrements += Math.abs(expected[i]! - finalCounts[i]!);

    // Every row uniform, holding a value committed over it (or the fill value when no slab covered it).
    const finalSlabs = (await get(slabs, null)).data as Int32Array;
    const writtenPerRow = Array.from({ length: SHAPE[0] }, () => new Set<number>());
    for (const w of writers) {
      for (const [start, value] of w.slabs)
        for (let r = start; r < start + SLAB_ROWS; r++) writtenPerRow[r]!.add(value);
    }
    let badRows = 0;
    for (let r = 0; r < SHAPE[0]; r++) {
      const row = finalSlabs.subarray(r * ROW_LENGTH, (r + 1) * ROW_LENGTH);
      const value = row[0]!;
      const allowed = writtenPerRow[r]!.size === 0 ? value === 0 : writtenPerRow[r]!.has(value);
      if (row.some((v) => v !== value) || !allowed) badRows++;
    }

    // Plain zarrita reads the same arrays from the bucket (the S3Store is a zarrita store).
    const root = zarrita.root(store);
    const plainCounts = await zarrita.get(
      (await zarrita.open(root.resolve("counts"), { kind: "array" })) as zarrita.Array<"int32">,
    );
    const plainSlabs = await zarrita.get(
      (await zarrita.open(root.resolve("slabs"), { kind: "array" })) as zarrita.Array<"int32">,
    );
    const zarritaAgrees =
      plainCounts.data.every((v, i) => v === finalCounts[i]) &&
      plainSlabs.data.every((v, i) => v === finalSlabs[i]);

    const tornReads = readerReports.reduce((n, r) => n + r.torn, 0);
    const errors: Record<string, number> = {};
    for (const w of writers)
      for (const [code, n] of Object.entries(w.errors)) errors[code] = (errors[code] ?? 0) + n;
    const transactions =
      settings.processes * settings.rounds * 2 + readerReports.reduce((n, r) => n + r.reads, 0);
    const ok = lostIncrements === 0 && tornReads === 0 && badRows === 0 && zarritaAgrees;
    console.log(
      JSON.stringify({
        store: store.id,
        masters: settings.redis.length,
        processes: settings.processes,
        readers: settings.readers,
        rounds: settings.rounds,
        transactions,
        elapsedMs: Math.round(elapsedMs),
        transactionsPerSecond: Math.round((transactions / elapsedMs) * 1000 * 10) / 10,
        reads: readerReports.reduce((n, r) => n + r.reads, 0),
        tornReads,
        lostIncrements,
        badRows,
        zarritaAgrees,
        retriedErrors: errors,
        ok,
      }),
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    await synchronizer.close();
    store.close();
  }
}

const [role, id, ...rest] = process.argv.slice(2);
if (role === "--writer") {
  process.stdout.write(JSON.stringify(await writer(settingsOf(rest), Number(id))));
} else if (role === "--reader") {
  process.stdout.write(JSON.stringify(await reader(settingsOf(rest), Number(id))));
} else {
  await main(process.argv.slice(2));
}
