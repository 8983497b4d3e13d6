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
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "vitest";
import { crashSuite, VARIANTS } from "./crash-harness.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";
import { type S3TestServer, startS3Server } from "./s3-harness.js";

let s3: S3TestServer;
let redis: RedisServer[] = [];

/** Rigs by how their processes lock. */
const crash = crashSuite<"file" | "redis">({
  label: "crash.s3",
  tempParent: tmpdir(),
  tempPrefix: "zarr-tx-crash-s3-",
  start: async () => {
    [s3, redis] = await Promise.all([startS3Server(), startRedisServers(1)]);
  },
  stop: () => Promise.all([s3?.stop(), stopRedisServers(redis)]),
  configure: (dir, locks) => ({
    store: {
      kind: "s3",
      bucket: s3.createBucket(),
      prefix: "data.zarr",
      client: s3.clientConfig() as Record<string, unknown>,
    },
    sync:
      locks === "file"
        ? { kind: "file", lockDirectory: join(dir, "locks") }
        : { kind: "redis", masters: redis.map((r) => r.url), ttlMs: 1_000 },
  }),
});

describe("SIGKILLed writers on an S3Store", () => {
  it("v3 with file locks, random kills: every transaction all-or-nothing, readers never see one half-applied", async () => {
    await crash.run("v3 file-locks random", VARIANTS.v3, "file", (r) =>
      r.randomKillsChecked({ writers: 3, readers: 1, kills: 30, seed: 101, maxDelayMs: 150 }, "transaction"),
    );
  }, 240_000);

  it("v2 with Redis locks (1 s TTL), random kills, recovered by recover()", async () => {
    await crash.run("v2 redis random", VARIANTS.v2, "redis", (r) =>
      r.randomKillsChecked({ writers: 3, readers: 1, kills: 12, seed: 102, maxDelayMs: 200 }, "recover"),
    );
  }, 240_000);

  it("at every protocol step, cleanup included, a later read rolls the victim forward by itself", async () => {
    await crash.run("v3 protocol steps", VARIANTS.v3, "file", (r) =>
      r.crashAtPointsChecked(["journal-written", "apply-partial", "applied", "cleanup-partial"], [1, 2], 110),
    );
  }, 240_000);

  it("during recovery itself (recover() and a recovering transaction), sharded, with Redis locks", async () => {
    await crash.run("sharded recovery kills", VARIANTS.sharded, "redis", (r) =>
      r.crashDuringRecoveryChecked(120),
    );
  }, 240_000);
});
