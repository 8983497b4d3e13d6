/**
 * The Store interface: what zarr-tx needs from a key-value backend. It stays structurally compatible
 * with zarrita's `AsyncReadable`/`AsyncWritable`, so every zarr-tx store can be handed to plain zarrita.
 * Optional methods are capabilities, declared in `capabilities`; callers check the flag, never guess.
 */
import type { AbsolutePath, RangeQuery } from "@zarrita/storage";

export type { AbsolutePath, RangeQuery };

/** What a store can do beyond get/set/delete/list. */
export interface StoreCapabilities {
  /** `set` replaces an object atomically: a concurrent reader sees the old bytes or the new, never a mix. */
  readonly atomicReplace: boolean;
  /** `set` is durable when it resolves (fsync on files, a completed PUT on S3). */
  readonly durable: boolean;
  /** `getVersioned` and `setIf` exist: conditional writes against an opaque per-key version. */
  readonly conditionalWrite: boolean;
  /**
   * `createIfAbsent` exists: write an object only when the key is free, atomically against racing
   * creators (link(2) on files, `If-None-Match: *` on S3). The journal's commit point uses it.
   */
  readonly createIfAbsent?: boolean;
  /** `rename` exists: move objects onto keys, each replacing its target atomically (rename(2) on files). */
  readonly rename?: boolean;
  /** `copy` exists: copy objects inside the store without downloading them (server-side copy on S3). */
  readonly copy?: boolean;
  /**
   * Listing a small prefix is cheap (a directory read, not a network round trip), so a transaction may
   * look for pending journal entries every time. Without it, transactions rely on the synchronizer's
   * journal marker (see `Lease.journalHint`) and list only when it says so.
   */
  readonly cheapList?: boolean;
  /**
   * The data outlive this process (files, S3). Default true. A store that dies with its process (memory)
   * has no crash to recover from, so transactions skip the journal on it unless asked for it.
   */
  readonly persistent?: boolean;
  /**
   * `overwrite` exists and the store was opened to apply journal entries with it (FileSystemStore's
   * `applyInPlace` option): committed objects are written into the existing objects in place instead of
   * being renamed over them. Much cheaper on files (no new file, no rename), but a reader that takes no
   * lock (plain zarrita, zarr-python) may see an object half-written while an entry is applied.
   */
  readonly applyInPlace?: boolean;
}

/** One move of {@link Store.rename}. */
export interface RenamePair {
  readonly from: AbsolutePath;
  readonly to: AbsolutePath;
}

/** One object of {@link Store.setMany}. */
export interface KeyValue {
  readonly key: AbsolutePath;
  readonly value: Uint8Array;
  /** Create this object only if the key is free (as `createIfAbsent`); `ConflictError` otherwise. */
  readonly ifAbsent?: boolean;
}

/** Options of a read. */
export interface StoreGetOptions {
  readonly signal?: AbortSignal;
}

/** Options of a delete. */
export interface StoreDeleteOptions {
  /** The deletion need not survive a crash once the call resolves (no directory fsync on files). */
  readonly lazy?: boolean;
}

/** Bytes with the opaque version they were read at (an S3 ETag, a memory counter). */
export interface VersionedValue {
  readonly value: Uint8Array;
  readonly version: string;
}

/** The condition of a conditional write: the object must still be at `version`, or must not exist. */
export type WriteCondition = { readonly ifVersion: string } | { readonly ifAbsent: true };

/**
 * A key-value store for Zarr data. Keys are absolute paths ("/" + segments), as in zarrita.
 *
 * Guarantees every implementation gives (checked by `describeStore`):
 * - `get` returns a fresh, exact-size `Uint8Array` (never a view into a larger or shared buffer), or
 *   `undefined` when the key is missing.
 * - `set` copies the bytes it is given; later mutation by the caller changes nothing stored.
 * - `delete` of a missing key is a no-op.
 * - `list(prefix)` returns every stored key that starts with `prefix`, sorted, and no internal temp files.
 * - Hostile keys (`..`, `.`, empty segments, backslashes, NUL, not starting with "/") throw
 *   `StoreError` with code `ERR_INVALID_KEY`.
 * - A read-only store throws `StoreError` with code `ERR_STORE_READ_ONLY` from `set` and `delete`.
 */
