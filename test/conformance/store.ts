/**
 * The shared conformance suite of the Store interface. Every backend registers itself with one
 * `describeStore(name, harness)` call; the harness gives raw access to the storage (bypassing the store)
 * as ground truth, so the suite checks what is really stored, not just that the store agrees with itself.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { isZarrTxError, type ZarrTxErrorCode } from "../../src/errors.js";
import type { AbsolutePath, Store } from "../../src/store/types.js";

/** One store plus raw access to the storage behind it. */
export interface StoreFixture {
  readonly store: Store;
  /** The bytes stored at `key`, read without going through the store; undefined when missing. */
  readRaw(key: AbsolutePath): Promise<Uint8Array | undefined>;
  /** Puts `bytes` at `key` without going through the store. */
  writeRaw(key: AbsolutePath, bytes: Uint8Array): Promise<void>;
  /** Frees everything the fixture created (temp dirs, servers). */
  cleanup(): Promise<void>;
}

/** How the suite makes stores of one backend. */
export interface StoreHarness {
  /** A new, empty, writable store. */
  create(): Promise<StoreFixture>;
  /** A new, empty, read-only store whose storage `writeRaw` can still fill. Omit when not supported. */
  createReadOnly?(): Promise<StoreFixture>;
}

/** Keys no store may accept: relative, empty segments, "." and "..", backslashes, NUL. */
export const HOSTILE_KEYS: readonly string[] = [
  "",
  "a/b",
  "zarr.json",
  "/",
  "//",
  "//a",
  "/a/",
  "/a//b",
  "/..",
  "/../escape",
  "/a/../../escape",
  "/a/..",
  "/.",
  "/./a",
  "/a/./b",
  "/a\\b",
  "/..\\escape",
  "/a\0b",
];

