/**
 * Redlock's weak spot: a master that restarts without persistence forgets the locks it granted. What
 * happens, and the mitigations docs/redis-synchronizer.md describes:
 * - one master restarted empty: the holder keeps its majority, and its next extension takes the keys back
 *   on the restarted master, which closes the window before a second restart can matter;
 * - two masters restarted empty at once, before the holder extends: a second holder gets in while the
 *   first still believes it holds the lease. The fence orders the two, so a store that checks fences
 *   refuses the stale writer, and the first one's next extension fails and aborts its signal;
 * - the same two masters brought back only after one TTL (delayed restart): no overlap at all.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isZarrTxError, LeaseLostError } from "../src/errors.js";
import { lockKey, lockScope } from "../src/sync/keys.js";
import { RedisSynchronizer } from "../src/sync/redis.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";

const TTL = 600;
const FAST = { retryDelayMs: 5, retryJitterMs: 5 } as const;

let servers: RedisServer[] = [];
beforeAll(async () => {
  servers = await startRedisServers(3);
});
afterAll(async () => {
  await stopRedisServers(servers);
});

function freshKey(): string {
  return lockKey(lockScope(`restart-${Math.random().toString(36).slice(2, 8)}`, "a"), 0);
}

async function exists(server: RedisServer, key: string): Promise<boolean> {
  const client = new Redis(server.url);
  try {
    return (await client.exists(key)) === 1;
  } finally {
    client.disconnect();
  }
}

/** A minimal fenced register, as a store with conditional writes would keep per object. */
class FencedRegister {
  #highest = -1n;
  value: string | undefined;
  write(fence: bigint, value: string): boolean {
    if (fence < this.#highest) return false;
    this.#highest = fence;
    this.value = value;
    return true;
  }
}

describe("RedisSynchronizer when masters restart empty", () => {
  it("one master restarted empty: the lease keeps its majority, and its next extension takes the key back there", async () => {
    const urls = servers.map((s) => s.url);
    const holder = new RedisSynchronizer({ masters: urls, ttlMs: TTL, ...FAST });
    const key = freshKey();
    /** Another process's try, on fresh connections (old ones may still be backing off after a restart). */
    const tryOther = async () => {
      const other = new RedisSynchronizer({ masters: urls, ttlMs: TTL, ...FAST });
      try {
        return await other.acquire([key], "exclusive", { timeoutMs: 200 }).then(
          () => "granted",
          (error: unknown) => (isZarrTxError(error) ? error.code : String(error)),
        );
      } finally {
        await other.close();
      }
    };
    const lease = await holder.acquire([key], "exclusive");
    await servers[0]!.restart();
    expect(await exists(servers[0]!, `zarr-tx:${key}:x`)).toBe(false);
    // Two of three masters still hold it: nobody else gets in.
    expect(await tryOther()).toBe("ERR_LOCK_TIMEOUT");
    // Within one extension period the holder has taken the key back on the restarted master...
    const deadline = performance.now() + TTL * 2;
    while (!(await exists(servers[0]!, `zarr-tx:${key}:x`)) && performance.now() < deadline) await sleep(20);
    expect(await exists(servers[0]!, `zarr-tx:${key}:x`)).toBe(true);
    // ...so a second master restarting empty now still leaves it a majority.
    await servers[1]!.restart();
    expect(await tryOther()).toBe("ERR_LOCK_TIMEOUT");
    expect(lease.signal.aborted).toBe(false);
    await lease.release();
    await holder.close();
  });

  it("two masters restarted empty at once: a second holder gets in; the fence refuses the first, whose next extension fails", async () => {
    const urls = servers.map((s) => s.url);
    // The holder does not extend on its own here: it stands for a process that is paused (or slow to
    // extend) while the two masters restart. An extension in time would take the keys back first.
    // A long TTL, so that the second grant surely falls within the first lease's validity even on a
    // loaded machine.
    const holder = new RedisSynchronizer({ masters: urls, ttlMs: 30_000, autoExtend: false, ...FAST });
    const key = freshKey();
    const register = new FencedRegister();
    const lease = await holder.acquire([key], "exclusive");
    await Promise.all([servers[0]!.restart(), servers[1]!.restart()]);
    // Another process, on fresh connections (old ones may still be backing off after the restart).
    const other = new RedisSynchronizer({ masters: urls, ttlMs: TTL, ...FAST });
    // The Redlock limit: the restarted majority has forgotten the lock, so another holder is granted
    // while the first lease is still within its validity and its signal has not fired.
    const second = await other.acquire([key], "exclusive", { timeoutMs: 15_000 });
    expect(lease.signal.aborted).toBe(false);
    // The fence orders them: a store that checks fences refuses the stale holder.
    expect(second.fence! > lease.fence!).toBe(true);
    expect(register.write(second.fence!, "second")).toBe(true);
    expect(register.write(lease.fence!, "first")).toBe(false);
    expect(register.value).toBe("second");
    // And the first holder learns it at its next extension: a majority now holds the key for another.
    await expect(lease.extend()).rejects.toBeInstanceOf(LeaseLostError);
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    await Promise.all([lease.release(), second.release()]);
    await Promise.all([holder.close(), other.close()]);
  });

  it("delayed restart (masters stay down for one TTL): the old lease is lost before anyone else can be granted", async () => {
    const urls = servers.map((s) => s.url);
    const holder = new RedisSynchronizer({ masters: urls, ttlMs: TTL, ...FAST });
    const other = new RedisSynchronizer({ masters: urls, ttlMs: TTL, quorumTimeoutMs: 100, ...FAST });
    const key = freshKey();
    const lease = await holder.acquire([key], "exclusive");
    let lostAt: number | undefined;
    lease.signal.addEventListener("abort", () => {
      lostAt = performance.now();
    });
    await Promise.all([servers[0]!.kill(), servers[1]!.kill()]);
    // While a majority is down nobody is granted anything, and the holder cannot extend.
    const down = await other.acquire([key], "exclusive").then(
      () => "granted",
      (error: unknown) => (isZarrTxError(error) ? error.code : String(error)),
    );
    expect(down).toBe("ERR_QUORUM_UNAVAILABLE");
    await sleep(TTL);
    await Promise.all([servers[0]!.restart(), servers[1]!.restart()]);
    // A fresh handle: `other`'s connections are still backing off between reconnection attempts.
    const third = new RedisSynchronizer({ masters: urls, ttlMs: TTL, ...FAST });
    const second = await third.acquire([key], "exclusive", { timeoutMs: 5000 });
    const grantedAt = performance.now();
    expect(lease.signal.aborted).toBe(true);
    expect(lostAt).toBeDefined();
    expect(lostAt!).toBeLessThan(grantedAt);
    expect(second.fence! > lease.fence!).toBe(true);
    await Promise.all([lease.release(), second.release()]);
    await Promise.all([holder.close(), other.close(), third.close()]);
  });
});
