/**
 * RedisSynchronizer latency: acquire + release of an uncontended exclusive key set, for 1, 16, 256 and
 * 4096 keys on 1 and 3 masters, side by side with the floor: one raw EVALSHA carrying the same KEYS
 * (a script that only returns #KEYS), sent to every master in parallel, as a Redlock attempt is. An
 * acquire + release is two such round trips plus the script work, so about 2× the floor is the target.
 * Starts its own redis-server processes on free loopback ports (test/redis-harness.ts).
 *
 *   npm run bench:redis            # all
 *   npm run bench:redis -- 16      # only key counts containing "16"
 *   npm run bench:redis -- --quick # fewer rounds and samples
 *
 * Prints JSON lines in the schema of bench/lib.ts, two per (masters, keys): the synchronizer's acquire +
 * release and the floor, each with p50 (`median`), p99 and the spread of the per-round medians (the
 * runs alternate in rounds so that both sides see the same machine state); the ratio is against the
 * floor (floor time ÷ ours: 0.5 means twice the floor).
 */
import { Redis } from "ioredis";
import { lockKey, lockScope } from "../src/sync/keys.js";
import { RedisSynchronizer } from "../src/sync/redis.js";
import { startRedisServers, stopRedisServers } from "../test/redis-harness.js";
import { emit, note, parseArgs, round } from "./lib.js";

const args = parseArgs();
const filter = args.filter;
const KEY_COUNTS = [1, 16, 256, 4096];
const ROUNDS = args.quick ? 2 : 5;
/** Operations per round, per key count: enough samples for a p99 without a minutes-long run. */
const PER_ROUND: Record<number, number> = args.quick
  ? { 1: 100, 16: 100, 256: 30, 4096: 4 }
  : { 1: 800, 16: 800, 256: 200, 4096: 20 };

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

function summary(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: +quantile(sorted, 0.5).toFixed(4), p99: +quantile(sorted, 0.99).toFixed(4) };
}

function median(values: number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

note({ bench: "redis-sync setup", node: process.version, rounds: ROUNDS });
const servers = await startRedisServers(3);
try {
  for (const masterCount of [1, 3]) {
    const urls = servers.slice(0, masterCount).map((s) => s.url);
    const sync = new RedisSynchronizer({ masters: urls, keyPrefix: "bench:" });
    const raw = urls.map((url) => new Redis(url));
    const floorScript = "return #KEYS";
    const shas = await Promise.all(
      raw.map((client) => client.script("LOAD", floorScript) as Promise<string>),
    );
    for (const count of KEY_COUNTS) {
      if (!String(count).includes(filter)) continue;
      const scope = lockScope("file:/data/bench.zarr", `/m${masterCount}k${count}`);
      const keys = Array.from({ length: count }, (_, i) => lockKey(scope, i));
      const redisKeys = keys.map((key) => `bench:${key}`);
      const total: number[] = [];
      const acquire: number[] = [];
      const release: number[] = [];
      const floor: number[] = [];
      const roundMedians: { ours: number[]; floor: number[] } = { ours: [], floor: [] };
      const ours = async (record: boolean) => {
        const t0 = performance.now();
        const lease = await sync.acquire(keys, "exclusive");
        const t1 = performance.now();
        await lease.release();
        const t2 = performance.now();
        if (record) {
          acquire.push(t1 - t0);
          release.push(t2 - t1);
          total.push(t2 - t0);
        }
      };
      const raw1 = async (record: boolean) => {
        const t0 = performance.now();
        await Promise.all(
          raw.map((client, i) => client.evalsha(shas[i]!, redisKeys.length, ...redisKeys, "x")),
        );
        if (record) floor.push(performance.now() - t0);
      };
      const n = PER_ROUND[count]!;
      // Warm up: JIT, connections, script caches.
      for (let i = 0; i < Math.min(200, n); i++) {
        await ours(false);
        await raw1(false);
      }
      for (let round = 0; round < ROUNDS; round++) {
        const sides = round % 2 === 0 ? [ours, raw1] : [raw1, ours];
        for (const side of sides) {
          const before = side === ours ? total.length : floor.length;
          for (let i = 0; i < n; i++) await side(true);
          const samples = side === ours ? total.slice(before) : floor.slice(before);
          (side === ours ? roundMedians.ours : roundMedians.floor).push(median(samples));
        }
      }
      const t = summary(total);
      const f = summary(floor);
      const workload = `redis acquire+release ${count} key${count === 1 ? "" : "s"}, exclusive, uncontended, ${masterCount} master${masterCount === 1 ? "" : "s"}`;
      const spread = (values: number[]) => [round(Math.min(...values)), round(Math.max(...values))] as const;
      emit({
        workload,
        variant: "RedisSynchronizer",
        n: total.length,
        median: t.p50,
        p99: t.p99,
        spread: spread(roundMedians.ours),
        spread_of: "per-round medians",
        unit: "ms",
        ratio: round(f.p50 / t.p50, 3),
        baseline: "floor: raw EVALSHA to every master",
        masters: masterCount,
        keys: count,
        acquire_p50_ms: summary(acquire).p50,
        release_p50_ms: summary(release).p50,
      });
      emit({
        workload,
        variant: "floor: raw EVALSHA to every master",
        n: floor.length,
        median: f.p50,
        p99: f.p99,
        spread: spread(roundMedians.floor),
        spread_of: "per-round medians",
        unit: "ms",
        ratio: 1,
        baseline: "floor: raw EVALSHA to every master",
        masters: masterCount,
        keys: count,
      });
    }
    for (const client of raw) client.disconnect();
    await sync.close();
  }
} finally {
  await stopRedisServers(servers);
}
