/**
 * The Redis synchronizer's journal marks (`Lease.markJournal`, `clearJournal`, `journalHint`): a writer
 * marks its exclusive keys before it writes a journal entry; a later holder of any of those keys sees
 * "marked" until someone clears them, also after the marking writer crashed and its lease expired. This
 * is what lets S3 transactions skip LISTing the journal. The hint rides on the ACQUIRE script: checked
 * here by counting the scripts each master ran.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isZarrTxError } from "../src/errors.js";
import { lockKey, lockScope } from "../src/sync/keys.js";
import { RedisSynchronizer, type RedisSynchronizerOptions } from "../src/sync/redis.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";

const FAST = { retryDelayMs: 2, retryJitterMs: 3 } as const;

let servers: RedisServer[] = [];
const synchronizers: RedisSynchronizer[] = [];

beforeAll(async () => {
  servers = await startRedisServers(3);
});

afterAll(async () => {
  await Promise.all(synchronizers.map((s) => s.close()));
  await stopRedisServers(servers);
});

function synchronizer(options: Partial<RedisSynchronizerOptions> = {}): RedisSynchronizer {
  const s = new RedisSynchronizer({ masters: servers.map((m) => m.url), ...FAST, ...options });
  synchronizers.push(s);
  return s;
}

function keys(...slots: number[]): string[] {
  const scope = lockScope(`journal-test-${Math.random().toString(36).slice(2, 8)}`, "a");
  return slots.map((slot) => lockKey(scope, slot));
}

/** Acquires, releases, and returns the lease's hint. */
async function hintOf(
  sync: RedisSynchronizer,
  set: readonly string[],
  mode: "shared" | "exclusive",
): Promise<string> {
  const lease = await sync.acquire(set, mode);
  await lease.release();
  return lease.journalHint;
}

async function scriptCalls(server: RedisServer): Promise<number> {
  const client = new Redis(server.url);
  try {
    const info = await client.info("commandstats");
    let calls = 0;
    for (const match of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) calls += Number(match[2]);
    return calls;
  } finally {
    client.disconnect();
  }
}

describe("RedisSynchronizer journal marks", () => {
  it("a fresh key set is clean; a marked key stays marked after release until cleared", async () => {
    const sync = synchronizer();
    const [k1, k2, k3] = keys(1, 2, 3) as [string, string, string];
    const a = await sync.acquire([k1, k2], "exclusive");
    expect(a.journalHint).toBe("clean");
    await a.markJournal();
    await a.release();

    // Any key of the new set marked: "marked", in either mode; keys never marked: "clean".
    for (const [set, mode] of [
      [[k2], "exclusive"],
      [[k1, k3], "exclusive"],
      [[k1], "shared"],
    ] as const) {
      const lease = await sync.acquire(set, mode);
      expect(lease.journalHint, `${mode} ${set.join(",")}`).toBe("marked");
      await lease.release();
    }
    const other = await sync.acquire([k3], "exclusive");
    expect(other.journalHint).toBe("clean");
    await other.release();

    // Clearing needs the keys exclusively; a holder of k1 alone clears only k1.
    const b = await sync.acquire([k1], "exclusive");
    await b.clearJournal();
    await b.release();
    expect(await hintOf(sync, [k1], "exclusive")).toBe("clean");
    const c = await sync.acquire([k1, k2], "exclusive");
    expect(c.journalHint).toBe("marked");
    await c.clearJournal();
    await c.release();
    const d = await sync.acquireSet({ shared: [k1], exclusive: [k2] });
    expect(d.journalHint).toBe("clean");
    await d.release();
  });

  it("only exclusive keys are marked, and an empty lease is clean", async () => {
    const sync = synchronizer();
    const [k1, k2] = keys(1, 2) as [string, string];
    const lease = await sync.acquireSet({ shared: [k1], exclusive: [k2] });
    await lease.markJournal();
    await lease.release();
    expect(await hintOf(sync, [k1], "exclusive")).toBe("clean");
    expect(await hintOf(sync, [k2], "shared")).toBe("marked");
    const empty = await sync.acquire([], "exclusive");
    expect(empty.journalHint).toBe("clean");
    await empty.markJournal();
    await empty.release();
  });

  it("a writer that marks and dies: after its lease expires the next acquirer (another process's synchronizer) sees marked", async () => {
    const crashing = synchronizer({ ttlMs: 300, autoExtend: false });
    const [k1, k2] = keys(1, 2) as [string, string];
    const lease = await crashing.acquire([k1, k2], "exclusive");
    await lease.markJournal();
    // "Crash": never release, never clear; the keys expire in Redis after the TTL.
    const next = synchronizer();
    const started = performance.now();
    const taken = await next.acquire([k2], "exclusive", { timeoutMs: 5_000 });
    expect(performance.now() - started).toBeGreaterThan(150);
    expect(lease.signal.aborted).toBe(true);
    expect(taken.journalHint).toBe("marked");
    await taken.clearJournal();
    await taken.release();
    const after = await next.acquire([k2], "exclusive");
    expect(after.journalHint).toBe("clean");
    await after.release();
    // k1 was not cleared by the holder of k2.
    const k1Lease = await next.acquire([k1], "exclusive");
    expect(k1Lease.journalHint).toBe("marked");
    await k1Lease.clearJournal();
    await k1Lease.release();
  });

  it("marking a lost lease throws ERR_LEASE_LOST and marks nothing", async () => {
    const sync = synchronizer({ ttlMs: 100, autoExtend: false });
    const [k1] = keys(1) as [string];
    const lease = await sync.acquire([k1], "exclusive");
    await sleep(150);
    const error = await lease.markJournal().catch((e: unknown) => e);
    expect(isZarrTxError(error, "ERR_LEASE_LOST")).toBe(true);
    await lease.release();
    const next = await synchronizer().acquire([k1], "exclusive");
    expect(next.journalHint).toBe("clean");
    await next.release();
  });

  it("the hint costs no extra script call: one ACQUIRE and one RELEASE per master per transaction", async () => {
    const sync = synchronizer();
    const set = keys(...Array.from({ length: 16 }, (_, i) => i));
    const warm = await sync.acquire(set, "exclusive");
    await warm.release();
    const before = await Promise.all(servers.map(scriptCalls));
    for (let i = 0; i < 10; i++) {
      const lease = await sync.acquire(set, "exclusive");
      expect(lease.journalHint).toBe("clean");
      await lease.release();
    }
    const after = await Promise.all(servers.map(scriptCalls));
    expect(after.map((n, i) => n - (before[i] as number))).toEqual([20, 20, 20]);
  });

  it("with one master down marks still reach a majority and are seen; with two down markJournal fails", async () => {
    const sync = synchronizer({ quorumTimeoutMs: 500, masterTimeoutMs: 200 });
    const [k1, k2] = keys(1, 2) as [string, string];
    const third = servers[2] as RedisServer;
    await third.kill();
    try {
      const lease = await sync.acquire([k1], "exclusive");
      await lease.markJournal();
      await lease.release();
      const next = await sync.acquire([k1], "exclusive");
      expect(next.journalHint).toBe("marked");
      await next.clearJournal();
      await next.release();

      const held = await sync.acquire([k2], "exclusive");
      const second = servers[1] as RedisServer;
      second.pause();
      try {
        const error = await held.markJournal().catch((e: unknown) => e);
        expect(isZarrTxError(error, "ERR_QUORUM_UNAVAILABLE"), String(error)).toBe(true);
      } finally {
        second.resume();
      }
      await held.release();
    } finally {
      await third.restart();
    }
  });
});
