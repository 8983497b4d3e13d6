/**
 * The in-memory store: the reference implementation of {@link Store}. Every other backend is checked
 * against the behaviour this one has (see `describeStore`).
 */
import { randomUUID } from "node:crypto";
import { ConflictError, StoreError } from "../errors.js";
import { assertBytes, assertValidKey, assertValidPrefix, copyBytes, resolveRange } from "./keys.js";
import type {
  AbsolutePath,
  KeyValue,
  RangeQuery,
  RenamePair,
  Store,
  StoreCapabilities,
  StoreGetOptions,
  VersionedValue,
  WriteCondition,
} from "./types.js";

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Refuse `set`, `delete` and `setIf` with `ERR_STORE_READ_ONLY`. Default false. */
  readonly readOnly?: boolean;
  /**
   * The map that holds the objects. Pass one map to several stores (say, a writable one and a read-only
   * one) to make them views of the same storage: they then share one `id`. Whatever is put into the map
   * directly bypasses the store; the store still copies on every read. Default: a new, private map.
   */
  readonly map?: Map<string, Uint8Array>;
}

const CAPABILITIES: StoreCapabilities = Object.freeze({
  atomicReplace: true,
  durable: false,
  conditionalWrite: true,
  createIfAbsent: true,
  rename: true,
  copy: true,
  cheapList: true,
  persistent: false,
});

// Versions are tied to the identity of the stored Uint8Array, and every write stores a new copy, so a
// version can never come back after an overwrite or a delete-and-recreate (no ABA). One counter and one
// table for the whole module keep versions consistent between stores that share a map.
const versions = new WeakMap<Uint8Array, string>();
let lastVersion = 0;

function versionOf(bytes: Uint8Array): string {
  let version = versions.get(bytes);
  if (version === undefined) {
    lastVersion += 1;
    version = String(lastVersion);
    versions.set(bytes, version);
  }
  return version;
}

// One identity per backing map, so stores sharing a map have one id (and hence share lock keys).
const mapIds = new WeakMap<Map<string, Uint8Array>, string>();

function idOf(map: Map<string, Uint8Array>): string {
  let id = mapIds.get(map);
  if (id === undefined) {
    id = `memory:${randomUUID()}`;
    mapIds.set(map, id);
  }
  return id;
}

/**
 * A {@link Store} that keeps objects in a `Map` in this process.
 *
 * Guarantees: `get`/`getRange`/`getVersioned` return fresh exact-size copies and `set`/`setIf` store a
 * copy, so neither side can change the other's bytes; every write is atomic (JavaScript runs it without
 * interleaving); `setIf` checks and writes without an `await` in between, so two racing `setIf` calls
 * cannot both win. Versions are opaque strings that never repeat within the process. Nothing is durable.
 * `id` is `memory:<uuid>`, unique per backing map (so unique per store unless a map is shared).
 *
 * Throws `StoreError` `ERR_INVALID_KEY` for invalid keys (see `assertValidKey`), `StoreError`
 * `ERR_STORE_READ_ONLY` from writes to a read-only store, and `ConflictError` from a failed `setIf`.
 */
export class MemoryStore implements Store {
  readonly id: string;
  readonly readOnly: boolean;
  readonly capabilities: StoreCapabilities = CAPABILITIES;
  readonly #map: Map<string, Uint8Array>;

