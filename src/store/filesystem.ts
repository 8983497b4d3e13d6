/**
 * A store on a local (or shared POSIX) filesystem: one file per key under a root directory. Writes are
 * atomic replaces (temp file + fsync + rename + directory fsync), so a reader never sees a torn object
 * and a crash leaves either the old or the new bytes.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  opendirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  unlink,
} from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { forEachLimit } from "../concurrency.js";
import { ConflictError, isZarrTxError, StoreError } from "../errors.js";
import { nativeExtensions } from "../native.js";
import { assertBytes, assertValidKey, assertValidPrefix, copyBytes, resolveRange } from "./keys.js";
import type {
  AbsolutePath,
  KeyValue,
  RangeQuery,
  RenamePair,
  Store,
  StoreCapabilities,
  StoreDeleteOptions,
  StoreGetOptions,
} from "./types.js";

/**
 * File names starting with this prefix are temp files of an unfinished `set`. `list` never reports them,
 * keys may not use the prefix, and recovery may delete such files once their writer is gone (the name
 * continues with the writer's pid: `.zarr-tx-tmp-<pid>-<random>`).
 */
export const TEMP_FILE_PREFIX = ".zarr-tx-tmp-";

/** True when `name` (a file name, not a path) is a temp file of {@link FileSystemStore}. */
export function isTempFileName(name: string): boolean {
  return name.startsWith(TEMP_FILE_PREFIX);
}

/** Options of {@link FileSystemStore}. */
export interface FileSystemStoreOptions {
  /** Refuse `set` and `delete` with `ERR_STORE_READ_ONLY`, and never create the root. Default false. */
  readonly readOnly?: boolean;
  /**
   * fsync every written file and every changed directory, so a `set` or `delete` survives a crash of the
   * machine once it resolves. Default true. With false, writes are still atomic but not durable.
   */
  readonly fsync?: boolean;
  /**
   * Objects up to this many bytes are read with synchronous system calls. On these machines an async
   * `fs` call costs ~50 µs of thread-pool round trip against ~7 µs for a sync one, and a chunk read
   * takes five calls (link check, open, stat, read, close), so small reads are ~5× faster sync. Larger
   * objects stay asynchronous. Writes of objects up to this size use sync calls too, except the fsync,
   * which can take milliseconds and always runs asynchronously; so do small directory listings. Set 0
   * on a filesystem where even small reads and writes may block for long (a slow network mount).
   * Renames, deletes and the symbolic-link checks are short metadata calls and always sync. Default
   * 256 KiB.
   */
  readonly syncReadMaxBytes?: number;
  /**
   * Transactions of up to 64 KiB of new bytes keep those bytes inside their journal record and apply them
   * by writing into the existing chunk files in place (see `overwrite`), instead of writing one journal
   * file per chunk and putting it in place of the chunk (or, for one chunk, a temp file): one new file
   * per transaction instead of one per chunk plus one, and no rename or exchange. File creation contends
   * on the filesystem's own journal, so this is up to 2× the writes/s of the default on the #857
   * diagonals with 8 writer processes (bench/RESULTS.md). Larger transactions are journaled as without
   * it. Default false.
   *
   * The trade: every guarantee for zarr-tx readers and writers stays (they hold locks, and a crash in the
   * middle is rolled forward from the journal), but a reader that takes no lock (plain zarrita or
   * zarr-python reading while zarr-tx writes) may see a chunk half-written, not just a multi-chunk write
   * half-applied. Turn it on when every reader goes through zarr-tx. Transactions run with
   * `journal: false` still replace each chunk atomically.
   */
  readonly applyInPlace?: boolean;
  /**
   * On Linux, replace an existing file by exchanging names (`renameat2(RENAME_EXCHANGE)`) and unlinking
   * the old file, rather than by rename(2) over it (see `replacesByExchange`). Both are atomic for
   * readers; the exchange avoids the writeback ext4 starts on a rename over an existing file. Default
   * true; the store falls back to rename by itself where the filesystem has no exchange (NFS, FUSE).
   */
  readonly replaceByExchange?: boolean;
}

const DEFAULT_SYNC_READ_MAX_BYTES = 256 * 1024;

type SwapSync = (from: string, to: string) => void;

/**
 * The atomic exchange of two names, on Linux (the addon loads when the first writable store is made).
 * Undefined elsewhere, or when the addon cannot be loaded: replacing then falls back to rename(2).
 */
