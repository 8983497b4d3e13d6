/**
 * Transactions on S3 + Redis against the filesystem + file locks: latency (median, p99) of 1-, 2- and
 * 16-chunk writes, side by side in one run, and S3 requests per transaction counted by operation in the
 * test harness's proxy (every attempt counts). S3 is the harness's fauxqs server on loopback behind the
 * proxy (test/s3-harness.ts) and Redis three local masters (a Redlock quorum), so the latencies are the
 * client's and the protocol's costs without network distance: on real S3 add ~10–30 ms per request
 * round trip, and multiply by the requests per transaction on the critical path.
 *
 *   npm run bench:s3 [-- --quick] [-- --repeats N]
 *
 * Writes cover whole chunks (no read-modify-write), float32 64×64 chunks (16 KiB), no compression; each
 * repeat writes a new value. The filesystem side fsyncs (durable, like a completed PUT).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  create,
  FileSynchronizer,
  FileSystemStore,
  type Selection,
  set,
  slice,
  type ZarrTxArray,
} from "../src/index.js";
import { S3Store } from "../src/store/s3.js";
import { RedisSynchronizer } from "../src/sync/redis.js";
import { startRedisServers, stopRedisServers } from "../test/redis-harness.js";
import { startS3Server } from "../test/s3-harness.js";
import { alternate, compare, emit, note, parseArgs } from "./lib.js";

const args = parseArgs();
const repeats = args.number("repeats", args.quick ? 8 : 40);

const SELECTIONS: Readonly<Record<number, Selection>> = {
  1: [slice(0, 64), slice(0, 64)],
  2: [slice(0, 64), slice(0, 128)],
  16: [slice(0, 256), slice(0, 256)],
};

async function main(): Promise<void> {
  const [server, masters] = await Promise.all([startS3Server(), startRedisServers(3)]);
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-s3-"));
  const redis = new RedisSynchronizer({ masters: masters.map((m) => m.url) });
  const files = new FileSynchronizer();
  const s3Store = new S3Store({
    bucket: server.createBucket(),
    prefix: "bench.zarr",
    config: server.clientConfig(),
  });
  const fsStore = new FileSystemStore(dir);
  note({
    bench: "s3",
    repeats,
    s3: "fauxqs 1.9.2 behind the harness proxy on loopback",
    redis: `${masters.length} redis-server masters on loopback`,
    fs: "FileSystemStore (fsync on) + FileSynchronizer",
  });
  try {
    for (const chunks of [1, 2, 16]) {
      const workload = `s3: ${chunks}-chunk write transaction`;
      if (!workload.includes(args.filter)) continue;
      const options = {
        path: `/w${chunks}`,
        shape: [256, 256],
        chunkShape: [64, 64],
        dtype: "float32" as const,
        overwrite: true,
      };
      const arrays: Record<string, ZarrTxArray> = {
        "fs + file locks": await create(fsStore, { ...options, synchronizer: files }),
        "S3 + Redis (3 masters)": await create(s3Store, { ...options, synchronizer: redis }),
      };
      const selection = SELECTIONS[chunks] as Selection;
      let value = 0;
      const requests: number[] = [];
      const byOperation: Record<string, number> = {};
      const sides = Object.entries(arrays).map(([label, array]) => ({
        label,
        run: async () => {
          const isS3 = label.startsWith("S3");
          if (isS3) server.resetCounts();
          await set(array, selection, ++value);
          if (isS3) {
            requests.push(server.total());
            for (const [op, n] of Object.entries(server.counts()))
              byOperation[op] = (byOperation[op] ?? 0) + n;
          }
        },
      }));
      const times = await alternate(sides, repeats);
      // The warm-up run is counted too: divide by every run that was counted.
      const runs = requests.length;
      const perOperation = Object.fromEntries(
        Object.entries(byOperation).map(([op, n]) => [op, Math.round((n / runs) * 100) / 100]),
      );
      for (const line of compare(workload, "ms", "fs + file locks", times, {
        p99: true,
        extra: {
          "S3 + Redis (3 masters)": {
            s3RequestsPerTx: Math.round((requests.reduce((a, b) => a + b, 0) / runs) * 100) / 100,
            s3RequestsByOperation: perOperation,
          },
        },
      })) {
        emit(line);
      }
    }
  } finally {
    await Promise.all([redis.close(), files.close()]);
    s3Store.close();
    await Promise.all([server.stop(), stopRedisServers(masters)]);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
