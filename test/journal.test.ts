/**
 * The journal in one process: commits, failures injected at each side of the commit point, recovery on
 * acquire and by `recover()`, torn and abandoned entries, the copy path, and fencing. The SIGKILL tests
 * with real processes are in crash.*.test.ts.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HOST_TAG } from "../src/array/journal.js";
import {
  type AbsolutePath,
  create,
  FileSystemStore,
  get,
  isZarrTxError,
  JOURNAL_PREFIX,
  listJournalEntries,
  MemoryStore,
  open,
  recover,
  type Store,
  set,
  slice,
  transaction,
  type ZarrTxArray,
} from "../src/index.js";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function fsStore(options: { applyInPlace?: boolean } = {}): Promise<FileSystemStore> {
  const dir = await mkdtemp(join(tmpdir(), "zarr-tx-journal-"));
  dirs.push(dir);
  return new FileSystemStore(dir, { fsync: false, ...options });
}

/** A store that throws from `method` on its `nth` call (1-based), and otherwise forwards. */
function failing(inner: Store, method: keyof Store, nth = 1): Store & { calls: () => number } {
  let calls = 0;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "calls") return () => calls;
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (prop === method && ++calls === nth) {
          return Promise.reject(new Error(`injected failure of ${String(prop)}`));
        }
        return value.apply(target, args);
      };
    },
  }) as Store & { calls: () => number };
}

/**
 * A memory store that declares itself persistent, so transactions journal on it as on files and S3
 * (a plain MemoryStore dies with its process and skips the journal). Without `rename`, entries are
 * applied by copy, as on S3.
 */
function persistentMemory(inner: MemoryStore, options: { rename: boolean }): Store {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "capabilities")
        return { ...target.capabilities, persistent: true, rename: options.rename };
      if (prop === "rename" && !options.rename) return undefined;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Store;
}

async function grid(store: Store): Promise<ZarrTxArray> {
  // 4×4 of int32 in 2×2 chunks: a whole-array write rewrites 4 objects.
  return create(store, { shape: [4, 4], chunkShape: [2, 2], dtype: "int32", fillValue: 0 });
}

async function values(array: ZarrTxArray): Promise<number[]> {
  return Array.from((await get(array, null)).data as Int32Array);
}

const journalKeys = (store: Store): Promise<AbsolutePath[]> => store.list(JOURNAL_PREFIX);

describe.each([
  ["filesystem", () => fsStore()],
  ["filesystem, applyInPlace (one-file entries applied in place)", () => fsStore({ applyInPlace: true })],
  ["memory (declared persistent)", async () => persistentMemory(new MemoryStore(), { rename: true })],
  ["memory, applied by copy", async () => persistentMemory(new MemoryStore(), { rename: false })],
] as const)("journal on %s", (_name, makeStore) => {
  it("a multi-chunk write commits through the journal and leaves no entry", async () => {
    const store = await makeStore();
    const array = await grid(store);
    await set(array, null, 1);
    await set(array, [slice(1, 3), slice(1, 3)], 2);
    expect(await values(array)).toEqual([1, 1, 1, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 1, 1, 1]);
    expect(await journalKeys(store)).toEqual([]);
  });

  it("a failure after the commit point leaves a committed entry that the next transaction rolls forward", async () => {
    const inner = await makeStore();
    const array = await grid(inner);
    await set(array, null, 1);
    // Fail the apply step: overwrite (in place), rename (files, memory) or the first copy (copy path).
    const method = inner.capabilities.applyInPlace
      ? "overwrite"
      : inner.capabilities.rename && !inner.capabilities.conditionalWrite
        ? "rename"
        : "copy";
    const viaBroken = await open(failing(inner, method), { synchronizer: array.synchronizer });
    const error = await set(viaBroken, null, 7).catch((e: unknown) => e);
    expect(isZarrTxError(error, "ERR_APPLY_PENDING")).toBe(true);
    expect(String(error)).toContain("injected failure");
    const entries = await listJournalEntries(inner);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.record?.state).toBe("commit");
    // A read of one cell holds one chunk shared; the entry names four: the transaction plans again with
    // all four exclusive, rolls the entry forward, then reads.
    expect(Array.from((await get(array, [0, 0])).data as Int32Array)).toEqual([7]);
    expect(await values(array)).toEqual(new Array(16).fill(7));
    expect(await journalKeys(inner)).toEqual([]);
  });

  it("a failure before the commit point writes nothing and leaves no entry", async () => {
    const inner = await makeStore();
    const array = await grid(inner);
    await set(array, null, 1);
    const viaBroken = await open(failing(inner, "setMany"), { synchronizer: array.synchronizer });
    const error = await set(viaBroken, null, 9).catch((e: unknown) => e);
    expect(String(error)).toContain("injected failure");
    expect(await values(array)).toEqual(new Array(16).fill(1));
    expect(await journalKeys(inner)).toEqual([]);
  });
});