function loadSwap(): SwapSync | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    return nativeExtensions().swapSync;
  } catch {
    return undefined;
  }
}

/** The directory a prefix's complete segments name: "/a/b/" and "/a/b/c" → `<root>/a/b`. */
export function prefixDirectory(root: string, prefix: string): string {
  const dirKey = prefix.slice(0, prefix.lastIndexOf("/") + 1);
  return join(root, ...dirKey.split("/").filter((s) => s !== ""));
}

/** Errors of an exchange the filesystem does not offer (then the store stops trying it). */
const EXCHANGE_UNSUPPORTED = new Set(["EINVAL", "ENOSYS", "EOPNOTSUPP", "ENOTSUP"]);

/**
 * A `get` served by sync reads yields to the event loop first when this many milliseconds have passed
 * since the last time it did. A loop that only awaits sync-served reads never leaves the microtask
 * queue, which would starve timers and I/O of the whole process; this bounds that stall.
 */
const SYNC_READ_YIELD_INTERVAL_MS = 4;

type ErrnoError = Error & { code?: string };

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as ErrnoError).code : undefined;
}

/** Missing objects: the file, or one of its parent directories, does not exist or is a file. */
function isMissing(error: unknown): boolean {
  const code = errnoCode(error);
  return code === "ENOENT" || code === "ENOTDIR";
}

function tempFileName(): string {
  // pid + random: unique across concurrent writers of this and other processes, and tells recovery
  // which process left the file behind.
  return `${TEMP_FILE_PREFIX}${process.pid}-${randomBytes(8).toString("hex")}`;
}

const fsyncFd = promisify(fsync);

