/**
 * What the crash journal costs: latency and bytes written of 2- and 16-chunk transactions with the
 * journal (the default) and without it (`journal: false`: each chunk atomic, the set not crash-atomic),
 * side by side in one run, on a FileSystemStore with fsync on (durable, as in production) and off.
 * Also the cost of looking for pending entries, paid by every transaction on a filesystem store, and
 * the same comparison on S3 (the test harness's fauxqs server on loopback, RedisSynchronizer on one
 * master) with S3 requests per transaction counted by operation.
 *
 *   npm run bench:journal [-- --quick] [-- --repeats N]
 *
 * Goal (issue 6): the journal costs no more than 1.3× on the filesystem.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listEntries } from "../src/array/journal.js";
import {
  type AbsolutePath,
  create,
  FileSystemStore,
  InProcessSynchronizer,
  type KeyValue,
  type RenamePair,
  type Store,
  set,
  slice,
  type ZarrTxArray,
} from "../src/index.js";
import { S3Store } from "../src/store/s3.js";
import { RedisSynchronizer } from "../src/sync/redis.js";
import { startRedisServers, stopRedisServers } from "../test/redis-harness.js";
import { startS3Server } from "../test/s3-harness.js";
import { alternate, compare, emit, note, parseArgs, round, stats } from "./lib.js";

const args = parseArgs();
const repeats = args.number("repeats", args.quick ? 15 : 150);

/** Counts the bytes and calls a store is asked to write. */
function counting(inner: FileSystemStore): {
  store: Store;
  bytes: () => number;
  writes: () => number;
  reset(): void;
} {
  let bytes = 0;
  let writes = 0;
  const store = new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "set" || prop === "createIfAbsent") {
        return (key: AbsolutePath, v: Uint8Array) => {
          bytes += v.length;
          writes += 1;
          return value.call(target, key, v);
        };
      }
      if (prop === "setMany") {
        return (entries: readonly KeyValue[]) => {
          for (const e of entries) bytes += e.value.length;
          writes += entries.length;
          return value.call(target, entries);
        };
      }
      if (prop === "rename") {
        return (pairs: readonly RenamePair[]) => value.call(target, pairs);
      }
      return value.bind(target);
    },
  }) as Store;
  return {
    store,
    bytes: () => bytes,
    writes: () => writes,
    reset() {
      bytes = 0;
      writes = 0;
    },
  };
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "zarr-tx-bench-journal-"));
  try {
    for (const fsync of [true, false]) {
      for (const chunks of [2, 16]) {
        const workload = `journal: ${chunks}-chunk write, fs${fsync ? " + fsync" : " no fsync"}`;
        if (!workload.includes(args.filter)) continue;
        const inner = new FileSystemStore(join(base, `fs-${fsync}-${chunks}`), { fsync });
        const counter = counting(inner);
        // 64×64 float32 chunks (16 KiB raw), no compression: bytes written are the data plus the record.
        const array = await create(counter.store, {
          shape: [256, 256],
          chunkShape: [64, 64],
          dtype: "float32",
          codecs: [],
          synchronizer: new InProcessSynchronizer(),
        });
        const bytesPerTx: Record<string, number> = {};
        await compareJournal(workload, array, chunks, repeats, {
          before: () => counter.reset(),
          after: (label) => {
            bytesPerTx[label] = counter.bytes();
          },
          extra: () => ({
            direct: { bytesPerTx: bytesPerTx.direct },
            journal: { bytesPerTx: bytesPerTx.journal },
          }),
          goal: true,
        });
      }
    }

    // Looking for pending entries: one directory read per transaction on files.
    if ("journal: find pending".includes(args.filter)) {
      const store = new FileSystemStore(join(base, "lookup"));
      await store.set("/.zarr-tx/journal/keep" as AbsolutePath, new Uint8Array(0));
      await store.delete("/.zarr-tx/journal/keep" as AbsolutePath);
      const samples: number[] = [];
      for (let i = 0; i < repeats * 20; i++) {
        const t = performance.now();
        await listEntries(store);
        samples.push((performance.now() - t) * 1000);
      }
      const s = stats(samples);
      emit({
        workload: "journal: find pending entries (empty journal, fs)",
        variant: "listEntries",
        n: s.n,
        median: round(s.median),
        p99: round(s.p99),
        spread: [round(s.min), round(s.max)],
        unit: "us",
      });
    }
    await s3Journal();
    note({ bench: "journal", repeats });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/**
 * Times `set` over 2 or 16 whole chunks with the journal and without it, alternating, and prints the
 * comparison; `before`/`after` wrap each write (reset and read counters), `extra` adds their results.
 */
async function compareJournal(
  workload: string,
  array: ZarrTxArray,
  chunks: number,
  repeatCount: number,
  hooks: {
    before: () => void;
    after: (label: string) => void;
    extra: () => Record<string, Record<string, unknown>>;
    goal: boolean;
  },
): Promise<void> {
  const selection = chunks === 2 ? [slice(0, 64), slice(0, 128)] : [slice(0, 256), slice(0, 256)];
  let value = 0;
  const sides = [
    { label: "direct", journal: false },
    { label: "journal", journal: true },
  ].map(({ label, journal }) => ({
    label,
    run: async () => {
      hooks.before();
      await set(array, selection, ++value, { journal });
      hooks.after(label);
    },
  }));
  const times = await alternate(sides, repeatCount);
  const goals = { journal: { text: "ratio >= 1/1.3 (journal at most 1.3x the time)", min: 1 / 1.3 } };
  for (const line of compare(workload, "ms", "direct", times, {
    p99: true,
    ...(hooks.goal ? { goals } : {}),
    extra: hooks.extra(),
  })) {
    emit(line);
  }
}

/** The same writes on S3 + Redis: latency, and requests per transaction by operation. */
async function s3Journal(): Promise<void> {
  if (!"journal: S3".includes(args.filter) && !args.filter.includes("S3")) return;
  const server = await startS3Server();
  const redis = await startRedisServers(1);
  const synchronizer = new RedisSynchronizer({ masters: redis.map((r) => r.url) });
  try {
    const store = new S3Store({
      bucket: server.createBucket(),
      prefix: "bench",
      config: server.clientConfig(),
    });
    const s3Repeats = Math.max(5, Math.round(repeats / 3));
    for (const chunks of [2, 16]) {
      const workload = `journal: ${chunks}-chunk write, S3 + Redis`;
      const array = await create(store, {
        path: `/a${chunks}`,
        shape: [256, 256],
        chunkShape: [64, 64],
        dtype: "float32",
        codecs: [],
        synchronizer,
      });
      const requests: Record<string, Record<string, number>> = {};
      await compareJournal(workload, array, chunks, s3Repeats, {
        before: () => server.resetCounts(),
        after: (label) => {
          requests[label] = { total: server.total(), ...server.counts() };
        },
        extra: () => ({
          direct: { requestsPerTx: requests.direct },
          journal: { requestsPerTx: requests.journal },
        }),
        goal: false,
      });
    }
  } finally {
    await synchronizer.close();
    await stopRedisServers(redis);
    await server.stop();
  }
}

await main();