describe("applyInPlace on files", () => {
  it("a multi-chunk transaction writes one journal file, renames nothing, and keeps the chunk files' inodes", async () => {
    const store = await fsStore({ applyInPlace: true });
    const array = await grid(store);
    await set(array, null, 1);
    const chunkFiles = (await store.list("/c/")).map((k) => join(store.root, k));
    expect(chunkFiles).toHaveLength(4);
    const inodes = await Promise.all(chunkFiles.map(async (f) => (await stat(f)).ino));
    // Stop after the commit point: the entry is the record alone, carrying the four chunks' bytes.
    const viaBroken = await open(failing(store, "overwrite"), { synchronizer: array.synchronizer });
    const error = await set(viaBroken, null, 5).catch((e: unknown) => e);
    expect(isZarrTxError(error, "ERR_APPLY_PENDING")).toBe(true);
    const keys = await journalKeys(store);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/\.commit$/);
    const [entry] = await listJournalEntries(store);
    expect(entry!.record).toMatchObject({ state: "commit", inline: true, zarrTxJournal: 2 });
    // A store opened without the option (as `zarr-tx recover` may) applies it atomically instead.
    const plain = new FileSystemStore(store.root, { fsync: false });
    const report = await recover(plain, { synchronizer: array.synchronizer });
    expect(report.rolledForward).toHaveLength(1);
    expect(await values(array)).toEqual(new Array(16).fill(5));
    await set(array, null, 6);
    expect(await values(array)).toEqual(new Array(16).fill(6));
    const after = await Promise.all(chunkFiles.map(async (f) => (await stat(f)).ino));
    expect(after.filter((ino, i) => ino === inodes[i])).toHaveLength(0); // replaced by recover()
    const inodesNow = after;
    await set(array, null, 7);
    expect(await Promise.all(chunkFiles.map(async (f) => (await stat(f)).ino))).toEqual(inodesNow);
    expect(await journalKeys(store)).toEqual([]);
  });

  it("keeps large transactions' objects in files of their own, renamed into place as without the option", async () => {
    const store = await fsStore({ applyInPlace: true });
    // 2 chunks of 256×128 float64 = 512 KiB in all: over the inline limit.
    const array = await create(store, {
      shape: [256, 256],
      chunkShape: [256, 128],
      dtype: "float64",
      fillValue: 0,
    });
    await set(array, null, 1);
    const viaBroken = await open(failing(store, "rename"), { synchronizer: array.synchronizer });
    await expect(set(viaBroken, null, 2)).rejects.toThrow(/injected failure/);
    const [entry] = await listJournalEntries(store);
    expect(entry!.record).toMatchObject({ state: "commit", zarrTxJournal: 1 });
    expect(entry!.keys).toHaveLength(3);
    expect(Array.from((await get(array, [255, 255])).data as Float64Array)).toEqual([2]);
    expect(await journalKeys(store)).toEqual([]);
  });
});