// Opening and closing a directory are short metadata calls; only the fsync itself can take milliseconds,
// so it alone goes to the thread pool (an async call costs ~50 µs of round trip on these VMs).
async function fsyncDirectory(path: string): Promise<void> {
  const fd = openSync(path, "r");
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads up to `length` bytes at `position` into a fresh, exact-size Uint8Array. */
async function readExact(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(bytes, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  // Only a file truncated behind the store's back ends early; still return an exact-size array.
  return filled === length ? bytes : bytes.slice(0, filled);
}

/**
 * A {@link Store} that keeps each key as a file under a root directory (`/a/c/0` → `<root>/a/c/0`).
 *
 * Guarantees:
 * - `set` replaces atomically: the bytes go to a temp file in the target's directory, which is fsynced
 *   and put in place of the target (by exchanging the names and unlinking the old file on Linux, by
 *   rename elsewhere: see `replacesByExchange`), and then the directory is fsynced (with `fsync`, the
 *   default; parent directories it creates are fsynced into their parents too). Concurrent readers, in
 *   this or other processes, see the old bytes or the new, never a mix.
 * - `get` and `getRange` return fresh exact-size arrays; `getRange` reads only the requested bytes.
 * - `delete` of a missing key is a no-op. Empty directories are left in place, because removing them
 *   could race with a concurrent `set` that is creating a file in them.
 * - `list` walks the directory tree and never reports temp files, symbolic links or directories.
 * - The store follows no symbolic link below its root: a key whose path passes through one is refused
 *   with `ERR_INVALID_KEY`, so a link cannot lead reads or writes out of the store. The root itself may
 *   be reached through links. Keys using {@link TEMP_FILE_PREFIX} are refused too.
 * - `id` is `file:` + the real path of the root, the same in every process that opens that directory.
 *
 * Conditional writes are not offered (`capabilities.conditionalWrite` is false): a file's inode, mtime
 * and size are not a safe version, since mtime has coarse resolution on many filesystems and inodes are
 * reused, so a changed object could look unchanged. Writers on files must rely on their locks.
 *
 * Errors: `StoreError` `ERR_INVALID_KEY` for invalid keys, `ERR_STORE_READ_ONLY` for writes to a
 * read-only store, and `ERR_STORE_IO` (with the key in the message and the system error as `cause`) for
 * every filesystem failure other than a missing file.
 */
export class FileSystemStore implements Store {
  readonly id: string;
  /** The real (symlink-free, absolute) path of the root directory. */
  readonly root: string;
  readonly readOnly: boolean;
  readonly capabilities: StoreCapabilities;
  readonly #fsync: boolean;
  readonly #syncReadMaxBytes: number;
  #lastYieldMs = 0;
  /** The exchange used to replace existing files (see `#moveOnto`), until the filesystem refuses it. */
  #swap: SwapSync | undefined;

  /**
   * Opens the store rooted at `root`, creating the directory (and its parents) unless `readOnly`.
   *
   * @throws {StoreError} `ERR_STORE_IO` when the root cannot be created or is not a directory, or when
   *   it is missing and the store is read-only.
   */
  constructor(root: string, options: FileSystemStoreOptions = {}) {
    this.readOnly = options.readOnly ?? false;
    this.#fsync = options.fsync ?? true;
    this.#syncReadMaxBytes = options.syncReadMaxBytes ?? DEFAULT_SYNC_READ_MAX_BYTES;
    if (!this.readOnly && options.replaceByExchange !== false) this.#swap = loadSwap();
    this.capabilities = Object.freeze({
      atomicReplace: true,
      durable: this.#fsync,
      conditionalWrite: false,
      createIfAbsent: true,
      rename: true,
      cheapList: true,
      ...(options.applyInPlace === true ? { applyInPlace: true } : {}),
    });
    const absolute = resolve(root);
    try {
      if (!this.readOnly) {
        // Synchronous on purpose: a constructor cannot await, and this runs once per store.
        const firstCreated = mkdirSync(absolute, { recursive: true });
        if (firstCreated !== undefined && this.#fsync) fsyncCreatedDirsSync(firstCreated, absolute);
      }
      this.root = realpathSync.native(absolute);
      if (!statSync(this.root).isDirectory()) {
        throw new StoreError("ERR_STORE_IO", `store root ${absolute} is not a directory`);
      }
    } catch (error) {
      if (isZarrTxError(error)) throw error;
      const hint = this.readOnly && isMissing(error) ? " (a read-only store does not create its root)" : "";
      throw new StoreError(
        "ERR_STORE_IO",
        `cannot open store root ${absolute}${hint}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.id = `file:${this.root}`;
  }

  /**
   * True while this store replaces existing files by exchanging names (`renameat2(RENAME_EXCHANGE)`,
   * Linux) rather than by rename(2); false on other platforms, for read-only stores, with
   * `replaceByExchange: false`, and once the filesystem has refused an exchange. Both are atomic for
   * readers; the exchange avoids the writeback that ext4 starts on a rename over an existing file.
   */
  get replacesByExchange(): boolean {
    return this.#swap !== undefined;
  }

  /**
   * The bytes stored at `key` (fresh, exact-size), or undefined when there is no such file (a directory
   * is not an object either).
   */
  async get(key: AbsolutePath, options?: StoreGetOptions): Promise<Uint8Array | undefined> {
    this.#checkKey(key);
    options?.signal?.throwIfAborted();
    if (this.#syncReadMaxBytes > 0) {
      const now = performance.now();
      if (now - this.#lastYieldMs > SYNC_READ_YIELD_INTERVAL_MS) {
        this.#lastYieldMs = now;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const small = this.#readSmallSync(key);
      if (small !== "large") return small;
    }
    return this.#read(key, "read", async (handle, size) => readExact(handle, 0, size));
  }

  /** The whole object read with sync calls, or "large" when it exceeds `syncReadMaxBytes`. */
  #readSmallSync(key: AbsolutePath): Uint8Array | undefined | "large" {
    const path = this.#path(key);
    try {
      if (!this.#checkNoLinks(key, path)) return undefined;
      const fd = openSync(path, "r");
      try {
        const stat = fstatSync(fd);
        if (!stat.isFile()) return undefined;
        if (stat.size > this.#syncReadMaxBytes) return "large";
        const bytes = new Uint8Array(stat.size);
        let filled = 0;
        while (filled < bytes.length) {
          const n = readSync(fd, bytes, filled, bytes.length - filled, filled);
          if (n === 0) break;
          filled += n;
        }
        return filled === bytes.length ? bytes : bytes.slice(0, filled);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.#ioError("read", key, error);
    }
  }

  /**
   * A byte range of the object at `key`, clamped to the object like S3/HTTP; undefined when missing.
   * Reads only the requested bytes. Throws `InvalidArgumentError` for a negative or fractional range.
   */
  async getRange(
    key: AbsolutePath,
    range: RangeQuery,
    options?: StoreGetOptions,
  ): Promise<Uint8Array | undefined> {
    this.#checkKey(key);
    // Validate the range before any I/O, so a bad range fails the same way whether the key exists or not.
    resolveRange(range, 0);
    options?.signal?.throwIfAborted();
    return this.#read(key, "range read", async (handle, size) => {
      const { start, end } = resolveRange(range, size);
      return readExact(handle, start, end - start);
    });
  }

  /** Atomically replaces the object at `key` with a copy of `value` (durable when `fsync` is on). */
  async set(key: AbsolutePath, value: Uint8Array): Promise<void> {
    this.#checkWrite(key);
    assertBytes(value, key);
    // Copy first: the caller may mutate `value` while the asynchronous write is under way.
    const bytes = copyBytes(value);
    const path = this.#path(key);
    const dir = dirname(path);
    try {
      await this.#ensureDirectory(key, dir);
      const temp = join(dir, tempFileName());
      try {
        // "wx" = O_CREAT | O_EXCL: never write into a file some other writer owns.
        await this.#writeFile(temp, bytes, "wx");
        await this.#moveOnto(temp, path, bytes.length > this.#syncReadMaxBytes);
      } catch (error) {
        // Best effort: the original error matters more, and a leftover temp file is never listed and
        // is recognizable by its prefix, so a failed cleanup is harmless.
        await unlink(temp).catch(() => undefined);
        throw error;
      }
      // The rename changed the directory; without this fsync a crash could bring back the old entry.
      if (this.#fsync) await fsyncDirectory(dir);
    } catch (error) {
      throw this.#ioError("write", key, error);
    }
  }

  /**
   * Creates `key` with a copy of `value` only if no object is there: the bytes go to a temp file, which
   * is fsynced and hard-linked to the target (link(2) fails when the target exists, atomically against
   * racing creators), so a reader sees it complete or not at all. Durable when `fsync` is on. Throws
   * `ConflictError` when the key exists.
   */
  async createIfAbsent(key: AbsolutePath, value: Uint8Array): Promise<void> {
    await this.#setMany([{ key, value, ifAbsent: true }], true);
  }

  /**
   * Writes several objects that nobody reads until this resolves (journal entries): each file is written
   * in place and fsynced, and each directory is fsynced once for the whole batch. After a crash before it
   * resolves, any object may be missing or partial. Entries with `ifAbsent` are created with O_EXCL
   * (atomic against racing creators, though, like the rest, possibly partial until this resolves); if
   * one exists, the call throws `ConflictError` after the others are written.
   */
  async setMany(entries: readonly KeyValue[]): Promise<void> {
    await this.#setMany(entries, false);
  }

  /** `atomicCreate`: `ifAbsent` objects appear complete or not at all (temp file + link), as readers need. */
  async #setMany(entries: readonly KeyValue[], atomicCreate: boolean): Promise<void> {
    for (const { key, value } of entries) {
      this.#checkWrite(key);
      assertBytes(value, key);
    }
    const copies = entries.map((e) => ({ ...e, value: copyBytes(e.value) }));
    const dirs = new Map<string, AbsolutePath>();
    for (const { key } of copies) dirs.set(dirname(this.#path(key)), key);
    let conflict: ConflictError | undefined;
    let current = "";
    try {
      for (const [dir, key] of dirs) {
        current = key;
        await this.#ensureDirectory(key, dir);
      }
      await forEachLimit(copies, WRITE_CONCURRENCY, async ({ key, value, ifAbsent }) => {
        current = key;
        const path = this.#path(key);
        if (!ifAbsent) {
          await this.#writeFile(path, value, "w");
          return;
        }
        if (!atomicCreate) {
          // O_EXCL: the create is atomic against racing creators; the contents may be partial until
          // this call resolves, which setMany's contract allows.
          try {
            await this.#writeFile(path, value, "wx");
          } catch (error) {
            if (errnoCode(error) !== "EEXIST") throw error;
            conflict = new ConflictError(key, `${key} already exists; it was not replaced`);
          }
          return;
        }
        const temp = join(dirname(path), tempFileName());
        await this.#writeFile(temp, value, "wx");
        try {
          await link(temp, path);
        } catch (error) {
          if (errnoCode(error) !== "EEXIST") throw error;
          conflict = new ConflictError(key, `${key} already exists; it was not replaced`);
        } finally {
          await unlink(temp).catch(() => undefined);
        }
      });
      if (this.#fsync) await forEachLimit([...dirs.keys()], WRITE_CONCURRENCY, fsyncDirectory);
    } catch (error) {
      throw this.#ioError("write", current, error);
    }
    if (conflict) throw conflict;
  }

  /**
   * Moves each `from` onto its `to` with rename(2), which replaces the target atomically, then fsyncs
   * every target directory once. Returns, per pair, false when `from` was missing (nothing moved).
   */
  async rename(pairs: readonly RenamePair[]): Promise<boolean[]> {
    for (const { from, to } of pairs) {
      this.#checkWrite(from);
      this.#checkWrite(to);
    }
    const dirs = new Map<string, AbsolutePath>();
    for (const { to } of pairs) dirs.set(dirname(this.#path(to)), to);
    let current = "";
    try {
      await forEachLimit([...dirs], WRITE_CONCURRENCY, ([dir, key]) => {
        current = key;
        return this.#ensureDirectory(key, dir);
      });
      const sources = new Map<string, boolean>();
      for (const { from } of pairs) {
        const dir = dirname(this.#path(from));
        if (!sources.has(dir)) sources.set(dir, this.#checkNoLinks(from, dir));
      }
      // rename(2) is a short metadata operation (~20–50 µs) against ~50 µs of thread-pool round trip for
      // an async call, and a batch is bounded: run them sync, yielding to the event loop now and then.
      const moved: boolean[] = [];
      let lastYieldMs = performance.now();
      for (const { from, to } of pairs) {
        current = from;
        if (performance.now() - lastYieldMs > SYNC_READ_YIELD_INTERVAL_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          lastYieldMs = performance.now();
        }
        if (!sources.get(dirname(this.#path(from)))) {
          moved.push(false);
          continue;
        }
        try {
          await this.#moveOnto(this.#path(from), this.#path(to), false);
          moved.push(true);
        } catch (error) {
          if (!isMissing(error)) throw error;
          moved.push(false);
        }
      }
      // The target directories now name the new files; the rename is durable once they are synced.
      if (this.#fsync) await forEachLimit([...dirs.keys()], WRITE_CONCURRENCY, fsyncDirectory);
      return moved;
    } catch (error) {
      throw this.#ioError("rename", current, error);
    }
  }

  /**
   * Writes each value into the file at its key in place: opened without truncation (created if missing),
   * written from offset 0, truncated to the new size, and fsynced (with the directories of files it
   * created) when `fsync` is on. No new file and no rename, so it costs a fraction of `set`, but it is
   * not atomic: a reader without a lock may see the file half-written, and a crash may leave it so. The
   * journal calls it (with `applyInPlace`) only for committed entries, under exclusive locks. A file with
   * other hard links, or a symbolic link, is replaced atomically instead, so no other name sees the write.
   */
  async overwrite(entries: readonly KeyValue[]): Promise<void> {
    for (const { key, value } of entries) {
      this.#checkWrite(key);
      assertBytes(value, key);
    }
    const created = new Set<string>();
    let current = "";
    let lastYieldMs = performance.now();
    try {
      for (const { key, value } of entries) {
        current = key;
        const path = this.#path(key);
        const dir = dirname(path);
        await this.#ensureDirectory(key, dir);
        let fd: number;
        try {
          fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
        } catch (error) {
          const code = errnoCode(error);
          if (code === "ELOOP") {
            await this.set(key, value);
            continue;
          }
          if (code !== "ENOENT") throw error;
          fd = openSync(path, "wx");
          created.add(dir);
        }
        try {
          if (fstatSync(fd).nlink > 1) {
            closeSync(fd);
            fd = -1;
            await this.set(key, value);
            continue;
          }
          for (let written = 0; written < value.length; ) {
            written += writeSync(fd, value, written, value.length - written, written);
          }
          ftruncateSync(fd, value.length);
          if (this.#fsync) await fsyncFd(fd);
        } finally {
          if (fd >= 0) closeSync(fd);
        }
        // Sync calls of microseconds each, but a batch must not stall timers and I/O for long.
        if (performance.now() - lastYieldMs > SYNC_READ_YIELD_INTERVAL_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          lastYieldMs = performance.now();
        }
      }
      if (this.#fsync) await forEachLimit([...created], WRITE_CONCURRENCY, fsyncDirectory);
    } catch (error) {
      throw this.#ioError("write", current, error);
    }
  }

  /**
   * Writes a whole file (and fsyncs it when `fsync` is on). Small files (up to `syncReadMaxBytes`) are
   * opened, written and closed with sync calls, which take microseconds; the fsync, which can take
   * milliseconds, stays asynchronous.
   */
  async #writeFile(path: string, bytes: Uint8Array, flags: "w" | "wx"): Promise<void> {
    if (bytes.length <= this.#syncReadMaxBytes) {
      const fd = openSync(path, flags);
      try {
        for (let written = 0; written < bytes.length; ) {
          written += writeSync(fd, bytes, written, bytes.length - written);
        }
        if (this.#fsync) await fsyncFd(fd);
      } finally {
        closeSync(fd);
      }
      return;
    }
    const handle = await open(path, flags);
    try {
      await handle.writeFile(bytes);
      if (this.#fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Removes the directory of `prefix` ("/a/b/" → `<root>/a/b`) if it is empty (true), and leaves a missing
   * or non-empty one as it is (false). Not fsynced: an empty directory that comes back after a crash is
   * harmless.
   */
  async removeEmptyDirectory(prefix: string): Promise<boolean> {
    assertValidPrefix(prefix);
    if (this.readOnly) {
      throw new StoreError(
        "ERR_STORE_READ_ONLY",
        `cannot remove ${prefix}: the store ${this.id} is read-only`,
      );
    }
    if (!prefix.endsWith("/") || prefix === "/") {
      throw new StoreError(
        "ERR_INVALID_KEY",
        `removeEmptyDirectory needs a prefix like "/a/b/", got ${JSON.stringify(prefix)}`,
      );
    }
    const path = prefixDirectory(this.root, prefix);
    try {
      if (!this.#checkNoLinks(prefix, path)) return false;
      rmdirSync(path);
      return true;
    } catch (error) {
      const code = errnoCode(error);
      if (isMissing(error) || code === "ENOTEMPTY" || code === "EEXIST") return false;
      throw this.#ioError("directory removal", prefix, error);
    }
  }

  /** Removes the object at `key`; a missing key (or a directory) is a no-op. */
  async delete(key: AbsolutePath, options?: StoreDeleteOptions): Promise<void> {
    this.#checkWrite(key);
    const path = this.#path(key);
    const dir = dirname(path);
    try {
      // Both are short metadata calls: sync (see #writeFile); only the directory fsync goes async.
      if (!this.#checkNoLinks(key, dir)) return;
      try {
        unlinkSync(path);
      } catch (error) {
        // EISDIR: the key names a directory, which is not an object, so there is nothing to delete.
        if (isMissing(error) || errnoCode(error) === "EISDIR") return;
        throw error;
      }
      if (this.#fsync && !options?.lazy) await fsyncDirectory(dir);
    } catch (error) {
      throw this.#ioError("delete", key, error);
    }
  }

  /**
   * Every stored key that starts with `prefix` ("" for all), sorted by UTF-16 code units. Skips temp
   * files, symbolic links, special files and names that are not valid key segments.
   */
  async list(prefix: string): Promise<AbsolutePath[]> {
    assertValidPrefix(prefix);
    // Walk only the directory the prefix's complete segments name; its last, partial segment filters
    // that directory's entries.
    const slash = prefix.lastIndexOf("/");
    const dirKey = prefix === "" ? "/" : prefix.slice(0, slash + 1);
    const partial = prefix === "" ? "" : prefix.slice(slash + 1);
    const dirPath = prefixDirectory(this.root, dirKey);
    const keys: AbsolutePath[] = [];
    try {
      if (!this.#checkNoLinks(prefix, dirPath)) return keys;
      if (this.#syncReadMaxBytes > 0) {
        // Most listings that run per transaction (the journal) read a small, often empty directory:
        // serve it with sync calls; anything that holds more entries continues asynchronously.
        const small = this.#listSmallSync(dirPath, dirKey as AbsolutePath, partial);
        if (small !== "large") return small.sort();
      }
      await walk(dirPath, dirKey as AbsolutePath, partial, keys);
    } catch (error) {
      throw this.#ioError("list", prefix === "" ? '""' : prefix, error);
    }
    return keys.sort();
  }

  /** A listing served by sync calls when the directory is a leaf of at most SMALL_LIST_ENTRIES entries. */
  #listSmallSync(dirPath: string, dirKey: AbsolutePath, partial: string): AbsolutePath[] | "large" {
    let entries: Dirent[];
    try {
      const dir = opendirSync(dirPath);
      try {
        entries = [];
        for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
          if (entries.length === SMALL_LIST_ENTRIES || entry.isDirectory()) return "large";
          entries.push(entry);
        }
      } finally {
        dir.closeSync();
      }
    } catch (error) {
      // Removed since the link check: it holds nothing any more. Other errors go to list's handler.
      if (isMissing(error)) return [];
      throw error;
    }
    const keys: AbsolutePath[] = [];
    for (const entry of entries) {
      const name = entry.name;
      if (!name.startsWith(partial) || isTempFileName(name) || name.includes("\\")) continue;
      if (entry.isFile()) keys.push(`${dirKey}${name}`);
    }
    return keys;
  }

  /** The file path of `key`. The key must have been validated. */
  #path(key: string): string {
    return join(this.root, ...key.slice(1).split("/"));
  }

  #checkKey(key: AbsolutePath): void {
    assertValidKey(key);
    for (const segment of key.slice(1).split("/")) {
      if (isTempFileName(segment)) {
        throw new StoreError(
          "ERR_INVALID_KEY",
          `invalid store key ${JSON.stringify(key)}: segments starting with "${TEMP_FILE_PREFIX}" are reserved ` +
            "for the temp files of FileSystemStore. Rename the segment.",
        );
      }
    }
  }

  #checkWrite(key: AbsolutePath): void {
    this.#checkKey(key);
    if (this.readOnly) {
      throw new StoreError("ERR_STORE_READ_ONLY", `cannot write ${key}: the store ${this.id} is read-only`);
    }
  }

  /**
   * True when `path` exists and no component of it below the root is a symbolic link; false when it is
   * missing. Throws `ERR_INVALID_KEY` when a link is in the way.
   */
  /**
   * True when `path` exists and no symbolic link lies on the way from the root (which is a real path, so
   * a link-free path below it resolves to itself); false when it is missing. Throws for a link. One sync
   * realpath: a few µs for a path that exists, against ~50 µs of round trip for the async call.
   */
  #checkNoLinks(key: string, path: string): boolean {
    let real: string;
    try {
      real = realpathSync.native(path);
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
    if (real !== path) throw linkError(key, path, real);
    return true;
  }

  /** Opens the file of `key` for reading and runs `read` on it; undefined when it is not a file. */
  async #read(
    key: AbsolutePath,
    op: string,
    read: (handle: FileHandle, size: number) => Promise<Uint8Array>,
  ): Promise<Uint8Array | undefined> {
    const path = this.#path(key);
    try {
      if (!this.#checkNoLinks(key, path)) return undefined;
      const handle = await open(path, "r");
      try {
        const stat = await handle.stat();
        if (!stat.isFile()) return undefined;
        return await read(handle, stat.size);
      } finally {
        await handle.close();
      }
    } catch (error) {
      // A concurrent delete between the link check and the open is an ordinary miss.
      if (isMissing(error)) return undefined;
      throw this.#ioError(op, key, error);
    }
  }

  /** Makes sure `dir` (the directory of `key`) exists below the root without any link on the way. */
  async #ensureDirectory(key: AbsolutePath, dir: string): Promise<void> {
    // Fast path: the directory exists (the common case once an array has been written to). A missing
    // directory, or a file where a directory should be, falls through to the walk, which reports it.
    if (this.#checkNoLinks(key, dir)) return;
    // Slow path, once per new directory: create each missing component. mkdir with `recursive` would
    // follow a link planted on the way and create directories outside the root, so go step by step.
    let current = this.root;
    const segments = key.slice(1).split("/");
    segments.pop();
    for (const segment of segments) {
      const next = join(current, segment);
      try {
        await mkdir(next);
      } catch (error) {
        if (errnoCode(error) !== "EEXIST") throw error;
        const stat = await lstat(next);
        if (stat.isSymbolicLink()) throw linkError(key, next, await realpath(next).catch(() => "?"));
        if (!stat.isDirectory()) {
          throw new StoreError("ERR_STORE_IO", `cannot write ${key}: ${next} exists and is not a directory`);
        }
      }
      // fsync the parent even when another writer created `next` just now: that writer may not have
      // synced it yet, and our object must not depend on its progress to survive a crash.
      if (this.#fsync) await fsyncDirectory(current);
      current = next;
    }
  }

  /**
   * Moves `from` onto `to`, replacing an existing `to` atomically. Where it can (see
   * `replacesByExchange`) it exchanges the two names (`renameat2(RENAME_EXCHANGE)`) and unlinks `from`,
   * which then names the old file; otherwise, and when `to` does not exist yet, it renames (async for
   * `large` files, whose rename over an existing file may wait for their writeback). On ext4 a rename
   * over an existing file starts writeback of the new one first (`auto_da_alloc`, the default); the
   * exchange does not (`npm run bench:fs-ops`, bench/RESULTS.md). A reader sees the old file or the new
   * either way. A crash between the exchange and the unlink leaves the old bytes under `from` (a temp
   * file or a journal object, both removed by recovery). Throws what rename would, also for a directory
   * at `to` (which the exchange puts back first).
   */
  async #moveOnto(from: string, to: string, large: boolean): Promise<void> {
    if (this.#exchange(from, to)) return;
    if (large) await rename(from, to);
    else renameSync(from, to);
  }

  /** The exchange-and-unlink of `#moveOnto`; false when it did nothing and rename must do the move. */
  #exchange(from: string, to: string): boolean {
    const swap = this.#swap;
    if (swap === undefined) return false;
    try {
      swap(from, to);
    } catch (error) {
      const code = errnoCode(error);
      if (code !== undefined && EXCHANGE_UNSUPPORTED.has(code)) this.#swap = undefined;
      // ENOENT: `to` (or `from`) is missing; rename does the right thing (or reports the missing `from`).
      return false;
    }
    try {
      unlinkSync(from);
    } catch (error) {
      const code = errnoCode(error);
      if (code === "EISDIR" || code === "EPERM") {
        // `to` was a directory: put it back, and fail as rename onto a directory does.
        swap(from, to);
        throw Object.assign(
          new Error(`EISDIR: illegal operation on a directory, rename '${from}' -> '${to}'`),
          {
            code: "EISDIR",
          },
        );
      }
      // The new file is in place; the old bytes left under `from` are removed by recovery.
    }
    return true;
  }

  #ioError(op: string, key: string, error: unknown): Error {
    if (isZarrTxError(error)) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new StoreError("ERR_STORE_IO", `${op} of ${key} in ${this.id} failed: ${message}`, {
      cause: error,
    });
  }
}

function linkError(key: string, path: string, real: string): StoreError {
  return new StoreError(
    "ERR_INVALID_KEY",
    `invalid store key ${JSON.stringify(key)}: its path ${path} passes through a symbolic link (it resolves to ` +
      `${real}). FileSystemStore follows no links below its root; replace the link with a real directory or file.`,
  );
}

/** Collects the keys of the regular files below `dirPath` whose names start with `partial`. */
async function walk(
  dirPath: string,
  keyPrefix: AbsolutePath,
  partial: string,
  keys: AbsolutePath[],
): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dirPath, { withFileTypes: true });
  } catch (error) {
    // A directory removed while we walk simply holds nothing any more.
    if (isMissing(error)) return;
    throw error;
  }
  for (const entry of entries) {
    const name = entry.name;
    // A name with a backslash is not a valid key segment: no key could read it, so do not report it.
    if (!name.startsWith(partial) || isTempFileName(name) || name.includes("\\")) continue;
    if (entry.isDirectory()) {
      await walk(join(dirPath, name), `${keyPrefix}${name}/`, "", keys);
    } else if (entry.isFile()) {
      keys.push(`${keyPrefix}${name}`);
    }
  }
}

/** A directory with more entries than this (or with subdirectories) is listed asynchronously. */
const SMALL_LIST_ENTRIES = 64;

/** How many files a batch writes, renames or fsyncs at once. */
const WRITE_CONCURRENCY = 16;

/** fsyncs the parent of every directory from `firstCreated` down to `leaf`, all just created. */
function fsyncCreatedDirsSync(firstCreated: string, leaf: string): void {
  for (let dir = leaf; ; dir = dirname(dir)) {
    const fd = openSync(dirname(dir), "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (dir === firstCreated || dirname(dir) === dir) break;
  }
}
