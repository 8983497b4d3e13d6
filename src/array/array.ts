/**
 * Array handles: `open` and `create` for Zarr v3 and v2 arrays on a zarr-tx store.
 *
 * A handle caches the array's metadata and codec pipeline. Transactions revalidate that cache under
 * their lease (the metadata lock), so a handle never writes with a stale shape.
 */

import { type ChunkCodecSpec, loadChunkCodec } from "../codecs/chunk-codec.js";
import { type EncodePool, sharedEncodePool } from "../codecs/encode-pool.js";
import { registerCodecs } from "../codecs/index.js";
import { InvalidArgumentError, isZarrTxError, MetadataError, StoreError } from "../errors.js";
import type { AbsolutePath, Store } from "../store/types.js";
import { InProcessSynchronizer } from "../sync/in-process.js";
import { lockKey, lockScope, META_SLOT } from "../sync/keys.js";
import type { Synchronizer } from "../sync/types.js";
import { allocate, type DataType, type RawTypedArray, type Scalar, toUserScalar } from "./dtype.js";
import { listEntries, recoverEntry } from "./journal.js";
import {
  type ArrayMetadata,
  buildMetadata,
  joinKey,
  type MetadataOptions,
  metadataKey,
  parseV2,
  parseV3,
  v2AttributesKey,
} from "./metadata.js";
import { cStrides, sizeOf } from "./ndarray.js";

/** A chunk as the codec pipeline sees it. */
export interface Chunk {
  readonly data: RawTypedArray;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/**
 * Encodes and decodes one stored object of an array (a chunk, or a whole shard of a sharded array).
 * `encode` returns undefined when the object need not be stored (an all-fill shard): the key is deleted.
 */
export interface ChunkCodec {
  encode(chunk: Chunk): Promise<Uint8Array | undefined>;
  decode(bytes: Uint8Array): Promise<Chunk>;
}

/** What a handle knows about its array at one moment; replaced wholesale when metadata changes. */
export interface ArrayState {
  readonly meta: ArrayMetadata;
  readonly metaBytes: Uint8Array;
  readonly codec: ChunkCodec;
  /** The codec as a plain description, for encoding in worker threads. */
  readonly codecSpec: ChunkCodecSpec;
}

function codecSpecOf(meta: ArrayMetadata): ChunkCodecSpec {
  return {
    dataType: meta.dtype,
    chunkShape: [...meta.chunkShape],
    fillValue: meta.fillValue,
    codecs: meta.codecs as CodecSpecList,
  };
}

type CodecSpecList = ChunkCodecSpec["codecs"];

async function stateOf(meta: ArrayMetadata, metaBytes: Uint8Array): Promise<ArrayState> {
  const codecSpec = codecSpecOf(meta);
  // Every codec is resolved now, so an unknown codec fails at open/create (ERR_UNKNOWN_CODEC).
  const codec = (await loadChunkCodec(codecSpec)) as unknown as ChunkCodec;
  return { meta, metaBytes, codec, codecSpec };
}

let processSynchronizer: InProcessSynchronizer | undefined;

/**
 * The synchronizer used when none is given: one in-process lock table per process (per module copy).
 * Async tasks of one process are isolated by default; other processes need a file or Redis synchronizer.
 */
export function defaultSynchronizer(): Synchronizer {
  processSynchronizer ??= new InProcessSynchronizer();
  return processSynchronizer;
}

/** A handle on one Zarr array in a store. Create it with {@link open} or {@link create}. */
export class ZarrTxArray {
  /** The store holding the array. */
  readonly store: Store;
  /** The array's path in the store ("/" for the root). */
  readonly path: AbsolutePath;
  /** The synchronizer every read and write of this handle goes through. */
  readonly synchronizer: Synchronizer;
  /** The lock scope of this array: store identity plus array path. */
  readonly lockScope: string;
  /** Worker threads that encode this array's chunks in parallel, when `encodeWorkers` was set. */
  readonly encodePool: EncodePool | undefined;
  #state: ArrayState;

  /** @internal Use {@link open} or {@link create}. */
  constructor(
    store: Store,
    path: AbsolutePath,
    synchronizer: Synchronizer,
    state: ArrayState,
    encodeWorkers = 0,
  ) {
    checkEncodeWorkers(encodeWorkers);
    this.encodePool = encodeWorkers > 0 ? sharedEncodePool(encodeWorkers) : undefined;
    this.store = store;
    this.path = path;
    this.synchronizer = synchronizer;
    this.lockScope = lockScope(store.id, path);
    this.#state = state;
  }

