/**
 * S3Store against a real S3-compatible server (fauxqs behind the test proxy of test/s3-harness.ts): the
 * shared Store conformance suite with ground truth read through a raw SDK client that bypasses the store
 * and the proxy, then what is S3's own: suffix ranges, pagination, conditional put/copy conflicts, a lost
 * reply to a conditional put, retries, typed failures (wrong bucket, 403, 500, timeouts) with nothing
 * written, and credentials kept out of every error.
 */
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { isZarrTxError, type ZarrTxErrorCode } from "../src/errors.js";
import { create, get, open, set, slice } from "../src/index.js";
import { S3Store, type S3StoreOptions } from "../src/store/s3.js";
import type { AbsolutePath } from "../src/store/types.js";
import { describeStore, type StoreFixture } from "./conformance/store.js";
import { type S3TestServer, startS3Server } from "./s3-harness.js";

let s3: S3TestServer;
let bucket: string;
const stores: S3Store[] = [];

beforeAll(async () => {
  s3 = await startS3Server();
  bucket = s3.createBucket();
});

afterAll(async () => {
  for (const store of stores) store.close();
  await s3?.stop();
});

function newStore(options: Partial<S3StoreOptions> = {}): S3Store {
  const store = new S3Store({
    bucket,
    prefix: `t-${randomBytes(5).toString("hex")}`,
    config: s3.clientConfig(),
    ...options,
  });
  stores.push(store);
  return store;
}

/** Ground truth: the raw client reads and writes fauxqs directly, bypassing the store and the proxy. */
function fixtureOf(store: S3Store): StoreFixture {
  const objectKey = (key: string) => `${store.prefix}${key}`;
  return {
    store,
    async readRaw(key: AbsolutePath) {
      try {
        const out = await s3.rawClient.send(
          new GetObjectCommand({ Bucket: store.bucket, Key: objectKey(key) }),
        );
        return new Uint8Array(await (out.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array(0))));
      } catch (error) {
        if ((error as { name?: string }).name === "NoSuchKey") return undefined;
        throw error;
      }
    },
    async writeRaw(key: AbsolutePath, bytes: Uint8Array) {
      await s3.rawClient.send(
        new PutObjectCommand({ Bucket: store.bucket, Key: objectKey(key), Body: bytes }),
      );
    },
    async cleanup() {
      // Objects live in fauxqs's memory until the server stops; every fixture has its own prefix.
    },
  };
}

describeStore("S3Store (fauxqs + conditional-write emulation)", {
  async create() {
    return fixtureOf(newStore());
  },
  async createReadOnly() {
    return fixtureOf(newStore({ readOnly: true }));
  },
});

async function expectCode(promise: Promise<unknown>, code: ZarrTxErrorCode): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isZarrTxError(error, code), `expected ${code}, got ${inspect(error)}`).toBe(true);
  return error as Error;
}

const bytes = (...values: number[]) => new Uint8Array(values);