describe("entries of many objects", () => {
  it("keep their objects in a directory of their own, removed with the entry", async () => {
    const store = await fsStore();
    // 18×18 in 2×2 chunks: 81 objects, over the 64 that stay in the journal directory itself.
    const array = await create(store, { shape: [18, 18], chunkShape: [2, 2], dtype: "int32", fillValue: 0 });
    await set(array, null, 1);
    const viaBroken = await open(failing(store, "rename"), { synchronizer: array.synchronizer });
    expect(isZarrTxError(await set(viaBroken, null, 3).catch((e: unknown) => e), "ERR_APPLY_PENDING")).toBe(
      true,
    );
    const keys = await journalKeys(store);
    expect(keys).toHaveLength(82);
    const [entry] = await listJournalEntries(store);
    expect(entry!.record).toMatchObject({ state: "commit", nested: true, zarrTxJournal: 2 });
    expect(keys.filter((k) => k.startsWith(`${JOURNAL_PREFIX}${entry!.txid}/`))).toHaveLength(81);
    expect(await readdir(join(store.root, ".zarr-tx", "journal"))).toHaveLength(2); // the record, the directory
    // A read of one chunk rolls the entry forward, and its directory goes with it.
    expect(Array.from((await get(array, [17, 17])).data as Int32Array)).toEqual([3]);
    expect(await values(array)).toEqual(new Array(324).fill(3));
    expect(await readdir(join(store.root, ".zarr-tx", "journal"))).toEqual([]);
    // And a committed write of that size leaves nothing either.
    await set(array, null, 4);
    expect(await readdir(join(store.root, ".zarr-tx", "journal"))).toEqual([]);
  });

  it("recover() removes an empty entry directory that a killed writer left, once the writer is gone", async () => {
    const store = await fsStore();
    const journalDir = join(store.root, ".zarr-tx", "journal");
    // A dead writer (pid 2^22 + 1 is above Linux's pid_max) and a live one (this process).
    const dead = `${Date.now().toString(36)}-${HOST_TAG}-${2 ** 22 + 1}-abcdef`;
    const live = `${Date.now().toString(36)}-${HOST_TAG}-${process.pid}-abcdef`;
    await mkdir(join(journalDir, dead), { recursive: true });
    await mkdir(join(journalDir, live), { recursive: true });
    const report = await recover(store);
    expect(report.tempFilesRemoved).toEqual([`${JOURNAL_PREFIX}${dead}/`]);
    expect(await readdir(journalDir)).toEqual([live]);
  });
});

describe("a store that dies with its process", () => {
  it("skips the journal by default, and journals when asked", async () => {
    const store = new MemoryStore();
    const array = await grid(store);
    const viaBroken = await open(failing(store, "setMany"), { synchronizer: array.synchronizer });
    await set(viaBroken, null, 3); // no journal: setMany is never called
    expect(await values(array)).toEqual(new Array(16).fill(3));
    const error = await set(viaBroken, null, 4, { journal: true }).catch((e: unknown) => e);
    expect(String(error)).toContain("injected failure");
    expect(await values(array)).toEqual(new Array(16).fill(3));
  });
});