  /** The shape as of the last transaction (or open). */
  get shape(): readonly number[] {
    return this.#state.meta.shape;
  }
  /** The chunk shape. */
  get chunks(): readonly number[] {
    return this.#state.meta.chunkShape;
  }
  /** The data type. */
  get dtype(): DataType {
    return this.#state.meta.dtype;
  }
  /** The fill value of missing chunks. */
  get fillValue(): Scalar {
    return toUserScalar(this.#state.meta.dtype, this.#state.meta.fillValue);
  }
  /** The array's attributes. */
  get attrs(): Readonly<Record<string, unknown>> {
    return this.#state.meta.attributes;
  }
  /** 2 or 3. */
  get zarrFormat(): 2 | 3 {
    return this.#state.meta.zarrFormat;
  }
  /** The normalized metadata (codecs in v3 form). */
  get metadata(): ArrayMetadata {
    return this.#state.meta;
  }
  /** The lock key of the array's metadata. Every transaction holds it shared. */
  get metadataLockKey(): string {
    return lockKey(this.lockScope, META_SLOT);
  }

  /** @internal The cached state; the transaction layer replaces it after revalidation. */
  get state(): ArrayState {
    return this.#state;
  }
  /** @internal */
  set state(next: ArrayState) {
    this.#state = next;
  }
}

function checkEncodeWorkers(encodeWorkers: number | undefined): void {
  if (
    encodeWorkers !== undefined &&
    (!Number.isInteger(encodeWorkers) || encodeWorkers < 0 || encodeWorkers > 256)
  ) {
    throw new InvalidArgumentError(
      `encodeWorkers must be a whole number from 0 to 256, got ${encodeWorkers}`,
    );
  }
}

/** Options of {@link open}. */
export interface OpenOptions {
  /** Path of the array in the store; default "/". */
  readonly path?: string;
  /** Default: the process-wide in-process synchronizer. */
  readonly synchronizer?: Synchronizer;
  /**
   * Encode chunks on this many worker threads (a process-wide pool per size). Worth it when compression
   * dominates (blosc, zstd, gzip on large chunks) and the machine has spare cores. Default 0: encode on
   * the calling thread.
   */
  readonly encodeWorkers?: number;
}

/**
 * Opens an existing v3 or v2 array (v3 `zarr.json` is tried first).
 *
 * Throws `MetadataError` `ERR_ARRAY_NOT_FOUND` when there is no array at the path, `ERR_INVALID_METADATA`
 * when its metadata is corrupt, `ERR_UNSUPPORTED` for a dtype or layout zarr-tx cannot write,
 * `CodecError` `ERR_UNKNOWN_CODEC` for an unregistered codec (at open, not at first write), and
 * `InvalidArgumentError` for a bad path.
 */
export async function open(store: Store, options: OpenOptions = {}): Promise<ZarrTxArray> {
  registerCodecs();
  checkEncodeWorkers(options.encodeWorkers);
  const path = normalizePath(options.path);
  const state = await readState(store, path);
  if (!state) {
    throw new MetadataError(
      "ERR_ARRAY_NOT_FOUND",
      `no Zarr array at ${path} in ${store.id} (neither zarr.json nor .zarray exists); create it first`,
    );
  }
  return new ZarrTxArray(
    store,
    path,
    options.synchronizer ?? defaultSynchronizer(),
    state,
    options.encodeWorkers,
  );
}

/**
 * Reads and parses the array metadata at `path`, or undefined when there is none.
 * @internal Also used by transactions to revalidate a handle under its lease.
 */
export async function readState(
  store: Store,
  path: AbsolutePath,
  known?: ArrayState,
): Promise<ArrayState | undefined> {
  for (const zarrFormat of known ? [known.meta.zarrFormat] : ([3, 2] as const)) {
    const key = metadataKey(path, zarrFormat);
    const bytes = await store.get(key);
    if (!bytes) continue;
    if (known && sameBytes(bytes, known.metaBytes)) return known;
    const doc = parseJson(bytes, key);
    const meta =
      zarrFormat === 3 ? parseV3(doc, key) : parseV2(doc, await readV2Attributes(store, path), key);
    return stateOf(meta, bytes);
  }
  return undefined;
}

async function readV2Attributes(store: Store, path: AbsolutePath): Promise<unknown> {
  const bytes = await store.get(v2AttributesKey(path));
  return bytes ? parseJson(bytes, v2AttributesKey(path)) : undefined;
}

function parseJson(bytes: Uint8Array, key: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new MetadataError("ERR_INVALID_METADATA", `${key} is not valid JSON; the metadata is corrupt`, {
      cause,
    });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Options of {@link create}: the array's layout, plus where and how to store it. */
export interface CreateOptions extends MetadataOptions {
  /** Path of the array in the store; default "/". */
  readonly path?: string;
  /** Default: the process-wide in-process synchronizer. */
  readonly synchronizer?: Synchronizer;
  /** Replace an existing array (its chunks are deleted). Default false: an existing array is an error. */
  readonly overwrite?: boolean;
  /** As in {@link OpenOptions.encodeWorkers}. */
  readonly encodeWorkers?: number;
}

/**
 * Creates an array and returns its handle. v3 by default (`codecs`, default `[bytes]`); v2 with
 * `zarrFormat: 2` (`compressor`, `filters`, `order`, zarr-python compatible). The metadata write holds
 * the array's metadata lock exclusively.
 *
 * Throws `InvalidArgumentError` on a bad layout or fill value, `MetadataError` `ERR_ARRAY_EXISTS` when an
 * array exists and `overwrite` is not set, `StoreError` `ERR_STORE_READ_ONLY` on a read-only store, and
 * `CodecError` `ERR_UNKNOWN_CODEC` for an unregistered codec. Nothing is written when it throws.
 */
export async function create(store: Store, options: CreateOptions): Promise<ZarrTxArray> {
  registerCodecs();
  checkEncodeWorkers(options.encodeWorkers);
  const path = normalizePath(options.path);
  assertWritable(store);
  const { documents, meta } = buildMetadata(options);
  const fresh = await stateOf(
    meta,
    new TextEncoder().encode(documents[meta.zarrFormat === 3 ? "zarr.json" : ".zarray"]),
  );
  const codec = fresh.codec;
  // Prove the pipeline can encode before anything is written: an encoder that only decodes fails here.
  try {
    await codec.encode(emptyChunk(meta));
  } catch (cause) {
    if (isZarrTxError(cause)) throw cause;
    throw new InvalidArgumentError(`the codecs cannot encode a ${meta.dtype} chunk: ${String(cause)}`, {
      cause,
    });
  }
  const synchronizer = options.synchronizer ?? defaultSynchronizer();
  const scope = lockScope(store.id, path);
  const lease = await synchronizer.acquire([lockKey(scope, META_SLOT)], "exclusive");
  try {
    const existing = await readState(store, path);
    if (existing) {
      if (!options.overwrite) {
        throw new MetadataError(
          "ERR_ARRAY_EXISTS",
          `an array already exists at ${path} in ${store.id}; open it, or pass overwrite: true to replace it`,
        );
      }
      await deleteArrayObjects(store, path);
    }
    const encoder = new TextEncoder();
    // v2: attributes first, so a reader that sees .zarray also sees its .zattrs.
    for (const name of Object.keys(documents).sort((a, b) =>
      a === ".zarray" ? 1 : b === ".zarray" ? -1 : 0,
    )) {
      await store.set(joinKey(path, name), encoder.encode(documents[name]));
    }
    return new ZarrTxArray(store, path, synchronizer, fresh, options.encodeWorkers);
  } finally {
    await lease.release();
  }
}

async function deleteArrayObjects(store: Store, path: AbsolutePath): Promise<void> {
  const prefix = path === "/" ? "/" : `${path}/`;
  // A dead writer's committed journal entry naming this array's chunks would otherwise be applied to the
  // new array by the next transaction. Its writer is dead: a live one would hold the metadata lock
  // shared, and we hold it exclusively. Roll such entries forward now, then delete as usual.
  for (const entry of await listEntries(store)) {
    if (entry.record?.state === "commit" && entry.record.targets.some((t) => t.key.startsWith(prefix))) {
      await recoverEntry(store, entry);
    }
  }
  // zarr-tx's reserved files stay (the file synchronizer's `.zarr-tx/locks` is held by this very create):
  // a lock file deleted while in use splits its holders from everyone who opens the path later.
  for (const key of await store.list(prefix)) if (!key.includes("/.zarr-tx/")) await store.delete(key);
}

function emptyChunk(meta: ArrayMetadata): Chunk {
  const shape = [...meta.chunkShape];
  return { data: allocate(meta.dtype, sizeOf(shape)), shape, stride: cStrides(shape) };
}

/** Throws `StoreError` `ERR_STORE_READ_ONLY` unless the store accepts writes. */
export function assertWritable(store: Store): void {
  if (store.readOnly || typeof store.set !== "function") {
    throw new StoreError(
      "ERR_STORE_READ_ONLY",
      `store ${store.id} is read-only; open a writable store to create or write arrays`,
    );
  }
}

/** Normalizes an array path to "/" or "/a/b". Throws `InvalidArgumentError` on `..`, `.` or empty segments. */
export function normalizePath(path: string | undefined): AbsolutePath {
  if (path === undefined || path === "" || path === "/") return "/";
  const segments = path.replace(/^\/+/, "").replace(/\/+$/, "").split("/");
  for (const s of segments) {
    if (s === "" || s === "." || s === ".." || s.includes("\\") || s.includes("\0")) {
      throw new InvalidArgumentError(
        `array path ${JSON.stringify(path)} is invalid; use segments like "group/array"`,
      );
    }
  }
  return `/${segments.join("/")}`;
}