  constructor(options: MemoryStoreOptions = {}) {
    this.#map = options.map ?? new Map();
    this.readOnly = options.readOnly ?? false;
    this.id = idOf(this.#map);
  }

  /** The bytes stored at `key` (a fresh copy), or undefined when missing. */
  async get(key: AbsolutePath, options?: StoreGetOptions): Promise<Uint8Array | undefined> {
    assertValidKey(key);
    options?.signal?.throwIfAborted();
    const bytes = this.#map.get(key);
    return bytes === undefined ? undefined : copyBytes(bytes);
  }

  /**
   * A byte range of the object at `key` (a fresh copy), clamped to the object like S3/HTTP; undefined
   * when missing. Throws `InvalidArgumentError` for a negative or fractional range.
   */
  async getRange(
    key: AbsolutePath,
    range: RangeQuery,
    options?: StoreGetOptions,
  ): Promise<Uint8Array | undefined> {
    assertValidKey(key);
    // Validate the range even when the key is missing, so a bad range always fails the same way.
    resolveRange(range, 0);
    options?.signal?.throwIfAborted();
    const bytes = this.#map.get(key);
    if (bytes === undefined) return undefined;
    const { start, end } = resolveRange(range, bytes.length);
    return bytes.slice(start, end);
  }

  /** Stores a copy of `value` at `key`, replacing any previous object. */
  async set(key: AbsolutePath, value: Uint8Array): Promise<void> {
    this.#checkWrite(key);
    assertBytes(value, key);
    this.#map.set(key, copyBytes(value));
  }

  /** Removes `key`; a missing key is a no-op. */
  async delete(key: AbsolutePath): Promise<void> {
    this.#checkWrite(key);
    this.#map.delete(key);
  }

  /** Every stored key that starts with `prefix` ("" for all), sorted by UTF-16 code units. */
  async list(prefix: string): Promise<AbsolutePath[]> {
    assertValidPrefix(prefix);
    const keys: AbsolutePath[] = [];
    for (const key of this.#map.keys()) {
      if (key.startsWith(prefix)) keys.push(key as AbsolutePath);
    }
    return keys.sort();
  }

  /** The bytes at `key` (a fresh copy) with their version, or undefined when missing. */
  async getVersioned(key: AbsolutePath): Promise<VersionedValue | undefined> {
    assertValidKey(key);
    const bytes = this.#map.get(key);
    return bytes === undefined ? undefined : { value: copyBytes(bytes), version: versionOf(bytes) };
  }

  /**
   * Stores a copy of `value` at `key` only if `condition` holds, and returns the new version.
   *
   * @throws {ConflictError} when the object exists (`ifAbsent`) or is not at `ifVersion`; nothing is written.
   */
  async setIf(key: AbsolutePath, value: Uint8Array, condition: WriteCondition): Promise<string> {
    this.#checkWrite(key);
    assertBytes(value, key);
    const current = this.#map.get(key);
    if ("ifAbsent" in condition) {
      if (current !== undefined) throw new ConflictError(key, `${key} already exists; the write was refused`);
    } else if (current === undefined || versionOf(current) !== condition.ifVersion) {
      throw new ConflictError(key);
    }
    const stored = copyBytes(value);
    this.#map.set(key, stored);
    return versionOf(stored);
  }

  /** The version of `key`, or undefined when missing. */
  async version(key: AbsolutePath): Promise<string | undefined> {
    assertValidKey(key);
    const bytes = this.#map.get(key);
    return bytes === undefined ? undefined : versionOf(bytes);
  }

  /** Stores `value` at `key` only if the key is free. @throws {ConflictError} when it exists. */
  async createIfAbsent(key: AbsolutePath, value: Uint8Array): Promise<void> {
    await this.setIf(key, value, { ifAbsent: true });
  }

  /** Stores every entry (`ifAbsent` ones only if free; then `ConflictError` after the rest are stored). */
  async setMany(entries: readonly KeyValue[]): Promise<void> {
    for (const { key, value } of entries) {
      this.#checkWrite(key);
      assertBytes(value, key);
    }
    let conflict: ConflictError | undefined;
    for (const { key, value, ifAbsent } of entries) {
      if (ifAbsent && this.#map.has(key)) conflict = new ConflictError(key, `${key} already exists`);
      else this.#map.set(key, copyBytes(value));
    }
    if (conflict) throw conflict;
  }

  /** Moves each `from` onto its `to`; false for a pair whose `from` is missing. */
  async rename(pairs: readonly RenamePair[]): Promise<boolean[]> {
    for (const { from, to } of pairs) {
      this.#checkWrite(from);
      this.#checkWrite(to);
    }
    return pairs.map(({ from, to }) => {
      const bytes = this.#map.get(from);
      if (bytes === undefined) return false;
      this.#map.delete(from);
      // A moved object is a new write at its target: give it a new version, as S3's copy does.
      this.#map.set(to, copyBytes(bytes));
      return true;
    });
  }

  /**
   * Copies `from` to `to` under an optional condition on the target; undefined when `from` is missing.
   * @throws {ConflictError} when the condition does not hold.
   */
  async copy(from: AbsolutePath, to: AbsolutePath, condition?: WriteCondition): Promise<string | undefined> {
    this.#checkWrite(from);
    const bytes = this.#map.get(from);
    if (bytes === undefined) return undefined;
    if (condition) return this.setIf(to, bytes, condition);
    this.#checkWrite(to);
    const stored = copyBytes(bytes);
    this.#map.set(to, stored);
    return versionOf(stored);
  }

  #checkWrite(key: AbsolutePath): void {
    assertValidKey(key);
    if (this.readOnly) {
      throw new StoreError("ERR_STORE_READ_ONLY", `cannot write ${key}: the store ${this.id} is read-only`);
    }
  }
}
