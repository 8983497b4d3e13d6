/**
 * Lock latency per synchronizer against the key count (issue 8, goal 4): acquire + release of an
 * uncontended set of contiguous chunk keys of one array, exclusive, for 1 … 4096 keys, with
 * - the InProcessSynchronizer (the baseline of the ratios),
 * - the FileSynchronizer (Linux OFD byte-range locks; one lock file, opened and closed per lease),
 * - the RedisSynchronizer on 1 and on 3 masters (throw-away redis-server processes on loopback, started
 *   here; skipped with a note when redis-server is missing).
 * Each operation is timed on its own (median and p99 per key count); the synchronizers take turns in
 * rounds so that they see the same machine state. Units: µs per acquire + release.
 *
 *   npx tsx bench/locks.ts [--quick] [filter]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FileSynchronizer,
  InProcessSynchronizer,
  lockKey,
  lockScope,
  type Synchronizer,
} from "../src/index.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "../test/redis-harness.js";
import { compare, emit, note, parseArgs } from "./lib.js";

const args = parseArgs();
const KEY_COUNTS = args.quick ? [1, 16, 256, 4096] : [1, 4, 16, 64, 256, 1024, 4096];
const ROUNDS = args.quick ? 2 : 5;
/** Operations per round and synchronizer: about the same time per key count. */
function perRound(keys: number): number {
  const base = args.quick ? 100 : 400;
  return Math.max(args.quick ? 5 : 10, Math.floor(base / Math.sqrt(keys)));
}

const workload = (keys: number) =>
  `lock latency: acquire+release ${keys} contiguous chunk key${keys === 1 ? "" : "s"}, exclusive, uncontended`;

async function main(): Promise<void> {
  if (!workload(1).includes(args.filter) && !KEY_COUNTS.some((k) => workload(k).includes(args.filter)))
    return;
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-bench-locks-"));
  let servers: RedisServer[] = [];
  const syncs: [string, Synchronizer][] = [
    ["in-process", new InProcessSynchronizer()],
    ["file", new FileSynchronizer()],
  ];
  try {
    try {
      servers = await startRedisServers(3);
      const { RedisSynchronizer } = await import("../src/sync/redis.js");
      syncs.push([
        "redis, 1 master",
        new RedisSynchronizer({ masters: [servers[0]!.url], keyPrefix: "bench:" }),
      ]);
      syncs.push([
        "redis, 3 masters",
        new RedisSynchronizer({ masters: servers.map((s) => s.url), keyPrefix: "bench:" }),
      ]);
    } catch (error) {
      note({ bench: "locks", skipped: "redis", reason: (error as Error).message.split("\n")[0] });
    }
    note({
      bench: "locks setup",
      node: process.version,
      rounds: ROUNDS,
      synchronizers: syncs.map(([name]) => name),
    });
    // A file: scope, so the FileSynchronizer puts its lock file in the temp dir (<dir>/a/.zarr-tx/locks).
    const scope = lockScope(`file:${dir}`, "/a");
    for (const count of KEY_COUNTS) {
      if (!workload(count).includes(args.filter)) continue;
      const keys = Array.from({ length: count }, (_, i) => lockKey(scope, i));
      const samples: Record<string, number[]> = Object.fromEntries(syncs.map(([name]) => [name, []]));
      const n = perRound(count);
      const once = async (sync: Synchronizer) => {
        const t = performance.now();
        const lease = await sync.acquire(keys, "exclusive");
        await lease.release();
        return (performance.now() - t) * 1000;
      };
      for (const [, sync] of syncs) for (let i = 0; i < Math.min(20, n); i++) await once(sync); // warm-up
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? syncs : [...syncs].reverse();
        for (const [name, sync] of order) for (let i = 0; i < n; i++) samples[name]!.push(await once(sync));
      }
      for (const line of compare(workload(count), "us", "in-process", samples, { p99: true })) {
        emit({ ...line, keys: count });
      }
    }
  } finally {
    for (const [, sync] of syncs) await sync.close();
    if (servers.length > 0) await stopRedisServers(servers);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
