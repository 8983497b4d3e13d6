/**
 * Crash atomicity on S3, with real processes and SIGKILL: the runs of test/crash.fs.test.ts against an
 * S3Store on the test S3 server (test/s3-harness.ts, in this process). On S3 the journal applies by
 * conditional server-side copy and deletes its objects afterwards, so every protocol step fires,
 * cleanup included.
 *
 * Processes share their locks either through FileSynchronizer with a common lock directory (one host:
 * the kernel frees a dead holder's locks at once, so kills cost no waiting) or through
 * RedisSynchronizer (the production set-up for S3: a dead holder's locks expire after the TTL, kept short
 * here, and the journal marks spare transactions a LIST of the journal).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StoreConfig, SyncConfig } from "./crash-child.js";
import {
  type Bundles,
  buildBundles,
  CrashRig,
  killAll,
  type RunStats,
  VARIANTS,
  type Variant,
} from "./crash-harness.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";
import { type S3TestServer, startS3Server } from "./s3-harness.js";

let bundles: Bundles;
let s3: S3TestServer;
let redis: RedisServer[] = [];
const dirs: string[] = [];
const rigs: CrashRig[] = [];
let totalKills = 0;

beforeAll(async () => {
  [bundles, s3, redis] = await Promise.all([buildBundles(), startS3Server(), startRedisServers(1)]);
});
afterEach(async () => {
  killAll();
  await Promise.all(rigs.splice(0).map((rig) => rig.tearDown()));
});
afterAll(async () => {
  console.log(`crash.s3: ${totalKills} kills in all`);
  await Promise.all([
    ...dirs.map((d) => rm(d, { recursive: true, force: true })),
    bundles?.dispose(),
    s3?.stop(),
    stopRedisServers(redis),
  ]);
});

async function rig(variant: Variant, locks: "file" | "redis"): Promise<CrashRig> {
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-crash-s3-"));
  dirs.push(dir);
  const store: StoreConfig = {
    kind: "s3",
    bucket: s3.createBucket(),
    prefix: "data.zarr",
    client: s3.clientConfig() as Record<string, unknown>,
  };
  const sync: SyncConfig =
    locks === "file"
      ? { kind: "file", lockDirectory: join(dir, "locks") }
      : { kind: "redis", masters: redis.map((r) => r.url), ttlMs: 1_000 };
  const r = new CrashRig(bundles, store, sync, variant, dir);
  await r.setUp();
  rigs.push(r);
  return r;
}

function report(name: string, stats: RunStats, startedAt: number): void {
  totalKills += stats.kills;
  console.log(
    `crash.s3 ${name}: ${JSON.stringify({ ...stats, seconds: Math.round((performance.now() - startedAt) / 100) / 10 })}`,
  );
}

describe("SIGKILLed writers on an S3Store", () => {
  it("v3 with file locks, random kills: every transaction all-or-nothing, readers never see one half-applied", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.v3, "file");
    await r.randomKills({ writers: 3, readers: 1, kills: 30, seed: 101, maxDelayMs: 150 });
    const stats = await r.recoverAndCheck("transaction");
    expect(stats.kills).toBeGreaterThanOrEqual(30);
    report("v3 file-locks random", stats, started);
  }, 240_000);

  it("v2 with Redis locks (1 s TTL), random kills, recovered by recover()", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.v2, "redis");
    await r.randomKills({ writers: 3, readers: 1, kills: 12, seed: 102, maxDelayMs: 200 });
    const stats = await r.recoverAndCheck("recover");
    expect(stats.kills).toBeGreaterThanOrEqual(12);
    report("v2 redis random", stats, started);
  }, 240_000);

  it("at every protocol step, cleanup included, a later read rolls the victim forward by itself", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.v3, "file");
    const points = ["journal-written", "apply-partial", "applied", "cleanup-partial"];
    await r.crashAtPoints(points, [1, 2], 110);
    const stats = await r.recoverAndCheck("recover");
    expect(stats.kills).toBe(points.length * 2);
    report("v3 protocol steps", stats, started);
  }, 240_000);

  it("during recovery itself (recover() and a recovering transaction), sharded, with Redis locks", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.sharded, "redis");
    await r.crashDuringRecovery(120);
    const stats = await r.recoverAndCheck("recover");
    expect(stats.kills).toBe(6);
    report("sharded recovery kills", stats, started);
  }, 240_000);
});