describe("S3Store specifics", () => {
  let store: S3Store;
  let raw: StoreFixture;

  beforeEach(() => {
    s3.clearFaults();
    store = newStore();
    raw = fixtureOf(store);
    s3.resetCounts();
  });

  it("has a stable id naming endpoint, bucket and prefix; prefixes are canonical", () => {
    const host = new URL(s3.endpoint).host;
    const a = new S3Store({ bucket, prefix: "/data/x.zarr/", config: s3.clientConfig() });
    const b = new S3Store({
      bucket,
      prefix: "data/x.zarr",
      config: s3.clientConfig({ region: "eu-west-1" }),
    });
    const client = new S3Client(s3.clientConfig());
    const c = new S3Store({ bucket, prefix: "data/x.zarr", client, endpoint: s3.endpoint });
    stores.push(a, b, c);
    expect(a.id).toBe(`s3://${host}/${bucket}/data/x.zarr`);
    expect(b.id).toBe(a.id);
    expect(c.id).toBe(a.id);
    expect(new S3Store({ bucket, prefix: "other", client, endpoint: s3.endpoint }).id).not.toBe(a.id);
    expect(new S3Store({ bucket, client: new S3Client({ region: "us-east-1" }) }).id).toBe(
      `s3://amazonaws.com/${bucket}`,
    );
    client.destroy();
  });

  it("refuses bad options before any request", () => {
    const config = s3.clientConfig();
    const bad: unknown[] = [
      { bucket: "Bad_Bucket", config },
      { bucket, prefix: "a/../b", config },
      { bucket, prefix: "a//b", config },
      { bucket },
      { bucket, config, client: new S3Client(config) },
      { bucket, client: new S3Client(config) }, // custom endpoint, but no `endpoint` for the id
      { bucket, config: { ...config, endpoint: "not a url" } },
      { bucket, config, listPageSize: 0 },
      { bucket, config, maxConcurrency: 1.5 },
    ];
    for (const [i, options] of bad.entries()) {
      expect(() => new S3Store(options as S3StoreOptions), `options #${i}`).toThrow(
        expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }),
      );
    }
    expect(s3.total()).toBe(0);
  });

  it("reads suffix ranges with one ranged GET, and a suffix longer than the object whole", async () => {
    const value = new Uint8Array(4096).map((_, i) => i % 251);
    await store.set("/shard", value);
    s3.resetCounts();
    expect(await store.getRange("/shard", { suffixLength: 16 })).toEqual(value.slice(4080));
    expect(await store.getRange("/shard", { offset: 100, length: 50 })).toEqual(value.slice(100, 150));
    expect(s3.counts()).toEqual({ GetObject: 2 });
    // fauxqs answers 416 to a suffix longer than the object (RFC 9110: the whole object); the store
    // then reads the object whole.
    expect(await store.getRange("/shard", { suffixLength: 10_000 })).toEqual(value);
    expect(await store.getRange("/missing", { suffixLength: 10_000 })).toBeUndefined();
  });

  it("follows every LIST page (MaxKeys 7, and the default 1000 in one page)", async () => {
    const keys = Array.from(
      { length: 120 },
      (_, i) => `/arr/c/${i % 12}/${Math.floor(i / 12)}` as AbsolutePath,
    );
    await Promise.all(keys.map((key) => raw.writeRaw(key, bytes(1))));
    const small = new S3Store({ bucket, prefix: store.prefix, config: s3.clientConfig(), listPageSize: 7 });
    stores.push(small);
    s3.resetCounts();
    expect(await small.list("/arr/")).toEqual([...keys].sort());
    expect(s3.counts()).toEqual({ ListObjectsV2: Math.ceil(120 / 7) });
    s3.resetCounts();
    expect(await small.list("/arr/c/1/")).toEqual(keys.filter((k) => k.startsWith("/arr/c/1/")).sort());
    expect(s3.counts()).toEqual({ ListObjectsV2: 2 });
    s3.resetCounts();
    expect(await store.list("/arr/")).toEqual([...keys].sort());
    expect(s3.counts()).toEqual({ ListObjectsV2: 1 });
  });

  it("lists in one order across pages whatever the case and punctuation of keys", async () => {
    // Code-unit order and locale order differ here ("B" < "a" < "b"; "." < "_"); no key may be lost.
    const keys = [
      "/B",
      "/a",
      "/b",
      "/_x",
      "/.x",
      "/a.b",
      "/a_b",
      "/a-b",
      "/A/b",
      "/Z",
      "/z",
    ] as AbsolutePath[];
    for (const key of keys) await store.set(key, bytes(1));
    const paged = new S3Store({ bucket, prefix: store.prefix, config: s3.clientConfig(), listPageSize: 2 });
    stores.push(paged);
    expect(await paged.list("")).toEqual([...keys].sort());
  });

  it("skips objects under the prefix whose names are not valid store keys", async () => {
    await store.set("/ok", bytes(1));
    await s3.rawClient.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${store.prefix}/a//b`, Body: bytes(2) }),
    );
    await s3.rawClient.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${store.prefix}/x/../y`, Body: bytes(2) }),
    );
    await s3.rawClient.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${store.prefix}-sibling/z`, Body: bytes(3) }),
    );
    expect(await store.list("")).toEqual(["/ok"]);
  });

  it("conditional put: 412 is a conflict, and nothing is written", async () => {
    const v1 = await store.setIf("/k", bytes(1), { ifAbsent: true });
    await raw.writeRaw("/k", bytes(2));
    const error = await expectCode(store.setIf("/k", bytes(3), { ifVersion: v1 }), "ERR_CONFLICT");
    expect(error.message).toContain("/k");
    expect(await raw.readRaw("/k")).toEqual(bytes(2));
    await expectCode(store.createIfAbsent("/k", bytes(4)), "ERR_CONFLICT");
    expect(await raw.readRaw("/k")).toEqual(bytes(2));
    // If-Match on a deleted object (S3: 404 NoSuchKey) is a conflict too.
    await store.delete("/k");
    await expectCode(store.setIf("/k", bytes(5), { ifVersion: v1 }), "ERR_CONFLICT");
    expect(await raw.readRaw("/k")).toBeUndefined();
    expect(s3.counts().PutObject).toBe(4);
  });

  it("conditional put: a 409 whose condition still holds is sent again; one that no longer holds is a conflict", async () => {
    const v1 = await store.setIf("/k", bytes(1), { ifAbsent: true });
    s3.inject({ op: "PutObject", fault: { kind: "error", status: 409, code: "ConditionalRequestConflict" } });
    s3.resetCounts();
    const v2 = await store.setIf("/k", bytes(2), { ifVersion: v1 });
    expect(await raw.readRaw("/k")).toEqual(bytes(2));
    expect(s3.counts()).toEqual({ GetObject: 1, PutObject: 2 });

    s3.inject({ op: "PutObject", fault: { kind: "error", status: 409, code: "ConditionalRequestConflict" } });
    await raw.writeRaw("/k", bytes(7));
    await expectCode(store.setIf("/k", bytes(3), { ifVersion: v2 }), "ERR_CONFLICT");
    expect(await raw.readRaw("/k")).toEqual(bytes(7));
  });

  it("racing conditional writers through the emulation: exactly one wins, the others get ERR_CONFLICT", async () => {
    const v = await store.setIf("/race", bytes(0), { ifAbsent: true });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.setIf("/race", bytes(i + 1), { ifVersion: v })),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const r of results)
      if (r.status === "rejected") expect(isZarrTxError(r.reason, "ERR_CONFLICT")).toBe(true);
    const stored = await raw.readRaw("/race");
    expect(stored?.[0]).toBeGreaterThan(0);
    expect((await store.getVersioned("/race"))?.version).toBe(
      (won[0] as PromiseFulfilledResult<string>).value,
    );
  });

  it("a lost reply to a conditional put, re-sent by the SDK, is not reported as a conflict", async () => {
    const v1 = await store.setIf("/k", bytes(1), { ifAbsent: true });
    // The first PUT is applied, but its reply is replaced by a 500: the SDK sends it again, and the
    // second attempt finds the ETag changed (412). The store sees its own bytes there: success.
    s3.inject({ op: "PutObject", fault: { kind: "lost-reply" } });
    s3.resetCounts();
    const v2 = await store.setIf("/k", bytes(2, 2), { ifVersion: v1 });
    expect(s3.counts()).toEqual({ GetObject: 1, PutObject: 2 });
    expect(await raw.readRaw("/k")).toEqual(bytes(2, 2));
    expect((await store.getVersioned("/k"))?.version).toBe(v2);

    // The same with a reset connection instead of a 500, and for a create.
    s3.inject({ op: "PutObject", fault: { kind: "reset" } });
    await store.createIfAbsent("/new", bytes(9));
    expect(await raw.readRaw("/new")).toEqual(bytes(9));
  });

  it("a re-sent conditional put that meets someone else's bytes is a conflict", async () => {
    const v1 = await store.setIf("/k", bytes(1), { ifAbsent: true });
    await raw.writeRaw("/k", bytes(5));
    // The first attempt fails without being applied; the re-sent one meets the other writer's object.
    s3.inject({ op: "PutObject", fault: { kind: "error", status: 500, code: "InternalError" } });
    await expectCode(store.setIf("/k", bytes(2), { ifVersion: v1 }), "ERR_CONFLICT");
    expect(await raw.readRaw("/k")).toEqual(bytes(5));
  });

  it("copy: server-side, conditioned on the target, undefined for a missing source", async () => {
    await store.set("/src", bytes(1, 2, 3));
    s3.resetCounts();
    const v = await store.copy("/src", "/dst", { ifAbsent: true });
    expect(s3.counts()).toEqual({ CopyObject: 1 });
    expect(await raw.readRaw("/dst")).toEqual(bytes(1, 2, 3));
    expect((await store.getVersioned("/dst"))?.version).toBe(v);
    await expectCode(store.copy("/src", "/dst", { ifAbsent: true }), "ERR_CONFLICT");

    await store.set("/src", bytes(4));
    const v2 = await store.copy("/src", "/dst", { ifVersion: v as string });
    expect(await raw.readRaw("/dst")).toEqual(bytes(4));
    await raw.writeRaw("/dst", bytes(8));
    await expectCode(store.copy("/src", "/dst", { ifVersion: v2 as string }), "ERR_CONFLICT");
    expect(await raw.readRaw("/dst")).toEqual(bytes(8));
    await expectCode(store.copy("/src", "/nothing-there", { ifVersion: v2 as string }), "ERR_CONFLICT");
    expect(await raw.readRaw("/nothing-there")).toBeUndefined();

    expect(await store.copy("/missing", "/dst2")).toBeUndefined();
    expect(await store.copy("/missing", "/dst", { ifVersion: v2 as string })).toBeUndefined();
    expect(await raw.readRaw("/dst2")).toBeUndefined();
    // Unconditional copy overwrites; a lost reply to a conditional copy is no conflict either.
    expect(await store.copy("/src", "/dst")).toBeTypeOf("string");
    const current = await store.getVersioned("/dst");
    await store.set("/src", bytes(6, 6));
    s3.inject({ op: "CopyObject", fault: { kind: "lost-reply" } });
    await store.copy("/src", "/dst", { ifVersion: current?.version as string });
    expect(await raw.readRaw("/dst")).toEqual(bytes(6, 6));
  });

  it("setMany writes in parallel, creates only absent keys, and reports the conflict after the rest", async () => {
    await store.set("/j/taken", bytes(0));
    const entries = Array.from({ length: 20 }, (_, i) => ({
      key: `/j/${i}` as AbsolutePath,
      value: bytes(i),
    }));
    await expectCode(
      store.setMany([...entries, { key: "/j/taken" as AbsolutePath, value: bytes(1), ifAbsent: true }]),
      "ERR_CONFLICT",
    );
    for (const { key, value } of entries) expect(await raw.readRaw(key)).toEqual(value);
    expect(await raw.readRaw("/j/taken")).toEqual(bytes(0));
    s3.resetCounts();
    await expectCode(
      store.setMany([
        { key: "/ok" as AbsolutePath, value: bytes(1) },
        { key: "/a/../b" as AbsolutePath, value: bytes(1) },
      ]),
      "ERR_INVALID_KEY",
    );
    expect(s3.total()).toBe(0);
  });

  it("retries throttling and 5xx through the SDK: one 503 SlowDown and one 500 cost one more request each", async () => {
    s3.inject({ op: "PutObject", fault: { kind: "error", status: 503, code: "SlowDown" } });
    s3.inject({ op: "GetObject", fault: { kind: "error", status: 500, code: "InternalError" } });
    await store.set("/r", bytes(1));
    expect(await store.get("/r")).toEqual(bytes(1));
    expect(s3.counts()).toEqual({ GetObject: 2, PutObject: 2 });
  });

  it("a wrong bucket is ERR_STORE_NOT_FOUND for every operation, and says what to do", async () => {
    const missing = newStore({ bucket: "no-such-bucket-here" });
    const message = (await expectCode(missing.get("/x"), "ERR_STORE_NOT_FOUND")).message;
    expect(message).toContain("no-such-bucket-here");
    expect(message).toContain("Create it");
    await expectCode(missing.set("/x", bytes(1)), "ERR_STORE_NOT_FOUND");
    await expectCode(missing.list(""), "ERR_STORE_NOT_FOUND");
    await expectCode(missing.version("/x"), "ERR_STORE_NOT_FOUND");
    await expectCode(missing.getVersioned("/x"), "ERR_STORE_NOT_FOUND");
    await expectCode(missing.setIf("/x", bytes(1), { ifAbsent: true }), "ERR_STORE_NOT_FOUND");
  });

  it("403 (injected AccessDenied, or an unknown access key) is ERR_STORE_ACCESS_DENIED, not retried, nothing written", async () => {
    s3.inject({ op: "PutObject", fault: { kind: "error", status: 403, code: "AccessDenied" } });
    const error = await expectCode(store.set("/denied", bytes(1)), "ERR_STORE_ACCESS_DENIED");
    expect(error.message).toContain("s3:PutObject");
    expect(s3.counts()).toEqual({ PutObject: 1 });
    expect(await raw.readRaw("/denied")).toBeUndefined();
  });

  it("credentials never appear in errors (message, stack, cause, inspect, JSON)", async () => {
    const accessKeyId = `AKIA${randomBytes(8).toString("hex").toUpperCase()}`;
    const secretAccessKey = `secret-${randomBytes(16).toString("hex")}`;
    const wrong = newStore({
      config: s3.clientConfig({
        credentials: { accessKeyId, secretAccessKey, sessionToken: "session-tok-123" },
      }),
    });
    const failures: unknown[] = await Promise.all([
      wrong.get("/x").catch((e: unknown) => e),
      wrong.set("/x", bytes(1)).catch((e: unknown) => e),
      wrong.list("").catch((e: unknown) => e),
      wrong.version("/x").catch((e: unknown) => e),
    ]);
    // The proxy's 403 echoes the access key id (as AWS's InvalidAccessKeyId does).
    s3.inject({ op: "PutObject", fault: { kind: "error", status: 500, code: "InternalError" }, times: 3 });
    const ownKeyStore = newStore();
    failures.push(await ownKeyStore.set("/y", bytes(1)).catch((e: unknown) => e));
    for (const failure of failures) {
      expect(isZarrTxError(failure)).toBe(true);
      const text = [
        inspect(failure, { depth: 20, showHidden: true }),
        JSON.stringify(failure),
        (failure as Error).stack,
        JSON.stringify((failure as Error).cause),
      ].join("\n");
      for (const secret of [
        accessKeyId,
        secretAccessKey,
        "session-tok-123",
        s3.credentials.accessKeyId,
        s3.credentials.secretAccessKey,
      ]) {
        expect(text).not.toContain(secret);
      }
    }
    expect((failures[0] as { code: string }).code).toBe("ERR_STORE_ACCESS_DENIED");
    expect((failures[4] as { code: string }).code).toBe("ERR_STORE_IO");
    expect(wrong.id).not.toContain(accessKeyId);
  });

  it("an injected 500 on every attempt is ERR_STORE_IO after the SDK's retries, nothing written", async () => {
    await store.set("/v", bytes(1));
    s3.inject({
      op: "PutObject",
      fault: { kind: "error", status: 500, code: "InternalError" },
      times: Infinity,
    });
    s3.resetCounts();
    const error = await expectCode(store.set("/v", bytes(2)), "ERR_STORE_IO");
    expect(error.message).toContain("InternalError (HTTP 500), after 3 attempt(s)");
    expect(s3.counts()).toEqual({ PutObject: 3 });
    expect(await raw.readRaw("/v")).toEqual(bytes(1));
  });

  it("a hung request times out per attempt and ends as ERR_STORE_IO, nothing written", async () => {
    const quick = newStore({ requestTimeoutMs: 200, config: s3.clientConfig({ maxAttempts: 2 }) });
    await quick.set("/h", bytes(1));
    s3.inject({ op: "PutObject", fault: { kind: "hang" }, times: Infinity });
    const started = performance.now();
    const error = await expectCode(quick.set("/h", bytes(2)), "ERR_STORE_IO");
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(error.message).toMatch(/TimeoutError|timed out|did not answer/i);
    s3.clearFaults();
    expect(await fixtureOf(quick).readRaw("/h")).toEqual(bytes(1));
  });

  it("a zarr-tx transaction on an S3-backed array fails typed and leaves every stored byte unchanged", async () => {
    const array = await create(store, { path: "a", shape: [8, 8], chunkShape: [4, 4], dtype: "int32" });
    await set(array, null, 1);
    const keys = (await store.list("/a/")).filter((k) => k.includes("/c/"));
    expect(keys).toHaveLength(4);
    const before = await Promise.all(keys.map((k) => raw.readRaw(k)));
    const unchanged = async () => {
      expect(await Promise.all(keys.map((k) => raw.readRaw(k)))).toEqual(before);
      expect((await store.list("")).filter((k) => !k.startsWith("/a/"))).toEqual([]);
    };

    const quick = new S3Store({
      bucket,
      prefix: store.prefix,
      requestTimeoutMs: 250,
      config: s3.clientConfig({ maxAttempts: 2 }),
    });
    stores.push(quick);
    const arrayQ = await open(quick, { path: "a" });
    const writes = ["PutObject", "CopyObject", "DeleteObject"] as const;
    const faults = [
      { kind: "error", status: 500, code: "InternalError" },
      { kind: "error", status: 403, code: "AccessDenied" },
      { kind: "hang" },
    ] as const;
    for (const fault of faults) {
      const remove = s3.inject({ op: [...writes], fault, times: Infinity });
      const error = await set(arrayQ, [slice(2, 6), slice(2, 6)], 7).catch((e: unknown) => e);
      remove();
      expect(isZarrTxError(error), `${fault.kind}: ${inspect(error)}`).toBe(true);
      await unchanged();
    }
    // The bucket itself missing: the array cannot even be opened.
    const gone = newStore({ bucket: "no-such-bucket-either", prefix: store.prefix });
    await expectCode(open(gone, { path: "a" }), "ERR_STORE_NOT_FOUND");
    // And after the faults, the same write goes through.
    await set(arrayQ, [slice(2, 6), slice(2, 6)], 7);
    const { data } = await get(array, null);
    expect(Array.from(data as Int32Array).filter((v) => v === 7)).toHaveLength(16);
  });

  it("sharded arrays on S3: zarr-tx writes whole shards, reads them back, and plain zarrita reads the index from the end", async () => {
    const array = await create(store, {
      path: "sharded",
      shape: [16, 16],
      chunkShape: [8, 8],
      dtype: "int32",
      codecs: [
        {
          name: "sharding_indexed",
          configuration: {
            chunk_shape: [4, 4],
            codecs: [{ name: "bytes" }],
            index_codecs: [{ name: "bytes" }, { name: "crc32c" }],
            index_location: "end",
          },
        },
      ],
    });
    await set(array, [slice(2, 14), slice(3, 13)], 9);
    const expected = new Int32Array(256).map((_, i) => {
      const r = Math.floor(i / 16);
      const c = i % 16;
      return r >= 2 && r < 14 && c >= 3 && c < 13 ? 9 : 0;
    });
    expect(Array.from((await get(array, null)).data as Int32Array)).toEqual(Array.from(expected));
    s3.resetCounts();
    const plain = await zarr.open(zarr.root(store).resolve("sharded"), { kind: "array" });
    const got = await zarr.get(plain as zarr.Array<"int32">, [zarr.slice(0, 4), zarr.slice(0, 4)]);
    expect(Array.from(got.data as Int32Array)).toEqual(
      Array.from(expected.filter((_, i) => i % 16 < 4 && i < 64)),
    );
    // zarrita reads ranges of the shard (its index at the end, then the inner chunk), not the whole object.
    expect(s3.counts().GetObject).toBeGreaterThanOrEqual(2);
  });

  it("deletes missing keys quietly, and a read-only store refuses copy and setMany", async () => {
    await store.delete("/never");
    const ro = newStore({ prefix: store.prefix, readOnly: true });
    await store.set("/s", bytes(1));
    await expectCode(ro.copy("/s", "/t"), "ERR_STORE_READ_ONLY");
    await expectCode(ro.setMany([{ key: "/t" as AbsolutePath, value: bytes(1) }]), "ERR_STORE_READ_ONLY");
    await expectCode(ro.createIfAbsent("/t", bytes(1)), "ERR_STORE_READ_ONLY");
    expect(await raw.readRaw("/t")).toBeUndefined();
    await s3.rawClient.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${store.prefix}/s` }));
  });
});
