/**
 * Fencing on S3: a writer whose Redis lease expired while it was paused must not overwrite newer data.
 *
 * 1. Writer A (a child process) reads a region under its lease, is SIGSTOPped past its TTL while writer
 *    B (this process) takes the same chunks and commits, then resumes and tries to commit: refused
 *    (ERR_LEASE_LOST: its lease signal checks the clocks), and the data are B's.
 * 2. The harder case: A is held *inside* its store write (after every lease check has passed, as if the
 *    process froze between the check and the PUT) while its lease expires and B commits. Only S3's
 *    conditional writes stop it now: each write is conditioned on the ETag A read under its lease (or on
 *    the chunk's absence), so S3 answers 412 and the commit is refused. One-chunk (conditional PUT) and
 *    multi-chunk (journal, conditional copy) transactions alike; the data are B's.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, get, isZarrTxError, open, set, slice, transaction } from "../src/index.js";
import { S3Store } from "../src/store/s3.js";
import type { Store } from "../src/store/types.js";
import { RedisSynchronizer } from "../src/sync/redis.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";
import type { FencingChildConfig, FencingChildMessage } from "./s3-fencing-child.js";
import { type S3TestServer, startS3Server } from "./s3-harness.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHILD = fileURLToPath(new URL("./s3-fencing-child.ts", import.meta.url));

let s3: S3TestServer;
let masters: RedisServer[] = [];
let bucket: string;
const children = new Set<ChildProcess>();
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  [s3, masters] = await Promise.all([startS3Server(), startRedisServers(3)]);
  bucket = s3.createBucket();
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const close of closers) await close();
  await Promise.all([s3?.stop(), stopRedisServers(masters)]);
});

function s3Store(prefix: string): S3Store {
  const store = new S3Store({ bucket, prefix, config: s3.clientConfig() });
  closers.push(() => store.close());
  return store;
}

function redis(options: { ttlMs?: number; autoExtend?: boolean } = {}): RedisSynchronizer {
  const sync = new RedisSynchronizer({
    masters: masters.map((m) => m.url),
    retryDelayMs: 5,
    retryJitterMs: 5,
    ...options,
  });
  closers.push(() => sync.close());
  return sync;
}

async function newArray(prefix: string) {
  const store = s3Store(prefix);
  const array = await create(store, {
    path: "a",
    shape: [8, 8],
    chunkShape: [4, 4],
    dtype: "int32",
    synchronizer: redis(),
  });
  await set(array, null, 1);
  return { store, array };
}

describe("fencing on S3 + Redis", () => {
  it("writer A SIGSTOPped past its TTL after reading: its commit is refused, B's data stand", async () => {
    const prefix = "fence-sigstop";
    await newArray(prefix);
    const ttlMs = 800;
    const config: FencingChildConfig = {
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: s3.credentials,
      bucket,
      prefix,
      path: "a",
      masters: masters.map((m) => m.url),
      ttlMs,
      rows: [2, 6],
      value: 111,
    };
    const child = fork(CHILD, [JSON.stringify(config)], {
      cwd: ROOT,
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, AWS_EC2_METADATA_DISABLED: "true" },
    });
    children.add(child);
    const messages: FencingChildMessage[] = [];
    let onInside!: () => void;
    const inside = new Promise<void>((resolve) => {
      onInside = resolve;
    });
    const result = new Promise<FencingChildMessage>((resolve) => {
      child.on("message", (m: FencingChildMessage) => {
        messages.push(m);
        if (m.type === "inside") onInside();
        if (m.type === "result") resolve(m);
      });
      child.on("exit", () => resolve({ type: "result", committed: false, code: "exited without a result" }));
    });
    await inside;
    child.kill("SIGSTOP");
    const stoppedAt = performance.now();

    // B: the same rows, once A's lease has expired in Redis.
    const array = await open(s3Store(prefix), { path: "a", synchronizer: redis() });
    await set(array, [slice(2, 6), null], 222, { timeoutMs: 10_000 });
    expect(performance.now() - stoppedAt).toBeGreaterThan(ttlMs / 2);

    child.send({ type: "go" });
    child.kill("SIGCONT");
    const outcome = await result;
    children.delete(child);
    expect(outcome.type === "result" && outcome.committed, JSON.stringify(outcome)).toBe(false);
    expect(["ERR_LEASE_LOST", "ERR_CONFLICT"]).toContain(outcome.type === "result" ? outcome.code : "");
    const { data } = await get(array, null);
    const values = Array.from(data as Int32Array);
    expect(values.slice(16, 48).every((v) => v === 222)).toBe(true);
    expect(values.filter((v) => v === 111)).toEqual([]);
  });

  // Where A is held, after every lease check of the transaction has passed:
  // - one chunk: at the conditional PUT of the chunk (If-Match the ETag read under the lease);
  // - several chunks, before the commit point: at the journal's commit record (If-None-Match: *). B's
  //   recovery finds A's entry without a record and writes an abort record first, so A's is refused;
  // - several chunks, after the commit point: at the copies that apply the entry. B's recovery rolls A's
  //   committed entry forward before B writes (A serialized first), so A's late copies find nothing.
  const cases = [
    {
      label: "one chunk: conditional PUT refused",
      region: [slice(0, 4), slice(0, 4)],
      rows: [0, 4],
      cols: [0, 4],
      heldAt: ["setIf", "set"],
      holds: (key: string) => key.startsWith("/a/c/"),
      refusedByS3: true,
    },
    {
      label: "four chunks, before the commit point: commit record refused",
      region: [slice(2, 6), null],
      rows: [2, 6],
      cols: [0, 8],
      heldAt: ["setIf", "createIfAbsent", "set"],
      holds: (key: string) => key.startsWith("/.zarr-tx/journal/") && key.endsWith(".commit"),
      refusedByS3: true,
    },
    {
      label: "four chunks, after the commit point: rolled forward by B's recovery, then B's write",
      region: [slice(2, 6), null],
      rows: [2, 6],
      cols: [0, 8],
      heldAt: ["copy", "setIf", "set"],
      holds: (key: string) => key.startsWith("/a/c/"),
      refusedByS3: false,
    },
  ] as const;
  for (const { label, region, rows, cols, heldAt, holds, refusedByS3 } of cases) {
    it(`writer A held inside its store write past its TTL (${label}); B's data stand`, async () => {
      const prefix = `fence-inside-${label.replace(/\W+/g, "-").slice(0, 40)}`;
      const { store } = await newArray(prefix);
      let openGate!: () => void;
      const gate = new Promise<void>((resolve) => {
        openGate = resolve;
      });
      let held = 0;
      let onHeld!: () => void;
      const heldNow = new Promise<void>((resolve) => {
        onHeld = resolve;
      });
      const writes = new Set<string>(heldAt);
      const gated = new Proxy(store, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target);
          if (typeof value !== "function") return value;
          if (typeof prop === "string" && writes.has(prop)) {
            return async (...args: unknown[]) => {
              const key = prop === "copy" ? args[1] : args[0];
              if (typeof key === "string" && holds(key)) {
                held++;
                onHeld();
                await gate;
              }
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          return value.bind(target);
        },
      }) as Store;
      const ttlMs = 600;
      const arrayA = await open(gated, { path: "a", synchronizer: redis({ ttlMs, autoExtend: false }) });
      const attemptA = transaction([{ array: arrayA, selection: region, mode: "write" }], async (tx) => {
        const current = await tx.get(arrayA, region);
        await tx.set(arrayA, region, {
          data: (current.data as Int32Array).map((v) => v + 110),
          shape: current.shape,
        });
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      await heldNow;
      // B takes the same chunks once A's lease has expired, and commits.
      const arrayB = await open(s3Store(prefix), { path: "a", synchronizer: redis() });
      await set(arrayB, region, 222, { timeoutMs: 10_000 });
      const refusedBefore = s3.conditionFailures;
      openGate();
      const error = await attemptA;
      expect(held).toBeGreaterThan(0);
      if (refusedByS3) {
        // S3 (the emulated condition) refused A's write: the lease checks had all passed before it.
        expect(s3.conditionFailures).toBeGreaterThan(refusedBefore);
        expect(
          isZarrTxError(error, "ERR_LEASE_LOST") || isZarrTxError(error, "ERR_CONFLICT"),
          String(error),
        ).toBe(true);
      } else {
        expect(isZarrTxError(error), String(error)).toBe(true);
      }
      const { data } = await get(arrayB, null);
      const values = Array.from(data as Int32Array);
      for (let r = 0; r < 8; r++) {
        for (let c = 0; c < 8; c++) {
          const inRegion = r >= rows[0] && r < rows[1] && c >= cols[0] && c < cols[1];
          expect(values[r * 8 + c], `cell ${r},${c}`).toBe(inRegion ? 222 : 1);
        }
      }
    });
  }
});