async function expectCode(promise: Promise<unknown>, code: ZarrTxErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a rejection with ${code}`).toBeDefined();
  expect(isZarrTxError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

function bytesOf(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function filled(value: number, length: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

function randomBytes(length: number, seed: number): Uint8Array {
  // A small deterministic generator (xorshift32): reproducible data without a dependency.
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function expectFreshExact(bytes: Uint8Array | undefined, length: number): asserts bytes is Uint8Array {
  expect(bytes).toBeInstanceOf(Uint8Array);
  const b = bytes as Uint8Array;
  expect(b.length).toBe(length);
  expect(b.byteOffset).toBe(0);
  expect(b.buffer.byteLength).toBe(length);
}

/**
 * Registers the Store conformance tests for one backend under `describe(name)`. Every store must pass
 * all of them; tests of optional capabilities check that the capability flag and the methods agree.
 */
export function describeStore(name: string, harness: StoreHarness): void {
  describe(`Store conformance: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await harness.create();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    it("is writable and has an id", () => {
      expect(store.readOnly).toBe(false);
      expect(typeof store.id).toBe("string");
      expect(store.id.length).toBeGreaterThan(0);
    });

    it("get of a missing key is undefined", async () => {
      expect(await store.get("/missing")).toBeUndefined();
      expect(await store.get("/a/b/missing")).toBeUndefined();
      expect(await store.getRange("/missing", { offset: 0, length: 4 })).toBeUndefined();
      expect(await store.getRange("/missing", { suffixLength: 4 })).toBeUndefined();
    });

    it("set stores exactly the bytes (checked through raw access)", async () => {
      await store.set("/a/b/c", bytesOf(1, 2, 3));
      expect(await fixture.readRaw("/a/b/c")).toEqual(bytesOf(1, 2, 3));
    });

    it("get returns what was written raw", async () => {
      await fixture.writeRaw("/x/y", bytesOf(9, 8, 7, 6));
      expect(await store.get("/x/y")).toEqual(bytesOf(9, 8, 7, 6));
    });

    it("get returns fresh exact-size buffers that do not alias storage", async () => {
      const input = bytesOf(1, 2, 3, 4, 5);
      await store.set("/k", input);
      const first = await store.get("/k");
      expectFreshExact(first, 5);
      first.fill(0);
      input.fill(7);
      expect(await store.get("/k")).toEqual(bytesOf(1, 2, 3, 4, 5));
      expect(await fixture.readRaw("/k")).toEqual(bytesOf(1, 2, 3, 4, 5));
      const range = await store.getRange("/k", { offset: 1, length: 2 });
      expectFreshExact(range, 2);
      range.fill(0);
      expect(await store.get("/k")).toEqual(bytesOf(1, 2, 3, 4, 5));
    });

    it("set copies a view of a larger buffer exactly", async () => {
      const big = bytesOf(0, 1, 2, 3, 4, 5, 6, 7);
      await store.set("/view", big.subarray(2, 5));
      expect(await fixture.readRaw("/view")).toEqual(bytesOf(2, 3, 4));
      const got = await store.get("/view");
      expectFreshExact(got, 3);
    });

    it("mutating the input while set is under way changes nothing stored", async () => {
      const input = new Uint8Array(64 * 1024).fill(3);
      const pending = store.set("/racy", input);
      input.fill(4);
      await pending;
      const got = await store.get("/racy");
      expect(got?.every((b) => b === 3)).toBe(true);
    });

    it("getRange with offset and length", async () => {
      await store.set("/r", bytesOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
      expect(await store.getRange("/r", { offset: 0, length: 3 })).toEqual(bytesOf(0, 1, 2));
      expect(await store.getRange("/r", { offset: 4, length: 2 })).toEqual(bytesOf(4, 5));
      expect(await store.getRange("/r", { offset: 9, length: 1 })).toEqual(bytesOf(9));
      expect(await store.getRange("/r", { offset: 3, length: 0 })).toEqual(bytesOf());
    });

    it("getRange with suffixLength", async () => {
      await store.set("/r", bytesOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
      expect(await store.getRange("/r", { suffixLength: 4 })).toEqual(bytesOf(6, 7, 8, 9));
      expect(await store.getRange("/r", { suffixLength: 10 })).toEqual(bytesOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
      expect(await store.getRange("/r", { suffixLength: 0 })).toEqual(bytesOf());
    });

    it("getRange past the end is clamped to the object", async () => {
      await store.set("/r", bytesOf(0, 1, 2, 3, 4));
      expect(await store.getRange("/r", { offset: 3, length: 100 })).toEqual(bytesOf(3, 4));
      expect(await store.getRange("/r", { offset: 5, length: 2 })).toEqual(bytesOf());
      expect(await store.getRange("/r", { offset: 50, length: 2 })).toEqual(bytesOf());
      expect(await store.getRange("/r", { suffixLength: 100 })).toEqual(bytesOf(0, 1, 2, 3, 4));
    });

    it("getRange rejects negative and fractional ranges", async () => {
      await store.set("/r", bytesOf(0, 1, 2));
      await expectCode(store.getRange("/r", { offset: -1, length: 2 }), "ERR_INVALID_ARGUMENT");
      await expectCode(store.getRange("/r", { offset: 0, length: -2 }), "ERR_INVALID_ARGUMENT");
      await expectCode(store.getRange("/r", { offset: 0.5, length: 1 }), "ERR_INVALID_ARGUMENT");
      await expectCode(store.getRange("/r", { suffixLength: -1 }), "ERR_INVALID_ARGUMENT");
    });

    it("getRange agrees with slicing the whole object (property)", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 48 }),
          fc.oneof(
            fc.record({ offset: fc.nat(64), length: fc.nat(64) }),
            fc.record({ suffixLength: fc.nat(64) }),
          ),
          async (value, range) => {
            await store.set("/prop", value);
            const expected =
              "suffixLength" in range
                ? value.slice(Math.max(0, value.length - range.suffixLength))
                : value.slice(range.offset, range.offset + range.length);
            expect(await store.getRange("/prop", range)).toEqual(expected);
          },
        ),
        { numRuns: 60 },
      );
    });

    it("set overwrites", async () => {
      await store.set("/o", bytesOf(1, 1, 1, 1));
      await store.set("/o", bytesOf(2, 2));
      expect(await store.get("/o")).toEqual(bytesOf(2, 2));
      expect(await fixture.readRaw("/o")).toEqual(bytesOf(2, 2));
    });

    it("delete removes, and deleting a missing key is a no-op", async () => {
      await store.set("/d/1", bytesOf(1));
      await store.set("/d/2", bytesOf(2));
      await store.delete("/d/1");
      expect(await store.get("/d/1")).toBeUndefined();
      expect(await fixture.readRaw("/d/1")).toBeUndefined();
      expect(await fixture.readRaw("/d/2")).toEqual(bytesOf(2));
      await store.delete("/d/1");
      await store.delete("/never/was/here");
      expect(await store.list("")).toEqual(["/d/2"]);
    });

    it("list by prefix: nested, sorted, partial segments, empty results", async () => {
      const keys: AbsolutePath[] = [
        "/zarr.json",
        "/arr/zarr.json",
        "/arr/c/1/0",
        "/arr/c/0/1",
        "/arr/c/0/0",
        "/arr/c/10/0",
        "/arr2/zarr.json",
        "/b",
      ];
      for (const key of keys) await store.set(key, bytesOf(1));
      expect(await store.list("")).toEqual([...keys].sort());
      expect(await store.list("/")).toEqual([...keys].sort());
      expect(await store.list("/arr/")).toEqual([
        "/arr/c/0/0",
        "/arr/c/0/1",
        "/arr/c/1/0",
        "/arr/c/10/0",
        "/arr/zarr.json",
      ]);
      expect(await store.list("/arr")).toEqual([
        "/arr/c/0/0",
        "/arr/c/0/1",
        "/arr/c/1/0",
        "/arr/c/10/0",
        "/arr/zarr.json",
        "/arr2/zarr.json",
      ]);
      expect(await store.list("/arr/c/1")).toEqual(["/arr/c/1/0", "/arr/c/10/0"]);
      expect(await store.list("/arr/c/1/")).toEqual(["/arr/c/1/0"]);
      expect(await store.list("/arr/c/0/1")).toEqual(["/arr/c/0/1"]);
      expect(await store.list("/nothing")).toEqual([]);
      expect(await store.list("/nothing/deeper/")).toEqual([]);
      expect(await store.list("/b/")).toEqual([]);
    });

    it("rejects hostile keys for every operation, writing nothing", async () => {
      for (const key of HOSTILE_KEYS) {
        const k = key as AbsolutePath;
        await expectCode(store.get(k), "ERR_INVALID_KEY");
        await expectCode(store.getRange(k, { offset: 0, length: 1 }), "ERR_INVALID_KEY");
        await expectCode(store.set(k, bytesOf(1)), "ERR_INVALID_KEY");
        await expectCode(store.delete(k), "ERR_INVALID_KEY");
        if (store.setIf) await expectCode(store.setIf(k, bytesOf(1), { ifAbsent: true }), "ERR_INVALID_KEY");
        if (store.getVersioned) await expectCode(store.getVersioned(k), "ERR_INVALID_KEY");
      }
      expect(await store.list("")).toEqual([]);
      expect(await fixture.readRaw("/escape")).toBeUndefined();
      expect(await fixture.readRaw("/a/b")).toBeUndefined();
    });

    it("explains what is wrong with a hostile key", async () => {
      const error = await store.set("/a/../b", bytesOf(1)).catch((e: unknown) => e);
      expect(isZarrTxError(error, "ERR_INVALID_KEY")).toBe(true);
      expect((error as Error).message).toContain('".."');
      expect((error as Error).message).toContain("A valid key is");
    });

    it("rejects unsafe list prefixes", async () => {
      for (const prefix of ["a", "/../", "/a/../", "//", "/a\\", "/\0", "/./"]) {
        await expectCode(store.list(prefix), "ERR_INVALID_KEY");
      }
    });

    it("an empty value round trips", async () => {
      await store.set("/empty", new Uint8Array(0));
      const got = await store.get("/empty");
      expectFreshExact(got, 0);
      expect(await fixture.readRaw("/empty")).toEqual(new Uint8Array(0));
      expect(await store.list("/empty")).toEqual(["/empty"]);
      expect(await store.getRange("/empty", { suffixLength: 3 })).toEqual(new Uint8Array(0));
    });

    it("a 1 MiB random value round trips", async () => {
      const value = randomBytes(1 << 20, 12345);
      await store.set("/big/value", value);
      const got = await store.get("/big/value");
      expectFreshExact(got, value.length);
      expect(Buffer.compare(got, value)).toBe(0);
      const raw = await fixture.readRaw("/big/value");
      expect(raw && Buffer.compare(raw, value)).toBe(0);
      const middle = await store.getRange("/big/value", { offset: 500_000, length: 1000 });
      expect(middle && Buffer.compare(middle, value.subarray(500_000, 501_000))).toBe(0);
    });

    it("concurrent sets of one key leave exactly one of the values intact", async () => {
      const size = 64 * 1024;
      const values = Array.from({ length: 16 }, (_, i) => new Uint8Array(size).fill(i + 1));
      await Promise.all(values.map((v) => store.set("/contended", v)));
      const got = await store.get("/contended");
      expectFreshExact(got, size);
      const first = got[0] as number;
      expect(first).toBeGreaterThanOrEqual(1);
      expect(first).toBeLessThanOrEqual(16);
      expect(got.every((b) => b === first)).toBe(true);
    });

    it("declares conditional writes exactly when it has them", () => {
      const has = store.capabilities.conditionalWrite;
      expect(typeof store.getVersioned === "function").toBe(has);
      expect(typeof store.setIf === "function").toBe(has);
    });

    it("conditional writes follow ifAbsent and ifVersion (when supported)", async () => {
      const { getVersioned, setIf } = store;
      if (!store.capabilities.conditionalWrite || !getVersioned || !setIf) {
        // Checked by the test above: a store without the capability has neither method.
        expect(store.capabilities.conditionalWrite).toBe(false);
        return;
      }
      const versioned = getVersioned.bind(store);
      const conditional = setIf.bind(store);
      expect(await versioned("/cas")).toBeUndefined();

      const v1 = await conditional("/cas", bytesOf(1), { ifAbsent: true });
      expect(typeof v1).toBe("string");
      expect(await fixture.readRaw("/cas")).toEqual(bytesOf(1));
      const read1 = await versioned("/cas");
      expect(read1?.version).toBe(v1);
      expect(read1?.value).toEqual(bytesOf(1));

      const absentAgain = await conditional("/cas", bytesOf(9), { ifAbsent: true }).catch((e: unknown) => e);
      expect(isZarrTxError(absentAgain, "ERR_CONFLICT")).toBe(true);
      expect(await fixture.readRaw("/cas")).toEqual(bytesOf(1));

      const v2 = await conditional("/cas", bytesOf(2), { ifVersion: v1 });
      expect(v2).not.toBe(v1);
      expect(await fixture.readRaw("/cas")).toEqual(bytesOf(2));

      await expectCode(conditional("/cas", bytesOf(3), { ifVersion: v1 }), "ERR_CONFLICT");
      expect(await fixture.readRaw("/cas")).toEqual(bytesOf(2));

      // A plain set changes the version too, so a writer holding the old one loses.
      await store.set("/cas", bytesOf(4));
      const read3 = await versioned("/cas");
      expect(read3?.version).not.toBe(v2);
      await expectCode(conditional("/cas", bytesOf(5), { ifVersion: v2 }), "ERR_CONFLICT");

      // A version never comes back after delete and re-create (no ABA).
      await store.delete("/cas");
      await expectCode(conditional("/cas", bytesOf(6), { ifVersion: v2 }), "ERR_CONFLICT");
      const v4 = await conditional("/cas", bytesOf(7), { ifAbsent: true });
      expect([v1, v2, read3?.version]).not.toContain(v4);

      // Of racing conditional writers holding one version, exactly one wins.
      const results = await Promise.allSettled(
        [10, 11, 12, 13].map((b) => conditional("/cas", bytesOf(b), { ifVersion: v4 })),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results)
        if (r.status === "rejected") expect(isZarrTxError(r.reason, "ERR_CONFLICT")).toBe(true);
    });

    it("declares journal capabilities exactly when it has the methods", () => {
      const caps = store.capabilities;
      expect(typeof store.createIfAbsent === "function").toBe(caps.createIfAbsent === true);
      expect(typeof store.rename === "function").toBe(caps.rename === true);
      expect(typeof store.copy === "function").toBe(caps.copy === true);
      // The journal needs one way to apply an entry without re-uploading, and an atomic commit point.
      expect(caps.rename === true || caps.copy === true).toBe(true);
      expect(caps.createIfAbsent).toBe(true);
    });

    it("createIfAbsent creates once; racing creators: exactly one wins", async () => {
      const create = store.createIfAbsent!.bind(store);
      await create("/once", bytesOf(1));
      expect(await fixture.readRaw("/once")).toEqual(bytesOf(1));
      await expectCode(create("/once", bytesOf(2)), "ERR_CONFLICT");
      expect(await fixture.readRaw("/once")).toEqual(bytesOf(1));
      const results = await Promise.allSettled([3, 4, 5, 6].map((b) => create("/race", bytesOf(b))));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results)
        if (r.status === "rejected") expect(isZarrTxError(r.reason, "ERR_CONFLICT")).toBe(true);
      expect(await store.list("/")).toEqual(["/once", "/race"]);
    });

    it("setMany stores every object, and an ifAbsent entry that exists is a conflict", async () => {
      if (!store.setMany) return expect(store.setMany).toBeUndefined();
      const setMany = store.setMany.bind(store);
      const source = filled(7, 3000);
      await setMany([
        { key: "/m/a", value: source },
        { key: "/m/deep/b", value: bytesOf(8) },
        { key: "/m/c", value: bytesOf(9), ifAbsent: true },
      ]);
      source[0] = 0; // a copy was stored
      expect(await fixture.readRaw("/m/a")).toEqual(filled(7, 3000));
      expect(await fixture.readRaw("/m/deep/b")).toEqual(bytesOf(8));
      expect(await fixture.readRaw("/m/c")).toEqual(bytesOf(9));
      await expectCode(setMany([{ key: "/m/c", value: bytesOf(1), ifAbsent: true }]), "ERR_CONFLICT");
      expect(await fixture.readRaw("/m/c")).toEqual(bytesOf(9));
      await expectCode(setMany([{ key: "/m/../x", value: bytesOf(1) }]), "ERR_INVALID_KEY");
    });

    it("deleteMany deletes every key; missing keys are no-ops", async () => {
      if (!store.deleteMany) return expect(store.deleteMany).toBeUndefined();
      await store.set("/d/a", bytesOf(1));
      await store.set("/d/b/c", bytesOf(2));
      await store.set("/d/keep", bytesOf(3));
      await store.deleteMany(["/d/a", "/d/b/c", "/d/missing"]);
      expect(await fixture.readRaw("/d/a")).toBeUndefined();
      expect(await fixture.readRaw("/d/b/c")).toBeUndefined();
      expect(await store.list("/d/")).toEqual(["/d/keep"]);
      await expectCode(store.deleteMany(["/d/../x"]), "ERR_INVALID_KEY");
    });

    it("rename moves objects onto their targets, replacing them; a missing source moves nothing", async () => {
      if (!store.rename) return expect(store.capabilities.rename ?? false).toBe(false);
      const rename = store.rename.bind(store);
      await store.set("/j/1", bytesOf(1));
      await store.set("/j/2", filled(2, 70_000));
      await store.set("/t/b", bytesOf(9));
      const moved = await rename([
        { from: "/j/1", to: "/t/a" },
        { from: "/j/2", to: "/t/b" },
        { from: "/j/3", to: "/t/c" },
      ]);
      expect(moved).toEqual([true, true, false]);
      expect(await fixture.readRaw("/t/a")).toEqual(bytesOf(1));
      expect(await fixture.readRaw("/t/b")).toEqual(filled(2, 70_000));
      expect(await fixture.readRaw("/t/c")).toBeUndefined();
      expect(await store.list("/")).toEqual(["/t/a", "/t/b"]);
      await expectCode(rename([{ from: "/t/a", to: "/../x" }]), "ERR_INVALID_KEY");
    });

    it("copy copies inside the store, under an optional condition on the target", async () => {
      if (!store.copy) return expect(store.capabilities.copy ?? false).toBe(false);
      const copy = store.copy.bind(store);
      await store.set("/src", filled(5, 5000));
      expect(await copy("/missing", "/dst")).toBeUndefined();
      expect(await fixture.readRaw("/dst")).toBeUndefined();
      const v1 = await copy("/src", "/dst");
      expect(typeof v1).toBe("string");
      expect(await fixture.readRaw("/dst")).toEqual(filled(5, 5000));
      expect(await fixture.readRaw("/src")).toEqual(filled(5, 5000));
      if (store.capabilities.conditionalWrite) {
        await expectCode(copy("/src", "/dst", { ifAbsent: true }), "ERR_CONFLICT");
        const current = await store.getVersioned!("/dst");
        await store.set("/src", bytesOf(6));
        await copy("/src", "/dst", { ifVersion: current!.version });
        expect(await fixture.readRaw("/dst")).toEqual(bytesOf(6));
        await expectCode(copy("/src", "/dst", { ifVersion: current!.version }), "ERR_CONFLICT");
        await copy("/src", "/new", { ifAbsent: true });
        expect(await fixture.readRaw("/new")).toEqual(bytesOf(6));
      }
    });

    it("plain zarrita creates, writes and reads an array through the store", async () => {
      const location = zarr.root(store).resolve("arr");
      const created = await zarr.create(location, {
        shape: [6, 4],
        chunkShape: [4, 3],
        dtype: "int32",
        fillValue: -1,
      });
      const data = new Int32Array(24).map((_, i) => i * 7 - 30);
      await zarr.set(created, null, { data, shape: [6, 4], stride: [4, 1] });
      // A partial write makes zarrita read, merge and re-encode a chunk.
      await zarr.set(created, [zarr.slice(4, 6), zarr.slice(3, 4)], 99);

      const opened = await zarr.open(location, { kind: "array" });
      const got = await zarr.get(opened, null);
      const expected = Int32Array.from(data);
      expected[4 * 4 + 3] = 99;
      expected[5 * 4 + 3] = 99;
      expect(got.shape).toEqual([6, 4]);
      expect(Array.from(got.data as Int32Array)).toEqual(Array.from(expected));

      const meta = await fixture.readRaw("/arr/zarr.json");
      expect(JSON.parse(new TextDecoder().decode(meta))).toMatchObject({
        zarr_format: 3,
        node_type: "array",
      });
      expect(await store.list("/arr/")).toEqual([
        "/arr/c/0/0",
        "/arr/c/0/1",
        "/arr/c/1/0",
        "/arr/c/1/1",
        "/arr/zarr.json",
      ]);
      expect((await fixture.readRaw("/arr/c/1/1"))?.length).toBe(4 * 3 * 4);
    });

    if (harness.createReadOnly) {
      const createReadOnly = harness.createReadOnly.bind(harness);
      describe("read-only", () => {
        let ro: StoreFixture;
        beforeEach(async () => {
          ro = await createReadOnly();
        });
        afterEach(async () => {
          await ro.cleanup();
        });

        it("reads, and refuses set and delete with ERR_STORE_READ_ONLY", async () => {
          expect(ro.store.readOnly).toBe(true);
          await ro.writeRaw("/k/v", bytesOf(5, 6));
          expect(await ro.store.get("/k/v")).toEqual(bytesOf(5, 6));
          expect(await ro.store.getRange("/k/v", { suffixLength: 1 })).toEqual(bytesOf(6));
          expect(await ro.store.list("")).toEqual(["/k/v"]);
          await expectCode(ro.store.set("/k/v", bytesOf(7)), "ERR_STORE_READ_ONLY");
          await expectCode(ro.store.set("/k/new", bytesOf(7)), "ERR_STORE_READ_ONLY");
          await expectCode(ro.store.delete("/k/v"), "ERR_STORE_READ_ONLY");
          await expectCode(ro.store.delete("/k/missing"), "ERR_STORE_READ_ONLY");
          if (ro.store.setIf) {
            await expectCode(ro.store.setIf("/k/new", bytesOf(7), { ifAbsent: true }), "ERR_STORE_READ_ONLY");
          }
          expect(await ro.readRaw("/k/v")).toEqual(bytesOf(5, 6));
          expect(await ro.readRaw("/k/new")).toBeUndefined();
          expect(await ro.store.list("")).toEqual(["/k/v"]);
        });

        it("still rejects hostile keys with ERR_INVALID_KEY", async () => {
          await expectCode(ro.store.get("/../x" as AbsolutePath), "ERR_INVALID_KEY");
          await expectCode(ro.store.set("/a/../x" as AbsolutePath, bytesOf(1)), "ERR_INVALID_KEY");
        });
      });
    }
  });
}