export interface Store {
  /**
   * Stable identity of the underlying storage: the same directory or bucket+prefix gives the same id in
   * every process, so lock keys derived from it agree across processes and hosts.
   */
  readonly id: string;
  /** True when `set` and `delete` are refused. */
  readonly readOnly: boolean;
  readonly capabilities: StoreCapabilities;
  get(key: AbsolutePath, options?: StoreGetOptions): Promise<Uint8Array | undefined>;
  getRange(key: AbsolutePath, range: RangeQuery, options?: StoreGetOptions): Promise<Uint8Array | undefined>;
  set(key: AbsolutePath, value: Uint8Array): Promise<void>;
  /**
   * Removes `key`; a missing key is a no-op. With `{ lazy: true }` the removal need not be durable when
   * the call resolves (the journal deletes applied records so: a record that comes back after a crash is
   * recognised as applied). Stores that are always durable may ignore the option.
   */
  delete(key: AbsolutePath, options?: StoreDeleteOptions): Promise<void>;
  /** Optional: deletes several keys in fewer requests than one `delete` each (S3 DeleteObjects). */
  deleteMany?(keys: readonly AbsolutePath[]): Promise<void>;
  list(prefix: string): Promise<AbsolutePath[]>;
  /** With `capabilities.conditionalWrite`: the bytes and their version, or undefined when missing. */
  getVersioned?(key: AbsolutePath): Promise<VersionedValue | undefined>;
  /**
   * With `capabilities.conditionalWrite`: write only if the condition holds; returns the new version.
   * Throws `ConflictError` (code `ERR_CONFLICT`) when it does not hold; nothing is written then.
   */
  setIf?(key: AbsolutePath, value: Uint8Array, condition: WriteCondition): Promise<string>;
  /**
   * With `capabilities.createIfAbsent`: stores `value` at `key` only if no object is there, atomically
   * against racing creators. Durable when the store is. Throws `ConflictError` when the key exists.
   */
  createIfAbsent?(key: AbsolutePath, value: Uint8Array): Promise<void>;
  /**
   * Optional batch write for objects nobody reads until the call resolves (journal entries): each object
   * may be missing or partial after a crash before it resolves, and all are durable once it does. Stores
   * implement it when it is cheaper than one `set` each (files: one directory fsync for the batch).
   * An `ifAbsent` entry is created only if its key is free (`ConflictError` otherwise, after the rest
   * are written); it too may be partial after a crash before the call resolves.
   */
  setMany?(entries: readonly KeyValue[]): Promise<void>;
  /** With `capabilities.conditionalWrite`, optional: the version of `key` without its bytes (a HEAD). */
  version?(key: AbsolutePath): Promise<string | undefined>;
  /**
   * With `capabilities.rename`: moves each `from` onto its `to`, replacing the target atomically, and is
   * durable when it resolves. Returns, per pair, false when `from` was missing (already moved) and
   * nothing happened, true when it moved.
   */
  rename?(pairs: readonly RenamePair[]): Promise<boolean[]>;
  /**
   * With `capabilities.copy`: copies the object at `from` to `to` inside the store (no download), under
   * an optional condition on the target, and returns the target's new version. Resolves to undefined
   * when `from` is missing (nothing copied). Throws `ConflictError` when the condition does not hold.
   */
  copy?(from: AbsolutePath, to: AbsolutePath, condition?: WriteCondition): Promise<string | undefined>;
  /**
   * With `capabilities.applyInPlace`: writes each value into the object at its key in place (created when
   * missing), durable when it resolves (if the store is). Not atomic for readers that hold no lock, and a
   * crash can leave an object half-written: the journal calls it only for entries already committed,
   * under exclusive locks, and rolls a cut-short write forward from the entry after a crash.
   */
  overwrite?(entries: readonly KeyValue[]): Promise<void>;
  /**
   * Optional, for stores with directories (files): removes the directory that holds the keys under
   * `prefix` (which ends with "/") if it is empty, and resolves to true when it did. A no-op (false) when
   * it is missing or not empty. The journal calls it for an entry's own directory, because a directory
   * never shrinks once it has held many files.
   */
  removeEmptyDirectory?(prefix: string): Promise<boolean>;
}
