/**
 * RedisSynchronizer: the shared conformance suite on 1 and on 3 masters (two synchronizer instances
 * as the two handles, so they meet only in Redis), then what is specific to Redis: options, scripts,
 * what it leaves in Redis, lease expiry and extension, lost masters and credentials in messages.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isZarrTxError, LeaseLostError, LockError } from "../src/errors.js";
import { lockKey, lockScope } from "../src/sync/keys.js";
import { RedisSynchronizer, type RedisSynchronizerOptions } from "../src/sync/redis.js";
import { describeSynchronizer } from "./conformance/synchronizer.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";

/** Fast polling for tests: contention is resolved by retries, and the suite waits for many of them. */
const FAST = { retryDelayMs: 2, retryJitterMs: 3 } as const;

for (const count of [1, 3]) {
  describe(`RedisSynchronizer on ${count} master${count === 1 ? "" : "s"}`, () => {
    let servers: RedisServer[] = [];
    beforeAll(async () => {
      servers = await startRedisServers(count);
    });
    afterAll(async () => {
      await stopRedisServers(servers);
    });

    describeSynchronizer(`RedisSynchronizer (${count} master${count === 1 ? "" : "s"})`, {
      async create() {
        const options: RedisSynchronizerOptions = { masters: servers.map((s) => s.url), ...FAST };
        const a = new RedisSynchronizer(options);
        const b = new RedisSynchronizer(options);
        return { a, b, cleanup: async () => void (await Promise.all([a.close(), b.close()])) };
      },
      stressRuns: 10,
    });
  });
}

/** The keys of a Redis server that match `pattern`, for checking what the synchronizer leaves behind. */
async function keysOf(server: RedisServer, pattern: string): Promise<string[]> {
  const client = new Redis(server.url);
  try {
    return (await client.keys(pattern)).sort();
  } finally {
    client.disconnect();
  }
}

function scopeKeys(name: string, ...slots: number[]): string[] {
  const scope = lockScope(`redis-test-${name}-${Math.random().toString(36).slice(2, 8)}`, "a");
  return slots.map((slot) => lockKey(scope, slot));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (error: unknown) => error,
  );
}

