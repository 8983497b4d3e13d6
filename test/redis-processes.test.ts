/**
 * RedisSynchronizer across real processes: worker processes (test/redis-worker.ts, run with
 * `process.execPath --import tsx`) share one FileSystemStore array and meet only in Redis. The #857
 * diagonal and counter workloads, then the faults: a master killed mid-run, a majority killed, and a
 * lease holder stopped (SIGSTOP) past its TTL.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, FileSystemStore, get, InProcessSynchronizer, open, transaction } from "../src/index.js";
import { RedisSynchronizer } from "../src/sync/redis.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";
import type { WorkerConfig, WorkerMessage } from "./redis-worker.js";
import { counterRegion, countTornDiagonals, seededRandom } from "./workloads.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORKER = fileURLToPath(new URL("./redis-worker.ts", import.meta.url));
const WORKERS = 4;

interface RunningWorker {
  readonly child: ChildProcess;
  /** Resolves with the worker's last message ("result" or "failed"), or a "failed" if it died. */
  readonly result: Promise<WorkerMessage>;
  /** Messages as they come. */
  readonly messages: WorkerMessage[];
}

const children = new Set<ChildProcess>();

function spawnWorker(config: WorkerConfig, onMessage?: (message: WorkerMessage) => void): RunningWorker {
  const child = fork(WORKER, [JSON.stringify(config)], {
    cwd: ROOT,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.add(child);
  const messages: WorkerMessage[] = [];
  const result = new Promise<WorkerMessage>((resolve) => {
    let last: WorkerMessage | undefined;
    child.on("message", (message: WorkerMessage) => {
      messages.push(message);
      if (message.type === "result" || message.type === "failed") last = message;
      onMessage?.(message);
    });
    child.on("exit", (code, signal) => {
      children.delete(child);
      resolve(
        last ?? {
          type: "failed",
          id: config.id,
          message: `worker exited (${code ?? signal}) without a result`,
        },
      );
    });
  });
  return { child, result, messages };
}

function expectResult(message: WorkerMessage): Extract<WorkerMessage, { type: "result" }> {
  if (message.type !== "result")
    expect.fail(`worker failed: ${"message" in message ? message.message : message.type}`);
  return message;
}

let servers: RedisServer[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  servers = await startRedisServers(3);
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await stopRedisServers(servers);
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function newArrayDir(
  shape: number[],
  chunkShape: number[],
): Promise<{ dir: string; store: FileSystemStore }> {
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-redis-proc-"));
  dirs.push(dir);
  const store = new FileSystemStore(dir, { fsync: false });
  await create(store, { path: "/a", shape, chunkShape, dtype: "int32" });
  return { dir, store };
}

/** Reads the whole array with an in-process synchronizer: no Redis needed to check the result. */
function readAll(store: FileSystemStore) {
  return open(store, { path: "/a", synchronizer: new InProcessSynchronizer() });
}

function expectedCounts(shape: number[], rounds: number, seed: number): Int32Array {
  const expected = new Int32Array(shape[0]! * shape[1]!);
  for (let w = 0; w < WORKERS; w++) {
    const random = seededRandom(seed + w);
    for (let i = 0; i < rounds; i++) {
      const { start, stop } = counterRegion(shape, random);
      for (let r = start[0]!; r < stop[0]!; r++)
        for (let c = start[1]!; c < stop[1]!; c++) expected[r * shape[1]! + c]!++;
    }
  }
  return expected;
}

describe("RedisSynchronizer across 4 worker processes with a FileSystemStore", () => {
  it("counter on 1 master: no increment is lost", async () => {
    const shape = [12, 12];
    const rounds = 40;
    const seed = 7000;
    const { dir, store } = await newArrayDir(shape, [4, 4]);
    const workers = Array.from({ length: WORKERS }, (_, id) =>
      spawnWorker({
        job: "counter",
        id,
        workers: WORKERS,
        masters: [servers[0]!.url],
        dir,
        path: "/a",
        rounds,
        seed,
      }),
    );
    const results = (await Promise.all(workers.map((w) => w.result))).map(expectResult);
    expect(results.map((r) => r.done)).toEqual(Array(WORKERS).fill(rounds));
    const { data } = await get(await readAll(store));
    const expected = expectedCounts(shape, rounds, seed);
    let lost = 0;
    for (let i = 0; i < expected.length; i++) lost += expected[i]! - (data as Int32Array)[i]!;
    expect(lost).toBe(0);
    expect(Array.from(data as Int32Array)).toEqual(Array.from(expected));
  });

  // A generous timeout: it takes ~2 s, but once took over 60 s on a loaded machine (see the closing note
  // of issue 4); the run must complete, however slowly.
  it("counter on 3 masters, one master killed mid-run: the run completes and no increment is lost", {
    timeout: 180_000,
  }, async () => {
    const shape = [12, 12];
    const rounds = 50;
    const seed = 8000;
    const { dir, store } = await newArrayDir(shape, [4, 4]);
    let progress = 0;
    let killed: Promise<void> | undefined;
    const victim = servers[1]!;
    const workers = Array.from({ length: WORKERS }, (_, id) =>
      spawnWorker(
        {
          job: "counter",
          id,
          workers: WORKERS,
          masters: servers.map((s) => s.url),
          dir,
          path: "/a",
          rounds,
          seed,
        },
        (message) => {
          if (message.type !== "progress") return;
          progress += 10;
          // A quarter of the way through, master 2 dies (SIGKILL: no goodbye, all its locks gone).
          if (killed === undefined && progress >= (WORKERS * rounds) / 4) killed = victim.kill();
        },
      ),
    );
    const results = (await Promise.all(workers.map((w) => w.result))).map(expectResult);
    expect(killed, "the master was killed during the run").toBeDefined();
    await killed;
    expect(results.map((r) => r.done)).toEqual(Array(WORKERS).fill(rounds));
    const { data } = await get(await readAll(store));
    const expected = expectedCounts(shape, rounds, seed);
    let lost = 0;
    for (let i = 0; i < expected.length; i++) lost += expected[i]! - (data as Int32Array)[i]!;
    expect(lost).toBe(0);
    await victim.restart();
  });

  it("diagonal (#857) on 3 masters: no reader in any process ever sees a torn diagonal", async () => {
    const { dir, store } = await newArrayDir([10, 10], [2, 2]);
    const rounds = 25;
    const workers = Array.from({ length: WORKERS }, (_, id) =>
      spawnWorker({
        job: "diagonal",
        id,
        workers: WORKERS,
        masters: servers.map((s) => s.url),
        dir,
        path: "/a",
        rounds,
      }),
    );
    const results = (await Promise.all(workers.map((w) => w.result))).map(expectResult);
    const torn = results.reduce((sum, r) => sum + r.torn, 0);
    const reads = results.reduce((sum, r) => sum + r.reads, 0);
    expect({ torn, reads }).toEqual({ torn: 0, reads: WORKERS * rounds });
    expect(await countTornDiagonals(await readAll(store))).toBe(0);
  });

  it("two of three masters killed: every worker's next acquisition fails in bounded time with ERR_QUORUM_UNAVAILABLE, nothing partial is written", async () => {
    const { dir, store } = await newArrayDir([10, 10], [2, 2]);
    const ttlMs = 1000;
    const quorumTimeoutMs = 500;
    let killedAt: number | undefined;
    let kills: Promise<void> | undefined;
    let progress = 0;
    const workers = Array.from({ length: WORKERS }, (_, id) =>
      spawnWorker(
        {
          job: "diagonal",
          id,
          workers: WORKERS,
          masters: servers.map((s) => s.url),
          dir,
          path: "/a",
          rounds: 0,
          untilError: true,
          ttlMs,
          quorumTimeoutMs,
        },
        (message) => {
          if (message.type !== "progress") return;
          progress++;
          if (kills === undefined && progress >= WORKERS) {
            killedAt = Date.now();
            kills = Promise.all([servers[0]!.kill(), servers[2]!.kill()]).then(() => undefined);
          }
        },
      ),
    );
    const results = (await Promise.all(workers.map((w) => w.result))).map(expectResult);
    await kills;
    expect(killedAt).toBeDefined();
    for (const result of results) {
      expect(result.stoppedBy, `worker ${result.id}`).toBeDefined();
      // A transaction that held a lease when the masters died may still commit (its lease stays valid
      // until its deadline) or lose it; the next acquisition fails for want of a quorum.
      expect(["ERR_QUORUM_UNAVAILABLE", "ERR_LEASE_LOST"]).toContain(result.stoppedBy!.code);
      expect(result.stoppedBy!.at - killedAt!).toBeLessThan(quorumTimeoutMs + ttlMs + 2000);
      expect(result.torn).toBe(0);
    }
    expect(results.some((r) => r.stoppedBy!.code === "ERR_QUORUM_UNAVAILABLE")).toBe(true);
    // Whatever was in flight, every diagonal is whole: nothing was written without a valid lease.
    expect(await countTornDiagonals(await readAll(store))).toBe(0);
    await Promise.all([servers[0]!.restart(), servers[2]!.restart()]);
  });

  it("a lease holder stopped (SIGSTOP) past its TTL: its signal fires, its commit is refused, the newer write stands", async () => {
    const { dir, store } = await newArrayDir([4, 4], [2, 2]);
    const ttlMs = 600;
    let inside!: (fence: string) => void;
    const insideNow = new Promise<string>((resolve) => {
      inside = resolve;
    });
    const holder = spawnWorker(
      {
        job: "hold",
        id: 0,
        workers: 1,
        masters: servers.map((s) => s.url),
        dir,
        path: "/a",
        rounds: 1,
        value: 111,
        ttlMs,
      },
      (message) => {
        if (message.type === "inside") inside(message.fence);
      },
    );
    const holderFence = BigInt(await insideNow);
    holder.child.kill("SIGSTOP");
    const stoppedAt = performance.now();
    // Meanwhile another process (this one) takes the same chunk once the holder's lease expires in Redis.
    const synchronizer = new RedisSynchronizer({
      masters: servers.map((s) => s.url),
      retryDelayMs: 5,
      retryJitterMs: 5,
    });
    const array = await open(store, { path: "/a", synchronizer });
    let newerFence = 0n;
    await transaction(
      [{ array, selection: [0, 0], mode: "write" }],
      async (tx) => {
        newerFence = tx.lease.fence!;
        await tx.set(array, [0, 0], 222);
      },
      { timeoutMs: 10_000 },
    );
    const grantedAfter = performance.now() - stoppedAt;
    await synchronizer.close();
    // Keep it stopped well past its own deadline, then let it try to commit.
    if (grantedAfter < ttlMs * 1.5)
      await new Promise((resolve) => setTimeout(resolve, ttlMs * 1.5 - grantedAfter));
    holder.child.kill("SIGCONT");
    holder.child.send("go");
    const result = expectResult(await holder.result);
    expect(result.stoppedBy?.code).toBe("ERR_LEASE_LOST");
    expect(result.signalAborted).toBe(true);
    expect(result.signalReason).toBe("ERR_LEASE_LOST");
    expect(newerFence > holderFence).toBe(true);
    const { data } = await get(await readAll(store), [0, 0]);
    expect((data as Int32Array)[0]).toBe(222);
  });
});
