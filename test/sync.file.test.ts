/**
 * FileSynchronizer in one process: the conformance suite on two instances (which share no in-process
 * table, so they contend through the kernel exactly like two processes), the lock-file layout, descriptor
 * ownership, given-up waits, unlinked lock files and the options. The multi-process tests are in
 * sync.file.processes.test.ts.
 */
import { readdirSync, readlinkSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, unlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  create,
  FileSynchronizer,
  FileSystemStore,
  InvalidArgumentError,
  isZarrTxError,
  type Lease,
  lockKey,
  lockScope,
  META_SLOT,
  type ZarrTxErrorCode,
} from "../src/index.js";
import { GATE_BASE } from "../src/sync/file.js";
import { describeSynchronizer } from "./conformance/synchronizer.js";

const native = createRequire(import.meta.url)("fs-native-extensions") as {
  tryLock(fd: number, offset: number, length: number, options: { shared: boolean }): boolean;
  unlock(fd: number, offset: number, length: number): void;
};

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = realpathSync(
    await mkdtemp(join(process.env.ZARR_TX_TEST_DIR ?? tmpdir(), "zarr-tx-filesync-")),
  );
  dirs.push(dir);
  return dir;
}

describeSynchronizer("FileSynchronizer (two instances, one lock directory)", {
  async create() {
    const lockDirectory = await tempDir();
    const a = new FileSynchronizer({ lockDirectory });
    const b = new FileSynchronizer({ lockDirectory });
    return {
      a,
      b,
      async cleanup() {
        await Promise.all([a.close(), b.close()]);
      },
    };
  },
});

/** Synchronizers made by a test, closed after it. */
const made: FileSynchronizer[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((sync) => sync.close()));
});
function synchronizer(options?: ConstructorParameters<typeof FileSynchronizer>[0]): FileSynchronizer {
  const sync = new FileSynchronizer(options);
  made.push(sync);
  return sync;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    async (value) => {
      if (typeof value === "object" && value !== null && "release" in value) await (value as Lease).release();
      throw new Error("expected a rejection, but it resolved");
    },
    (error: unknown) => error,
  );
}

async function expectCode(promise: Promise<unknown>, code: ZarrTxErrorCode): Promise<unknown> {
  const error = await rejection(promise);
  expect(isZarrTxError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error;
}

/** Descriptors of this process open on `path`. */
function descriptorsOn(path: string): number {
  let count = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) count++;
    } catch {
      // Closed while we looked.
    }
  }
  return count;
}