describe("RedisSynchronizer specifics", () => {
  let servers: RedisServer[] = [];
  const urls = () => servers.map((s) => s.url);
  beforeAll(async () => {
    servers = await startRedisServers(3);
  });
  afterAll(async () => {
    await stopRedisServers(servers);
  });

  it("rejects bad options with InvalidArgumentError, naming no URL", () => {
    const bad: [string, () => unknown][] = [
      ["no masters", () => new RedisSynchronizer({ masters: [] })],
      ["two masters", () => new RedisSynchronizer({ masters: urls().slice(0, 2) })],
      ["duplicate", () => new RedisSynchronizer({ masters: [urls()[0]!, urls()[1]!, urls()[0]!] })],
      ["bad URL", () => new RedisSynchronizer({ masters: ["not a url with s3cr3t"] })],
      ["http URL", () => new RedisSynchronizer({ masters: ["http://user:s3cr3t@localhost:1"] })],
      ["ttl", () => new RedisSynchronizer({ masters: urls(), ttlMs: -1 })],
      ["drift", () => new RedisSynchronizer({ masters: urls(), driftFactor: 2 })],
      ["retryCount", () => new RedisSynchronizer({ masters: urls(), retryCount: 1.5 })],
      ["delay vs ttl", () => new RedisSynchronizer({ masters: urls(), ttlMs: 100, retryDelayMs: 60 })],
    ];
    for (const [label, make] of bad) {
      let error: unknown;
      try {
        make();
      } catch (caught) {
        error = caught;
      }
      expect(isZarrTxError(error, "ERR_INVALID_ARGUMENT"), label).toBe(true);
      expect(String((error as Error).message)).not.toContain("s3cr3t");
    }
  });

  it("leaves nothing in Redis but the fence register once leases are released and waiters gave up", async () => {
    const sync = new RedisSynchronizer({ masters: urls(), keyPrefix: "leftover:", ...FAST });
    const other = new RedisSynchronizer({ masters: urls(), keyPrefix: "leftover:", ...FAST });
    const [k1, k2, k3] = scopeKeys("leftover", 1, 2, 3);
    const writer = await sync.acquireSet({ exclusive: [k1!], shared: [k2!] });
    const reader = await other.acquire([k2!, k3!], "shared");
    // A waiter that times out leaves intents while waiting, and must take them away.
    await rejection(other.acquire([k1!, k3!], "exclusive", { timeoutMs: 50 }));
    const during = await keysOf(servers[0]!, "leftover:*");
    expect(during).toEqual(expect.arrayContaining([`leftover:${k1}:x`, `leftover:${k2}:s`]));
    await Promise.all([writer.release(), reader.release()]);
    for (const server of servers) expect(await keysOf(server, "leftover:*")).toEqual(["leftover:fence"]);
    await Promise.all([sync.close(), other.close()]);
  });

  it("retryCount bounds the attempts: ERR_LOCK_TIMEOUT, nothing held", async () => {
    const holder = new RedisSynchronizer({ masters: urls(), ...FAST });
    const other = new RedisSynchronizer({ masters: urls(), retryCount: 2, ...FAST });
    const [k1, k2] = scopeKeys("retries", 1, 2);
    const lease = await holder.acquire([k2!], "exclusive");
    const error = await rejection(other.acquire([k1!, k2!], "exclusive"));
    expect(isZarrTxError(error, "ERR_LOCK_TIMEOUT")).toBe(true);
    expect((error as Error).message).toContain("3 attempts");
    await (await holder.acquire([k1!], "exclusive", { timeoutMs: 1000 })).release();
    await lease.release();
    await Promise.all([holder.close(), other.close()]);
  });

  it("a lease carries a bigint fence that grows across holders, also across handles", async () => {
    const a = new RedisSynchronizer({ masters: urls(), ...FAST });
    const b = new RedisSynchronizer({ masters: urls(), ...FAST });
    const [k] = scopeKeys("fence", 1);
    let previous = 0n;
    for (let i = 0; i < 20; i++) {
      const lease = await (i % 2 === 0 ? a : b).acquire([k!], "exclusive");
      expect(typeof lease.fence).toBe("bigint");
      expect(lease.fence! > previous).toBe(true);
      previous = lease.fence!;
      await lease.release();
    }
    await Promise.all([a.close(), b.close()]);
  });

  it("falls back to EVAL after NOSCRIPT (a flushed script cache) and keeps working", async () => {
    const sync = new RedisSynchronizer({ masters: urls(), ...FAST });
    const [k] = scopeKeys("noscript", 1);
    await (await sync.acquire([k!], "exclusive")).release();
    for (const server of servers) {
      const admin = new Redis(server.url);
      await admin.script("FLUSH");
      admin.disconnect();
    }
    const lease = await sync.acquire([k!], "exclusive", { timeoutMs: 2000 });
    await lease.release();
    await sync.close();
  });

  it("without extension, the lease expires: its signal aborts with LeaseLostError and others get the keys", async () => {
    const ttlMs = 300;
    const holder = new RedisSynchronizer({ masters: urls(), ttlMs, autoExtend: false, ...FAST });
    const other = new RedisSynchronizer({ masters: urls(), ...FAST });
    const [k] = scopeKeys("expiry", 1);
    const lease = await holder.acquire([k!], "exclusive");
    const started = performance.now();
    const aborted = new Promise<number>((resolve) =>
      lease.signal.addEventListener("abort", () => resolve(performance.now() - started)),
    );
    const next = await other.acquire([k!], "exclusive", { timeoutMs: 5000 });
    // The new holder never overlaps the old lease's validity: by the time it is granted, the old lease
    // reads as lost (the signal getter checks the clocks, whatever the timers are doing).
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(await aborted).toBeLessThan(ttlMs + 200);
    expect(next.fence! > lease.fence!).toBe(true);
    await expect(lease.extend()).rejects.toBeInstanceOf(LeaseLostError);
    // Releasing the expired lease must not free the new holder's lock.
    await lease.release();
    await expect(holder.acquire([k!], "shared", { timeoutMs: 50 })).rejects.toBeInstanceOf(LockError);
    await next.release();
    await Promise.all([holder.close(), other.close()]);
  });

  it("automatic extension keeps a lease for many TTLs", async () => {
    const ttlMs = 200;
    const holder = new RedisSynchronizer({ masters: urls(), ttlMs, ...FAST });
    const other = new RedisSynchronizer({ masters: urls(), ...FAST });
    const [k] = scopeKeys("extend", 1);
    const lease = await holder.acquire([k!], "exclusive");
    await sleep(ttlMs * 4);
    expect(lease.signal.aborted).toBe(false);
    await expect(other.acquire([k!], "shared", { timeoutMs: 50 })).rejects.toBeInstanceOf(LockError);
    await lease.release();
    const next = await other.acquire([k!], "exclusive", { timeoutMs: 1000 });
    await next.release();
    await Promise.all([holder.close(), other.close()]);
  });

  it("an explicit extend() renews a lease that does not extend itself", async () => {
    const ttlMs = 200;
    const holder = new RedisSynchronizer({ masters: urls(), ttlMs, autoExtend: false, ...FAST });
    const [k] = scopeKeys("manual", 1);
    const lease = await holder.acquire([k!], "exclusive");
    for (let i = 0; i < 4; i++) {
      await sleep(ttlMs / 2);
      await lease.extend();
    }
    expect(lease.signal.aborted).toBe(false);
    await lease.release();
    await expect(lease.extend()).rejects.toBeInstanceOf(LeaseLostError);
    await holder.close();
  });

  it("a Redis Cluster master needs a hash tag in keyPrefix", async () => {
    const cluster = new Cluster([{ host: "127.0.0.1", port: servers[0]!.port }], { lazyConnect: true });
    try {
      expect(() => new RedisSynchronizer({ masters: [cluster] })).toThrow(/hash tag/);
      const sync = new RedisSynchronizer({ masters: [cluster], keyPrefix: "{zarr-tx}:" });
      await sync.close();
    } finally {
      cluster.disconnect();
    }
  });

  it("works with ioredis clients passed in, and leaves them open on close", async () => {
    const clients = servers.map((s) => new Redis(s.url));
    const sync = new RedisSynchronizer({ masters: clients, ...FAST });
    const [k] = scopeKeys("clients", 1);
    const lease = await sync.acquire([k!], "exclusive");
    expect(await clients[0]!.exists(`zarr-tx:${k}:x`)).toBe(1);
    await lease.release();
    await sync.close();
    expect(await clients[0]!.ping()).toBe("PONG");
    for (const client of clients) client.disconnect();
  });

  it("five masters: two down still grant, three down refuse with ERR_QUORUM_UNAVAILABLE", async () => {
    const five = await startRedisServers(5);
    try {
      const sync = new RedisSynchronizer({ masters: five.map((s) => s.url), quorumTimeoutMs: 300, ...FAST });
      expect(sync.quorum).toBe(3);
      const [k] = scopeKeys("five", 1);
      await (await sync.acquire([k!], "exclusive")).release();
      await Promise.all([five[0]!.kill(), five[1]!.kill()]);
      const lease = await sync.acquire([k!], "exclusive", { timeoutMs: 2000 });
      expect(lease.signal.aborted).toBe(false);
      await lease.release();
      await five[2]!.kill();
      const error = await rejection(sync.acquire([k!], "exclusive"));
      expect(isZarrTxError(error, "ERR_QUORUM_UNAVAILABLE")).toBe(true);
      await sync.close();
    } finally {
      await stopRedisServers(five);
    }
  });

  it("a master that hangs (SIGSTOP) costs at most masterTimeoutMs, and what it runs after resuming leaves nothing behind", async () => {
    const sync = new RedisSynchronizer({
      masters: urls(),
      masterTimeoutMs: 100,
      keyPrefix: "hang:",
      ...FAST,
    });
    const [k1, k2] = scopeKeys("hang", 1, 2);
    await (await sync.acquire([k1!], "exclusive")).release();
    servers[0]!.pause();
    try {
      const started = performance.now();
      // A majority of the other two grants without waiting for the hung master.
      const lease = await sync.acquireSet({ exclusive: [k1!], shared: [k2!] });
      await lease.release();
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      servers[0]!.resume();
    }
    // The hung master ran ACQUIRE and then RELEASE, in order, once it resumed.
    const deadline = performance.now() + 2000;
    let left = await keysOf(servers[0]!, "hang:*");
    while (left.length > 1 && performance.now() < deadline) {
      await sleep(20);
      left = await keysOf(servers[0]!, "hang:*");
    }
    expect(left, JSON.stringify(left)).toEqual(["hang:fence"]);
    await sync.close();
  });

  it("does not put a password from a URL into error messages", async () => {
    // A master that refuses the connection: its URL carries a password that must not leak.
    const dead = "redis://user:hunter2-secret@127.0.0.1:1";
    const sync = new RedisSynchronizer({
      masters: [dead],
      quorumTimeoutMs: 200,
      masterTimeoutMs: 100,
      ...FAST,
    });
    const error = await rejection(sync.acquire(scopeKeys("secret", 1), "exclusive"));
    expect(isZarrTxError(error, "ERR_QUORUM_UNAVAILABLE")).toBe(true);
    const text = `${String(error)} ${JSON.stringify(error)} ${String((error as Error).cause ?? "")}`;
    expect(text).not.toContain("hunter2");
    await sync.close();
  });
});