describe("recovery of entries that are torn or abandoned", () => {
  it("a record whose object never became durable is discarded, not applied", async () => {
    const store = await fsStore();
    const array = await grid(store);
    await set(array, null, 1);
    const viaBroken = await open(failing(store, "rename"), { synchronizer: array.synchronizer });
    await set(viaBroken, null, 5).catch(() => undefined);
    const [entry] = await listJournalEntries(store);
    // Lose one object, as a crash inside the batch write could: the record must not be applied.
    const objectKey = entry!.keys.find((k) => !k.endsWith(".commit"))!;
    await store.delete(objectKey);
    const report = await recover(store, { synchronizer: array.synchronizer });
    expect(report.discarded).toEqual([entry!.txid]);
    expect(report.rolledForward).toEqual([]);
    expect(await values(array)).toEqual(new Array(16).fill(1));
    expect(await journalKeys(store)).toEqual([]);
  });

  it("recover() discards an entry without a record whose writer is dead, and keeps a live writer's", async () => {
    const store = await fsStore();
    await grid(store);
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
    const deadPid = Number(dead.stdout.toString());
    const deadTxid = `${Date.now().toString(36)}-${HOST_TAG}-${deadPid}-abcdef`;
    const liveTxid = `${Date.now().toString(36)}-${HOST_TAG}-${process.ppid}-abcdef`;
    await store.set(`${JOURNAL_PREFIX}${deadTxid}.0` as AbsolutePath, new Uint8Array([1, 2, 3]));
    await store.set(`${JOURNAL_PREFIX}${liveTxid}.0` as AbsolutePath, new Uint8Array([4]));
    const report = await recover(store);
    expect(report.discarded).toEqual([deadTxid]);
    expect(report.inProgress).toEqual([liveTxid]);
    expect(await journalKeys(store)).toEqual([`${JOURNAL_PREFIX}${liveTxid}.0`]);
    // The abort record is gone with the entry; running again changes nothing.
    const again = await recover(store);
    expect(again.discarded).toEqual([]);
    // An old enough entry is treated as abandoned whatever its pid.
    const aged = await recover(store, { minAgeMs: 0 });
    expect(aged.discarded).toEqual([liveTxid]);
    expect(await journalKeys(store)).toEqual([]);
  });

  it("create(overwrite) settles a dead writer's entry first, so the new array gets none of its data", async () => {
    const store = await fsStore();
    const array = await grid(store);
    const viaBroken = await open(failing(store, "rename"), { synchronizer: array.synchronizer });
    await set(viaBroken, null, 5).catch(() => undefined);
    expect(await listJournalEntries(store)).toHaveLength(1);
    const fresh = await create(store, {
      shape: [4, 4],
      chunkShape: [2, 2],
      dtype: "int32",
      fillValue: 0,
      overwrite: true,
      synchronizer: array.synchronizer,
    });
    expect(await values(fresh)).toEqual(new Array(16).fill(0));
    expect(await journalKeys(store)).toEqual([]);
  });

  it("a whole but unreadable record stops transactions loudly; recover() reports it and goes on", async () => {
    const store = await fsStore();
    const array = await grid(store);
    const viaBroken = await open(failing(store, "rename"), { synchronizer: array.synchronizer });
    await set(viaBroken, null, 5).catch(() => undefined);
    const [committed] = await listJournalEntries(store);
    // A record from a "newer" zarr-tx: its checksum is right, its format is not ours.
    const json = '{"zarrTxJournal":99,"state":"commit","txid":"x","targets":[]}';
    const { crc32c } = await import("../src/codecs/index.js");
    const sum = crc32c(new TextEncoder().encode(json)).toString(16);
    const alien = `${Date.now().toString(36)}-${HOST_TAG}-1-abcdef`;
    await store.set(
      `${JOURNAL_PREFIX}${alien}.commit` as AbsolutePath,
      new TextEncoder().encode(`${json}\n#crc32c=${sum}\n`),
    );
    const refused = await get(array, null).catch((e: unknown) => e);
    expect(isZarrTxError(refused, "ERR_CORRUPT_JOURNAL")).toBe(true);
    const report = await recover(store, { synchronizer: array.synchronizer });
    expect(report.rolledForward).toEqual([committed!.txid]);
    expect(report.damaged.map((d) => d.txid)).toEqual([alien]);
    await store.delete(`${JOURNAL_PREFIX}${alien}.commit` as AbsolutePath);
    expect(await values(array)).toEqual(new Array(16).fill(5));
  });

  it("a read-only store with a pending entry refuses to read the half-applied region", async () => {
    const store = await fsStore();
    const array = await grid(store);
    const viaBroken = await open(failing(store, "rename"), { synchronizer: array.synchronizer });
    await set(viaBroken, null, 5).catch(() => undefined);
    const readOnly = new FileSystemStore(store.root, { readOnly: true });
    const viaReadOnly = await open(readOnly, { synchronizer: array.synchronizer });
    const error = await get(viaReadOnly, null).catch((e: unknown) => e);
    expect(isZarrTxError(error, "ERR_RECOVERY_NEEDED")).toBe(true);
    expect(await values(array)).toEqual(new Array(16).fill(5));
  });
});

describe("fencing on a store with conditional writes", () => {
  it.each([
    ["one chunk", [slice(0, 2), slice(0, 2)]],
    ["four chunks", null],
  ] as const)("a writer whose object changed after its read is refused (%s)", async (_name, selection) => {
    const store = persistentMemory(new MemoryStore(), { rename: false });
    const array = await grid(store);
    await set(array, null, 1);
    const error = await transaction([{ array, selection, mode: "write" }], async (tx) => {
      const current = await tx.get(array, selection);
      // Another writer (whose lease began after ours expired) replaces chunk 0,0 meanwhile.
      await store.set("/c/0/0" as AbsolutePath, (await store.get("/c/0/0" as AbsolutePath))!.slice());
      await tx.set(array, selection, {
        data: (current.data as Int32Array).map((v) => v + 1),
        shape: current.shape,
      });
    }).catch((e: unknown) => e);
    expect(isZarrTxError(error, "ERR_LEASE_LOST")).toBe(true);
    // Chunk 0,0 holds the other writer's bytes, not ours.
    expect(Array.from((await get(array, [slice(0, 2), slice(0, 2)])).data as Int32Array)).toEqual([
      1, 1, 1, 1,
    ]);
    // Whatever the refused writer left is cleaned up by the next transaction, never applied over newer data.
    await get(array, null);
    expect(await journalKeys(store)).toEqual([]);
  });
});
