import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isZarrTxError, type ZarrTxErrorCode } from "../src/errors.js";
import { FileSystemStore, isTempFileName, TEMP_FILE_PREFIX } from "../src/store/filesystem.js";
import type { AbsolutePath, Store } from "../src/store/types.js";
import { describeStore, HOSTILE_KEYS, type StoreFixture } from "./conformance/store.js";

const execFileAsync = promisify(execFile);

async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "zarr-tx-fs-store-"));
}

function fixtureAt(dir: string, store: FileSystemStore, cleanupDir: string): StoreFixture {
  const pathOf = (key: string) => join(dir, ...key.slice(1).split("/"));
  return {
    store,
    async readRaw(key) {
      try {
        // readFile returns a Buffer; copy into a plain Uint8Array so comparisons are by value only.
        return new Uint8Array(await readFile(pathOf(key)));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return undefined;
        throw error;
      }
    },
    async writeRaw(key, bytes) {
      await mkdir(dirname(pathOf(key)), { recursive: true });
      await writeFile(pathOf(key), bytes);
    },
    async cleanup() {
      await rm(cleanupDir, { recursive: true, force: true });
    },
  };
}

describeStore("FileSystemStore", {
  async create() {
    const dir = await makeTempDir();
    return fixtureAt(dir, new FileSystemStore(dir), dir);
  },
  async createReadOnly() {
    const dir = await makeTempDir();
    return fixtureAt(dir, new FileSystemStore(dir, { readOnly: true }), dir);
  },
});

describeStore("FileSystemStore (replacing by rename, as where the filesystem has no exchange)", {
  async create() {
    const dir = await makeTempDir();
    const store = new FileSystemStore(dir, { replaceByExchange: false });
    expect(store.replacesByExchange).toBe(false);
    return fixtureAt(dir, store, dir);
  },
});

describeStore("FileSystemStore (fsync off, root created by the store)", {
  async create() {
    const parent = await makeTempDir();
    const dir = join(parent, "not", "yet", "there");
    return fixtureAt(dir, new FileSystemStore(dir, { fsync: false }), parent);
  },
});

/** Every file name below `dir`, recursively. */
async function allNames(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map((e) => String(e));
}

async function expectCode(promise: Promise<unknown>, code: ZarrTxErrorCode): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isZarrTxError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error as Error;
}

