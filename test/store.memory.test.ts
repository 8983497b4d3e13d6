import { describe, expect, it } from "vitest";
import { isZarrTxError } from "../src/errors.js";
import { MemoryStore } from "../src/store/memory.js";
import { describeStore, type StoreFixture } from "./conformance/store.js";

function fixtureOver(map: Map<string, Uint8Array>, store: MemoryStore): StoreFixture {
  return {
    store,
    // The backing map is the ground truth; copy so the test never shares bytes with the store.
    async readRaw(key) {
      const bytes = map.get(key);
      return bytes === undefined ? undefined : new Uint8Array(bytes);
    },
    async writeRaw(key, bytes) {
      map.set(key, new Uint8Array(bytes));
    },
    async cleanup() {
      map.clear();
    },
  };
}

describeStore("MemoryStore", {
  async create() {
    const map = new Map<string, Uint8Array>();
    return fixtureOver(map, new MemoryStore({ map }));
  },
  async createReadOnly() {
    const map = new Map<string, Uint8Array>();
    return fixtureOver(map, new MemoryStore({ map, readOnly: true }));
  },
});

describe("MemoryStore specifics", () => {
  it("gives every store its own id, and stores sharing a map one id", () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    expect(a.id).toMatch(/^memory:[0-9a-f-]{36}$/);
    expect(a.id).not.toBe(b.id);
    const map = new Map<string, Uint8Array>();
    expect(new MemoryStore({ map }).id).toBe(new MemoryStore({ map, readOnly: true }).id);
  });

  it("declares atomic, non-durable, conditional writes", () => {
    expect(new MemoryStore().capabilities).toEqual({
      atomicReplace: true,
      durable: false,
      conditionalWrite: true,
      createIfAbsent: true,
      rename: true,
      copy: true,
      cheapList: true,
      persistent: false,
    });
  });

  it("stores sharing a map see each other's writes and agree on versions", async () => {
    const map = new Map<string, Uint8Array>();
    const a = new MemoryStore({ map });
    const b = new MemoryStore({ map });
    const v1 = await a.setIf("/k", new Uint8Array([1]), { ifAbsent: true });
    expect((await b.getVersioned("/k"))?.version).toBe(v1);
    const v2 = await b.setIf("/k", new Uint8Array([2]), { ifVersion: v1 });
    const lost = await a.setIf("/k", new Uint8Array([3]), { ifVersion: v1 }).catch((e: unknown) => e);
    expect(isZarrTxError(lost, "ERR_CONFLICT")).toBe(true);
    expect(await a.get("/k")).toEqual(new Uint8Array([2]));
    expect((await a.getVersioned("/k"))?.version).toBe(v2);
  });

  it("a raw write to the map changes the version", async () => {
    const map = new Map<string, Uint8Array>();
    const store = new MemoryStore({ map });
    const v1 = await store.setIf("/k", new Uint8Array([1]), { ifAbsent: true });
    map.set("/k", new Uint8Array([1]));
    const lost = await store.setIf("/k", new Uint8Array([2]), { ifVersion: v1 }).catch((e: unknown) => e);
    expect(isZarrTxError(lost, "ERR_CONFLICT")).toBe(true);
  });

  it("copies Buffer input instead of keeping a view into its pool", async () => {
    const store = new MemoryStore();
    const pooled = Buffer.from([1, 2, 3]);
    await store.set("/buf", pooled);
    pooled[0] = 9;
    const got = await store.get("/buf");
    expect(got).toEqual(new Uint8Array([1, 2, 3]));
    expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype);
  });

  it("refuses a value that is not a Uint8Array", async () => {
    const store = new MemoryStore();
    const error = await store.set("/k", [1, 2] as unknown as Uint8Array).catch((e: unknown) => e);
    expect(isZarrTxError(error, "ERR_INVALID_ARGUMENT")).toBe(true);
    expect(await store.list("")).toEqual([]);
  });

  it("honours an aborted signal on reads", async () => {
    const store = new MemoryStore();
    await store.set("/k", new Uint8Array([1]));
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(store.get("/k", { signal: controller.signal })).rejects.toThrow("stop");
  });
});