/** Probes a byte of a lock file from a descriptor of its own: "free", "shared" (readers only) or "exclusive". */
function probe(path: string, byte: number): "free" | "shared" | "exclusive" {
  const { openSync, closeSync } = createRequire(import.meta.url)("node:fs") as typeof import("node:fs");
  const fd = openSync(path, "r+");
  try {
    if (native.tryLock(fd, byte, 1, { shared: false })) return "free";
    return native.tryLock(fd, byte, 1, { shared: true }) ? "shared" : "exclusive";
  } finally {
    closeSync(fd);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("FileSynchronizer: lock files and byte layout", () => {
  it("puts the lock file beside the array (<root><path>/.zarr-tx/locks), creating it on first use", async () => {
    const root = await tempDir();
    const sync = synchronizer();
    const scope = lockScope(`file:${root}`, "/group/temps");
    const path = sync.lockFileOf(scope);
    expect(path).toBe(join(root, "group", "temps", ".zarr-tx", "locks"));
    expect(sync.lockFileOf(lockScope(`file:${root}`, "/"))).toBe(join(root, ".zarr-tx", "locks"));
    const lease = await sync.acquire([lockKey(scope, 0)], "exclusive");
    expect(statSync(path).isFile()).toBe(true);
    expect(statSync(path).size).toBe(0);
    await lease.release();
  });

  it("metadata is byte 0 and chunk i is byte i + 1; the gates are idle once a lease is granted", async () => {
    const root = await tempDir();
    const sync = synchronizer();
    const scope = lockScope(`file:${root}`, "/a");
    const lease = await sync.acquireSet({
      shared: [lockKey(scope, META_SLOT), lockKey(scope, 7)],
      exclusive: [lockKey(scope, 3), lockKey(scope, 4)],
    });
    const path = sync.lockFileOf(scope);
    expect([0, 3, 4, 5, 6, 8, 9].map((byte) => probe(path, byte))).toEqual([
      "shared",
      "free",
      "exclusive",
      "exclusive",
      "free",
      "shared",
      "free",
    ]);
    for (const byte of [0, 4, 5, 8]) expect(probe(path, GATE_BASE + byte)).toBe("free");
    await lease.release();
    for (const byte of [0, 4, 5, 8]) expect(probe(path, byte)).toBe("free");
  });

  it("lockDirectory: one file per array named by a hash, shared by two views of the same directory", async () => {
    const root = await tempDir();
    const lockDirectory = join(await tempDir(), "locks");
    const sync = synchronizer({ lockDirectory });
    const viaRoot = sync.lockFileOf(lockScope(`file:${root}`, "/a"));
    const viaArray = sync.lockFileOf(lockScope(`file:${join(root, "a")}`, "/"));
    expect(viaRoot).toMatch(new RegExp(`^${lockDirectory}/[0-9a-f]{32}\\.lock$`));
    expect(viaArray).toBe(viaRoot);
    expect(sync.lockFileOf(lockScope(`file:${root}`, "/b"))).not.toBe(viaRoot);
    const memory = sync.lockFileOf(lockScope("memory:1", "/a"));
    expect(memory).toMatch(/[0-9a-f]{32}\.lock$/);

    // Two views of one array exclude each other, even from two synchronizers of one process.
    const other = synchronizer({ lockDirectory });
    const held = await sync.acquire([lockKey(lockScope(`file:${root}`, "/a"), 2)], "exclusive");
    await expectCode(
      other.acquire([lockKey(lockScope(`file:${join(root, "a")}`, "/"), 2)], "shared", { timeoutMs: 50 }),
      "ERR_LOCK_TIMEOUT",
    );
    await held.release();
  });

  it("rejects (never throws) keys it cannot place, and holds nothing afterwards", async () => {
    const root = await tempDir();
    const sync = synchronizer();
    const good = lockKey(lockScope(`file:${root}`, "/a"), 1);
    const bad: Array<[() => Promise<Lease>, ZarrTxErrorCode, RegExp]> = [
      [
        () => sync.acquire([good, lockKey(lockScope("memory:1", "/a"), 0)], "exclusive"),
        "ERR_INVALID_ARGUMENT",
        /lockDirectory/,
      ],
      [() => sync.acquire([good, "not-a-lock-key"], "shared"), "ERR_INVALID_ARGUMENT", /lockKey/],
      [
        () => sync.acquire([lockKey("file:/x:/y:/z", 0)], "shared"),
        "ERR_INVALID_ARGUMENT",
        /more than one way/,
      ],
      [() => sync.acquire([lockKey("file:relative:/a", 0)], "shared"), "ERR_INVALID_ARGUMENT", /absolute/],
      [() => sync.acquire([good], "write" as "exclusive"), "ERR_INVALID_ARGUMENT", /mode/],
      [() => sync.acquire([good], "exclusive", { timeoutMs: -1 }), "ERR_INVALID_ARGUMENT", /timeoutMs/],
      [() => sync.acquire(good as unknown as string[], "exclusive"), "ERR_INVALID_ARGUMENT", /iterable/],
    ];
    for (const [attempt, code, message] of bad) {
      let promise: Promise<Lease> | undefined;
      expect(() => {
        promise = attempt();
      }).not.toThrow();
      const error = await expectCode(promise!, code);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(String(error)).toMatch(message);
    }
    const lease = await synchronizer().acquire([good], "exclusive", { timeoutMs: 0 });
    await lease.release();
  });

  it("a lock file that cannot be opened rejects with LockError ERR_UNSUPPORTED and holds nothing", async () => {
    const dir = await tempDir();
    writeFileSync(join(dir, "a-file"), "");
    const sync = synchronizer({ lockDirectory: join(dir, "a-file", "locks") });
    const error = await expectCode(
      sync.acquire([lockKey(lockScope("memory:1", "/a"), 0)], "exclusive"),
      "ERR_UNSUPPORTED",
    );
    expect(String(error)).toMatch(/cannot open the lock file/);
  });

  it("create(overwrite) keeps the array's lock file (deleting it would split holders from later lockers)", async () => {
    const root = await tempDir();
    const store = new FileSystemStore(root, { fsync: false });
    const sync = synchronizer();
    await create(store, { path: "a", shape: [4], chunkShape: [2], dtype: "int32", synchronizer: sync });
    const path = sync.lockFileOf(lockScope(store.id, "/a"));
    const inode = statSync(path).ino;
    await create(store, {
      path: "a",
      shape: [8],
      chunkShape: [2],
      dtype: "int32",
      synchronizer: sync,
      overwrite: true,
    });
    expect(statSync(path).ino).toBe(inode);
  });
});

describe("FileSynchronizer: descriptors and given-up waits", () => {
  it("every lease has a descriptor of its own: releasing one of two shared leases keeps the other's lock", async () => {
    const root = await tempDir();
    const scope = lockScope(`file:${root}`, "/a");
    const [k] = [lockKey(scope, 0)];
    const a = synchronizer();
    const b = synchronizer();
    const first = await a.acquire([k!], "shared");
    const second = await a.acquire([k!], "shared");
    expect(descriptorsOn(a.lockFileOf(scope))).toBe(2);
    await first.release();
    await expectCode(b.acquire([k!], "exclusive", { timeoutMs: 50 }), "ERR_LOCK_TIMEOUT");
    await second.release();
    await (await b.acquire([k!], "exclusive", { timeoutMs: 1_000 })).release();
    // The wait b gave up above still runs on a native thread until the kernel grants it (after
    // `second.release()`); its descriptor closes as soon as it settles, which may be a moment later.
    const deadline = Date.now() + 2_000;
    while (descriptorsOn(a.lockFileOf(scope)) > 0 && Date.now() < deadline) await sleep(10);
    expect(descriptorsOn(a.lockFileOf(scope))).toBe(0);
  });

  it("a wait given up by timeout, abort or close leaves no lock when the kernel grants it later, and closes its descriptor", async () => {
    const root = await tempDir();
    const scope = lockScope(`file:${root}`, "/a");
    const k = lockKey(scope, 5);
    const other = lockKey(scope, 1);
    const holder = synchronizer();
    const path = holder.lockFileOf(scope);
    const held = await holder.acquire([k], "exclusive");

    const waiter = synchronizer();
    // Each request first takes `other`, then waits for k on a native thread, and gives up.
    await expectCode(waiter.acquire([other, k], "exclusive", { timeoutMs: 100 }), "ERR_LOCK_TIMEOUT");
    const controller = new AbortController();
    const aborted = waiter.acquire([other, k], "shared", { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expectCode(aborted, "ERR_LOCK_ABORTED");
    const closing = synchronizer();
    const refused = closing.acquire([other, k], "exclusive");
    setTimeout(() => void closing.close(), 50);
    await expectCode(refused, "ERR_SYNCHRONIZER_CLOSED");

    // What they held before waiting is free at once; their waits are still on native threads.
    expect(probe(path, 2)).toBe("free");
    expect(descriptorsOn(path)).toBe(4);
    await held.release();
    // The kernel now grants the abandoned waits; each grant is dropped and its descriptor closed.
    await until(() => descriptorsOn(path) === 0, "the abandoned waits closed their descriptors");
    expect(probe(path, 6)).toBe("free");
    const fresh = synchronizer();
    await (await fresh.acquire([other, k], "exclusive", { timeoutMs: 0 })).release();
  });

  it("timeoutMs 0 tries once: refused at once without waiting on a thread", async () => {
    const root = await tempDir();
    const scope = lockScope(`file:${root}`, "/a");
    const k = lockKey(scope, 0);
    const a = synchronizer();
    const b = synchronizer();
    const held = await a.acquire([k], "shared");
    await expectCode(b.acquire([k], "exclusive", { timeoutMs: 0 }), "ERR_LOCK_TIMEOUT");
    expect(descriptorsOn(a.lockFileOf(scope))).toBe(1);
    await (await b.acquire([k], "shared", { timeoutMs: 0 })).release();
    await held.release();
  });

  it("a lock file unlinked while a request waits: the request starts again on the new file", async () => {
    const root = await tempDir();
    const scope = lockScope(`file:${root}`, "/a");
    const k = lockKey(scope, 3);
    const a = synchronizer();
    const b = synchronizer();
    const held = await a.acquire([k], "exclusive");
    const waiting = b.acquire([k], "exclusive", { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await unlink(a.lockFileOf(scope));
    await held.release();
    const lease = await waiting;
    // b holds k on the file that is at the path now, so a newcomer (who opens that file) is excluded.
    await expectCode(synchronizer().acquire([k], "shared", { timeoutMs: 50 }), "ERR_LOCK_TIMEOUT");
    await lease.release();
  });

  it("close() revokes held leases: their locks are free for other processes at once", async () => {
    const root = await tempDir();
    const scope = lockScope(`file:${root}`, "/a");
    const a = synchronizer();
    const lease = await a.acquire([lockKey(scope, 0), lockKey(scope, 1)], "exclusive");
    await a.close();
    expect(lease.signal.aborted).toBe(true);
    expect(probe(a.lockFileOf(scope), 1)).toBe("free");
    await lease.release();
    expect(a.closed).toBe(true);
  });
});

describe("FileSynchronizer: options", () => {
  it('granularity "file": one whole-file lock per array and lease, and it excludes byte-granularity lockers', async () => {
    const root = await tempDir();
    const scope = lockScope(`file:${root}`, "/a");
    const [k1, k2] = [lockKey(scope, 1), lockKey(scope, 2)];
    const a = synchronizer({ granularity: "file" });
    const b = synchronizer({ granularity: "file" });
    const bytes = synchronizer();
    const held = await a.acquire([k1], "exclusive");
    // Disjoint chunks of one array wait for each other: the cost of whole-file locks.
    await expectCode(b.acquire([k2], "exclusive", { timeoutMs: 50 }), "ERR_LOCK_TIMEOUT");
    await expectCode(bytes.acquire([k2], "shared", { timeoutMs: 50 }), "ERR_LOCK_TIMEOUT");
    await held.release();
    const readers = [await a.acquire([k1], "shared"), await b.acquire([k2], "shared")];
    await expectCode(bytes.acquire([k2], "exclusive", { timeoutMs: 50 }), "ERR_LOCK_TIMEOUT");
    await Promise.all(readers.map((lease) => lease.release()));
    const byteLease = await bytes.acquire([k2], "exclusive");
    await expectCode(a.acquire([k1], "shared", { timeoutMs: 50 }), "ERR_LOCK_TIMEOUT");
    await byteLease.release();
  });

  it("turnstile false: a later reader overtakes a waiting writer (what the default turnstile prevents)", async () => {
    const root = await tempDir();
    const k = lockKey(lockScope(`file:${root}`, "/a"), 0);
    const reader = synchronizer({ turnstile: false });
    const writer = synchronizer({ turnstile: false });
    const late = synchronizer({ turnstile: false });
    const first = await reader.acquire([k], "shared");
    const waiting = writer.acquire([k], "exclusive", { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const overtaker = await late.acquire([k], "shared", { timeoutMs: 0 });
    await Promise.all([first.release(), overtaker.release()]);
    await (await waiting).release();
  });

  it("refuses bad options", () => {
    expect(() => new FileSynchronizer({ lockDirectory: "" })).toThrow(InvalidArgumentError);
    expect(() => new FileSynchronizer({ granularity: "chunk" as "byte" })).toThrow(InvalidArgumentError);
  });
});