describe("FileSystemStore specifics", () => {
  let base: string;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    base = await makeTempDir();
    root = join(base, "store");
    outside = join(base, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "secret"), "secret");
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("declares atomic replace, durability per the fsync option, and no conditional writes", () => {
    const store: Store = new FileSystemStore(root);
    expect(store.capabilities).toEqual({
      atomicReplace: true,
      durable: true,
      conditionalWrite: false,
      createIfAbsent: true,
      rename: true,
      cheapList: true,
    });
    expect(store.getVersioned).toBeUndefined();
    expect(store.setIf).toBeUndefined();
    expect(new FileSystemStore(root, { fsync: false }).capabilities.durable).toBe(false);
    expect(new FileSystemStore(root, { applyInPlace: true }).capabilities.applyInPlace).toBe(true);
  });

  it("replaces existing files by exchanging names on Linux, leaving no temp file and other hard links alone", async () => {
    const store = new FileSystemStore(root);
    expect(store.replacesByExchange).toBe(process.platform === "linux");
    expect(new FileSystemStore(root, { readOnly: true }).replacesByExchange).toBe(false);
    await store.set("/c/0", new Uint8Array([1, 1]));
    const { link } = await import("node:fs/promises");
    await link(join(root, "c", "0"), join(outside, "snapshot"));
    const before = (await stat(join(root, "c", "0"))).ino;
    await store.set("/c/0", new Uint8Array([2, 2, 2]));
    await store.rename([{ from: "/c/0", to: "/c/1" }]);
    await store.set("/c/1", new Uint8Array([3]));
    expect(await store.get("/c/0")).toBeUndefined();
    expect(await store.get("/c/1")).toEqual(new Uint8Array([3]));
    expect((await stat(join(root, "c", "1"))).ino).not.toBe(before);
    expect(new Uint8Array(await readFile(join(outside, "snapshot")))).toEqual(new Uint8Array([1, 1]));
    expect(await readdir(join(root, "c"))).toEqual(["1"]);
    // Still a file system store's rename: a directory at the target is an I/O error, and stays a directory.
    await mkdir(join(root, "c", "dir"));
    await expectCode(store.set("/c/dir", new Uint8Array([4])), "ERR_STORE_IO");
    expect((await stat(join(root, "c", "dir"))).isDirectory()).toBe(true);
    expect((await readdir(join(root, "c"))).sort()).toEqual(["1", "dir"]);
  });

  it("overwrite writes in place: same inode, grows and shrinks, creates missing files in new directories", async () => {
    for (const fsync of [true, false]) {
      const store = new FileSystemStore(join(root, String(fsync)), { fsync, applyInPlace: true });
      await store.set("/c/0", new Uint8Array([1, 2, 3, 4]));
      const inode = (await stat(join(store.root, "c", "0"))).ino;
      await store.overwrite([
        { key: "/c/0", value: new Uint8Array([9, 8]) },
        { key: "/new/dir/1", value: new Uint8Array([5, 6, 7]) },
      ]);
      expect(await store.get("/c/0")).toEqual(new Uint8Array([9, 8]));
      expect(await store.get("/new/dir/1")).toEqual(new Uint8Array([5, 6, 7]));
      expect((await stat(join(store.root, "c", "0"))).ino).toBe(inode);
      await store.overwrite([{ key: "/c/0", value: new Uint8Array([1, 2, 3, 4, 5, 6]) }]);
      expect(await store.get("/c/0")).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6]));
      expect((await stat(join(store.root, "c", "0"))).ino).toBe(inode);
      expect((await readdir(join(store.root, "c"))).filter(isTempFileName)).toEqual([]);
    }
  });

  it("overwrite replaces, rather than writes through, a file with other hard links or a symbolic link", async () => {
    const store = new FileSystemStore(root, { applyInPlace: true });
    await store.set("/c/0", new Uint8Array([1, 1]));
    const { link } = await import("node:fs/promises");
    await link(join(root, "c", "0"), join(outside, "snapshot"));
    await symlink(join(outside, "secret"), join(root, "c", "1"));
    await store.overwrite([
      { key: "/c/0", value: new Uint8Array([2, 2]) },
      { key: "/c/1", value: new Uint8Array([3]) },
    ]);
    expect(await store.get("/c/0")).toEqual(new Uint8Array([2, 2]));
    expect(await store.get("/c/1")).toEqual(new Uint8Array([3]));
    expect(new Uint8Array(await readFile(join(outside, "snapshot")))).toEqual(new Uint8Array([1, 1]));
    expect(await readFile(join(outside, "secret"), "utf8")).toBe("secret");
  });

  it("removeEmptyDirectory removes an empty directory only, and refuses bad prefixes and read-only stores", async () => {
    const store = new FileSystemStore(root);
    await store.set("/j/full/0", new Uint8Array([1]));
    await mkdir(join(root, "j", "empty"));
    expect(await store.removeEmptyDirectory("/j/empty/")).toBe(true);
    expect(await store.removeEmptyDirectory("/j/empty/")).toBe(false);
    expect(await store.removeEmptyDirectory("/j/full/")).toBe(false);
    expect(await store.get("/j/full/0")).toEqual(new Uint8Array([1]));
    await expectCode(store.removeEmptyDirectory("/"), "ERR_INVALID_KEY");
    await expectCode(store.removeEmptyDirectory("/j/../x/"), "ERR_INVALID_KEY");
    await expectCode(
      new FileSystemStore(root, { readOnly: true }).removeEmptyDirectory("/j/full/"),
      "ERR_STORE_READ_ONLY",
    );
  });

  it("overwrite refuses hostile keys, bad values and read-only stores before writing anything", async () => {
    const store = new FileSystemStore(root, { applyInPlace: true });
    for (const key of HOSTILE_KEYS) {
      await expectCode(
        store.overwrite([{ key: key as AbsolutePath, value: new Uint8Array(1) }]),
        "ERR_INVALID_KEY",
      );
    }
    await expectCode(
      store.overwrite([
        { key: "/ok", value: new Uint8Array(1) },
        { key: "/bad", value: [1, 2] as unknown as Uint8Array },
      ]),
      "ERR_INVALID_ARGUMENT",
    );
    expect(await store.get("/ok")).toBeUndefined();
    const readOnly = new FileSystemStore(root, { readOnly: true, applyInPlace: true });
    await expectCode(readOnly.overwrite([{ key: "/ok", value: new Uint8Array(1) }]), "ERR_STORE_READ_ONLY");
  });

  it("replaces atomically: a reader never sees a torn value during many overwrites", async () => {
    const store = new FileSystemStore(root);
    const size = 256 * 1024;
    const rounds = 60;
    await store.set("/a/chunk", new Uint8Array(size).fill(0));
    let writing = true;
    const seen = new Set<number>();
    let reads = 0;
    const reader = (async () => {
      // Keep reading until the writer is done; each read must be one whole value.
      while (writing || reads === 0) {
        const got = await store.get("/a/chunk");
        reads += 1;
        expect(got?.length).toBe(size);
        const first = got?.[0] as number;
        expect(got?.every((b) => b === first)).toBe(true);
        seen.add(first);
      }
    })();
    const rangeReader = (async () => {
      while (writing) {
        const got = await store.getRange("/a/chunk", { suffixLength: 64 * 1024 });
        const first = got?.[0] as number;
        expect(got?.every((b) => b === first)).toBe(true);
      }
    })();
    // Attach the handler now, so a reader failing early is reported as this test's failure.
    const readers = Promise.all([reader, rangeReader]);
    try {
      for (let i = 1; i <= rounds; i++) await store.set("/a/chunk", new Uint8Array(size).fill(i));
    } finally {
      writing = false;
    }
    await readers;
    expect(reads).toBeGreaterThan(0);
    expect((await store.get("/a/chunk"))?.every((b) => b === rounds)).toBe(true);
    for (const value of seen) expect(value).toBeLessThanOrEqual(rounds);
  });

  it("leaves no temp files behind after sets, overwrites and concurrent sets", async () => {
    const store = new FileSystemStore(root);
    await store.set("/x/y/z", new Uint8Array([1]));
    await store.set("/x/y/z", new Uint8Array([2]));
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.set(`/x/k${i % 3}`, new Uint8Array([i]))));
    const names = await allNames(root);
    expect(names.filter((n) => n.split("/").some(isTempFileName))).toEqual([]);
    expect(await store.list("")).toEqual(["/x/k0", "/x/k1", "/x/k2", "/x/y/z"]);
  });

  it("does not list temp files, symlinks, or names that are not valid segments, and reserves the prefix", async () => {
    const store = new FileSystemStore(root);
    await store.set("/arr/c/0", new Uint8Array([1]));
    await writeFile(join(root, "arr", "c", `${TEMP_FILE_PREFIX}123-abc`), "partial");
    await writeFile(join(root, `${TEMP_FILE_PREFIX}99-def`), "partial");
    await writeFile(join(root, "arr", "back\\slash"), "x");
    await symlink(join(outside, "secret"), join(root, "arr", "link"));
    expect(await store.list("")).toEqual(["/arr/c/0"]);
    expect(await store.list("/arr/c/")).toEqual(["/arr/c/0"]);
    expect(await store.list(`/arr/c/${TEMP_FILE_PREFIX}`)).toEqual([]);
    await expectCode(store.get(`/arr/c/${TEMP_FILE_PREFIX}123-abc`), "ERR_INVALID_KEY");
    await expectCode(store.set(`/${TEMP_FILE_PREFIX}1-2/x`, new Uint8Array([1])), "ERR_INVALID_KEY");
    await expectCode(store.delete(`/arr/c/${TEMP_FILE_PREFIX}123-abc`), "ERR_INVALID_KEY");
    expect(await readFile(join(root, "arr", "c", `${TEMP_FILE_PREFIX}123-abc`), "utf8")).toBe("partial");
  });

  it("refuses to follow a directory symlink out of the store", async () => {
    const store = new FileSystemStore(root);
    await symlink(outside, join(root, "evil"));
    const error = await expectCode(store.get("/evil/secret"), "ERR_INVALID_KEY");
    expect(error.message).toContain("symbolic link");
    await expectCode(store.getRange("/evil/secret", { offset: 0, length: 3 }), "ERR_INVALID_KEY");
    await expectCode(store.set("/evil/new", new Uint8Array([1])), "ERR_INVALID_KEY");
    await expectCode(store.set("/evil/sub/new", new Uint8Array([1])), "ERR_INVALID_KEY");
    await expectCode(store.delete("/evil/secret"), "ERR_INVALID_KEY");
    await expectCode(store.list("/evil/"), "ERR_INVALID_KEY");
    expect(await store.list("")).toEqual([]);
    expect((await readdir(outside)).sort()).toEqual(["secret"]);
    expect(await readFile(join(outside, "secret"), "utf8")).toBe("secret");
  });

  it("refuses to read through a file symlink, and set replaces the link rather than its target", async () => {
    const store = new FileSystemStore(root);
    await symlink(join(outside, "secret"), join(root, "link.json"));
    await expectCode(store.get("/link.json"), "ERR_INVALID_KEY");
    await store.set("/link.json", new Uint8Array([1, 2]));
    expect(await readFile(join(outside, "secret"), "utf8")).toBe("secret");
    expect(await store.get("/link.json")).toEqual(new Uint8Array([1, 2]));
  });

  it("never writes outside the root for hostile keys", async () => {
    const store = new FileSystemStore(root);
    for (const key of HOSTILE_KEYS) {
      await expectCode(store.set(key as AbsolutePath, new Uint8Array([1])), "ERR_INVALID_KEY");
    }
    expect((await readdir(base)).sort()).toEqual(["outside", "store"]);
    expect(await readdir(root)).toEqual([]);
    expect((await readdir(outside)).sort()).toEqual(["secret"]);
  });

  it("has the same id for two instances, also through a symlinked path, and differs between dirs", async () => {
    const a = new FileSystemStore(root);
    const b = new FileSystemStore(root, { readOnly: true });
    await symlink(root, join(base, "alias"));
    const c = new FileSystemStore(join(base, "alias"));
    const d = new FileSystemStore(`${root}/./sub/..`);
    expect(a.id).toMatch(/^file:\//);
    expect(b.id).toBe(a.id);
    expect(c.id).toBe(a.id);
    expect(d.id).toBe(a.id);
    expect(new FileSystemStore(outside).id).not.toBe(a.id);
    // A store opened through the alias writes into the same directory.
    await c.set("/via/alias", new Uint8Array([4]));
    expect(await a.get("/via/alias")).toEqual(new Uint8Array([4]));
  });

  it("has the same id in another process", async () => {
    const here = new FileSystemStore(root);
    await symlink(root, join(base, "alias"));
    const moduleUrl = new URL("../src/store/filesystem.ts", import.meta.url).href;
    const script =
      `const { FileSystemStore } = await import(${JSON.stringify(moduleUrl)});` +
      `process.stdout.write(new FileSystemStore(${JSON.stringify(join(base, "alias"))}).id);`;
    const { stdout } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
      },
    );
    expect(stdout).toBe(here.id);
  });

  it("creates a missing root, but a read-only store does not", async () => {
    const missing = join(base, "deep", "er", "root");
    await expectCode(
      Promise.resolve().then(() => new FileSystemStore(missing, { readOnly: true })),
      "ERR_STORE_IO",
    );
    await expect(stat(join(base, "deep"))).rejects.toThrow();
    const store = new FileSystemStore(missing);
    expect((await stat(missing)).isDirectory()).toBe(true);
    expect(store.root).toBe(missing);
  });

  it("refuses a root that is a file", async () => {
    await expectCode(
      Promise.resolve().then(() => new FileSystemStore(join(outside, "secret"))),
      "ERR_STORE_IO",
    );
  });

  it("treats a file in place of a directory as missing on read and as an I/O error on write", async () => {
    const store = new FileSystemStore(root);
    await store.set("/a", new Uint8Array([1]));
    expect(await store.get("/a/b")).toBeUndefined();
    expect(await store.getRange("/a/b", { suffixLength: 1 })).toBeUndefined();
    expect(await store.list("/a/")).toEqual([]);
    await store.delete("/a/b");
    const error = await expectCode(store.set("/a/b", new Uint8Array([2])), "ERR_STORE_IO");
    expect(error.message).toContain("/a/b");
    expect((error as Error & { cause?: unknown }).cause).toBeDefined();
    expect(await store.get("/a")).toEqual(new Uint8Array([1]));
  });

  it("treats a directory as no object: get is undefined, delete is a no-op, set is an I/O error", async () => {
    const store = new FileSystemStore(root);
    await store.set("/dir/child", new Uint8Array([1]));
    expect(await store.get("/dir")).toBeUndefined();
    await store.delete("/dir");
    const error = await expectCode(store.set("/dir", new Uint8Array([2])), "ERR_STORE_IO");
    expect(error.message).toContain("/dir");
    expect(await store.get("/dir/child")).toEqual(new Uint8Array([1]));
    expect((await allNames(root)).sort()).toEqual(["dir", "dir/child"]);
  });

  it("wraps other filesystem errors as ERR_STORE_IO with the key and the cause", async () => {
    const store = new FileSystemStore(root);
    // A 300-byte segment exceeds NAME_MAX (255) on common filesystems: ENAMETOOLONG, not a miss.
    const key = `/long/${"n".repeat(300)}` as AbsolutePath;
    const writeError = await expectCode(store.set(key, new Uint8Array([1])), "ERR_STORE_IO");
    expect(writeError.message).toContain(key);
    expect((writeError as Error & { cause?: { code?: string } }).cause?.code).toBe("ENAMETOOLONG");
    const readError = await expectCode(store.get(key), "ERR_STORE_IO");
    expect(readError.message).toContain(key);
  });

  it("returns a plain Uint8Array with its own buffer, not a pooled Buffer view", async () => {
    const store = new FileSystemStore(root);
    await store.set("/small", new Uint8Array([1, 2, 3]));
    const got = await store.get("/small");
    expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype);
    expect(got?.buffer.byteLength).toBe(3);
  });
});
