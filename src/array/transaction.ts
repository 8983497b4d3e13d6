/**
 * Transactions: isolated, all-or-nothing reads and writes over one or more arrays of one store.
 *
 * The protocol of `transaction(footprint, fn)`:
 * 1. Validate every footprint selection against the cached shape (typed errors, before any lock).
 * 2. Map the footprint to lock keys: the metadata key of each array (shared), the stored objects each
 *    "read" entry touches (shared) and each "write" entry rewrites (exclusive).
 * 3. Acquire them all at once through the arrays' synchronizer (all-or-nothing, sorted order).
 * 4. Revalidate each handle's metadata under the lease. If the chunk grid changed (another process
 *    resized or recreated the array), release and plan again from step 1.
 * 5. Recover first: a journal entry that names a key now held belongs to a writer that died (a live one
 *    would still hold that key). If this lease holds every key the entry names exclusively, roll the
 *    entry forward (or discard it if it was never committed); otherwise release, and plan again with
 *    those keys added exclusively. Stores that list cheaply (files) are looked at every time; others
 *    only when the synchronizer's journal hint is not "clean".
 * 6. Run `fn(tx)`. `tx.get` reads through the staged writes; `tx.set` stages writes in decoded chunk
 *    buffers. Partly covered chunks are read and merged once; fully covered chunks are not read. On
 *    stores with conditional writes each read also records the object's version (fencing).
 *    Each access is checked against the lease: touching an object outside the footprint throws.
 * 7. If `fn` resolves: encode the dirty chunks, check the lease is still held, and commit them through
 *    `commitObjects` (journal.ts): one object is replaced atomically, several go through a journal entry,
 *    so a crash leaves all or none of them. Writes are conditioned on the versions read (fencing). If
 *    `fn` throws, nothing is written.
 * 8. Release the lease in `finally`, after every write has completed (the lock is the visibility barrier).
 */
import { mapLimit } from "../concurrency.js";
import {
  CorruptChunkError,
  isZarrTxError,
  LeaseLostError,
  StoreError,
  TransactionError,
  ValueError,
} from "../errors.js";
import type { AbsolutePath, Store } from "../store/types.js";
import { lockKey } from "../sync/keys.js";
import type { AcquireOptions, Lease, Synchronizer } from "../sync/types.js";
import { type ArrayState, assertWritable, type Chunk, readState, ZarrTxArray } from "./array.js";
import {
  allocate,
  expectedArrayName,
  matchesDtype,
  type RawTypedArray,
  toRaw,
  toRawScalar,
  toUser,
  type UserTypedArray,
} from "./dtype.js";
import { commitObjects, listEntries, lockKeysOf, type ObjectWrite, recoverEntry } from "./journal.js";
import { chunkKey, joinKey } from "./metadata.js";
import { beginTransaction, type TransactionRecorder } from "./metrics.js";
import { copyStrided, cStrides, fillStrided, type StridedView, sizeOf } from "./ndarray.js";
import {
  type ChunkProjection,
  forEachTouchedChunk,
  type NormalizedSelection,
  normalizeSelection,
  projectSelection,
  type Selection,
} from "./selection.js";

/** An n-dimensional result or value: `data` in the array's typed array, with `shape` and `stride` (elements). */
export interface NdArray<T extends UserTypedArray = UserTypedArray> {
  readonly data: T;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/** A value to write: a scalar broadcast to the selection, or an array of exactly the selection's shape. */
export type WriteValue =
  | number
  | bigint
  | boolean
  | { readonly data: UserTypedArray; readonly shape: readonly number[]; readonly stride?: readonly number[] };

/** One region a transaction may touch, and how. */
export interface FootprintEntry {
  readonly array: ZarrTxArray;
  /** Default: the whole array. */
  readonly selection?: Selection;
  readonly mode: "read" | "write";
}

/** Options of a transaction (and of `get`/`set`). */
export interface TransactionOptions extends AcquireOptions {
  /** How many chunks are read, decoded, encoded or written at once. Default 16. */
  readonly concurrency?: number;
  /**
   * Write a transaction that rewrites several objects through the crash journal, so that a crash leaves
   * all of them or none. Default: true on stores whose data outlive the process (files, S3), false on
   * those that do not (memory: nothing survives a crash there). With false each object is still
   * replaced atomically, but a writer killed mid-commit can leave some objects new and some old (what
   * plain Zarr libraries do).
   */
  readonly journal?: boolean;
}

/** The handle passed to a transaction's function. Valid only until the function settles. */
export interface Transaction {
  /** Reads a selection, seeing this transaction's own staged writes. */
  get(array: ZarrTxArray, selection?: Selection): Promise<NdArray>;
  /** Stages a write; it is committed when the transaction's function resolves. */
  set(array: ZarrTxArray, selection: Selection, value: WriteValue): Promise<void>;
  /** The lease the transaction holds (for `lease.signal` and `lease.fence`). */
  readonly lease: Lease;
}

const DEFAULT_CONCURRENCY = 16;
const MAX_REPLANS = 8;

/** The key of the stored object holding one chunk of an array. */
function objectKey(array: ZarrTxArray, state: ArrayState, coords: readonly number[]): AbsolutePath {
  return joinKey(array.path, chunkKey(state.meta, coords));
}

/** Ids of non-persistent stores this process wrote journal entries to (the only ones to look at). */
const journaledStores = new Set<string>();

interface PlannedEntry {
  readonly entry: FootprintEntry;
  readonly state: ArrayState;
}

/**
 * Runs `fn` inside a transaction over `footprint` and commits its writes when it resolves.
 *
 * Guarantees: serializable against every zarr-tx transaction on the same arrays through the same
 * synchronizer (all locks taken before the first read); nothing is written if `fn` throws or any
 * validation fails; when it resolves, every write is durable as the store defines it.
 *
 * Throws `TransactionError` (`ERR_INVALID_ARGUMENT` for an empty or mixed footprint,
 * `ERR_OUTSIDE_FOOTPRINT` for access outside it), `SelectionError`/`ValueError` for bad input,
 * `LockError` on timeout or abort, `LeaseLostError` when the lease was lost before commit (or a fenced
 * write found newer data), `TransactionError` `ERR_APPLY_PENDING` when it committed but could not apply
 * its journal entry (durable; applied by the next transaction on those chunks: do not retry), `StoreError`,
 * `CorruptChunkError`, or whatever `fn` throws.
 */
export async function transaction<T>(
  footprint: readonly FootprintEntry[],
  fn: (tx: Transaction) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const synchronizer = checkFootprint(footprint);
  const metrics = beginTransaction(footprint); // undefined (free) unless someone listens
  const run = attempts(synchronizer, footprint, fn, options, metrics);
  return metrics ? metrics.observe(run) : run;
}

async function attempts<T>(
  synchronizer: Synchronizer,
  footprint: readonly FootprintEntry[],
  fn: (tx: Transaction) => Promise<T>,
  options: TransactionOptions,
  metrics: TransactionRecorder | undefined,
): Promise<T> {
  const store = footprint[0]!.array.store;
  // Keys of dead writers' journal entries that a previous attempt found: locked exclusively for recovery.
  const recoveryKeys = new Set<string>();
  for (let attempt = 0; ; attempt++) {
    const planned = footprint.map((entry) => ({ entry, state: entry.array.state }));
    const locks = planLocks(planned, recoveryKeys);
    metrics?.acquiring(locks);
    const lease = await synchronizer.acquireSet(locks, options);
    metrics?.acquired();
    let tx: TransactionImpl | undefined;
    try {
      const replan = !(await revalidate(planned)) || !(await recoverPending(store, lease, recoveryKeys));
      if (replan) {
        if (attempt < MAX_REPLANS) continue;
        throw new TransactionError(
          "ERR_CONFLICT",
          `the arrays' shape or chunking, or the pending journal entries, changed ${MAX_REPLANS + 1} times ` +
            "while this transaction waited for its locks; retry later",
        );
      }
      tx = new TransactionImpl(lease, options, metrics);
      const result = await fn(tx);
      await tx.commit();
      return result;
    } finally {
      tx?.close();
      await lease.release();
      metrics?.released();
    }
  }
}

/**
 * Recovers the journal entries that name keys this lease holds (step 5 of the protocol). Returns false
 * when an entry names keys the lease does not hold exclusively: they were added to `recoveryKeys`, and
 * the caller plans again.
 */
async function recoverPending(store: Store, lease: Lease, recoveryKeys: Set<string>): Promise<boolean> {
  if (!store.capabilities.cheapList && lease.journalHint === "clean") return true;
  // A store that dies with its process holds entries only if this process journaled on it.
  if (store.capabilities.persistent === false && !journaledStores.has(store.id)) return true;
  const entries = await listEntries(store);
  const mine = entries.filter((e) => lockKeysOf(e).some((k) => lease.modeOf(k) !== undefined));
  if (mine.length === 0) {
    // A mark with no entry behind it (a writer that failed before its commit point, or one whose entry
    // a recovery settled): clear it, so that later holders of these keys skip the listing again.
    if (lease.journalHint === "marked" && lease.clearJournal) await lease.clearJournal();
    return true;
  }
  // Checked first: a read-only store cannot recover, so taking exclusive locks for it would be in vain.
  if (store.readOnly) {
    throw new StoreError(
      "ERR_RECOVERY_NEEDED",
      `a writer died in the middle of a transaction on ${store.id}, and this store is read-only, so its ` +
        "journal entry cannot be applied; the data it names may be half-written. Open the store writable " +
        "(any zarr-tx transaction on those chunks recovers it), or run `zarr-tx recover`.",
    );
  }
  let complete = true;
  for (const entry of mine) {
    for (const key of lockKeysOf(entry)) {
      if (lease.modeOf(key) !== "exclusive") {
        recoveryKeys.add(key);
        complete = false;
      }
    }
  }
  if (!complete) return false;
  for (const entry of mine) await recoverEntry(store, entry);
  if (lease.journalHint === "marked" && lease.clearJournal) await lease.clearJournal();
  return true;
}

function checkFootprint(footprint: readonly FootprintEntry[]): Synchronizer {
  if (!Array.isArray(footprint) || footprint.length === 0) {
    throw new TransactionError(
      "ERR_INVALID_ARGUMENT",
      "a transaction needs a footprint: a non-empty list of { array, selection, mode }",
    );
  }
  const first = footprint[0]!;
  for (const entry of footprint) {
    if (!(entry?.array instanceof ZarrTxArray)) {
      throw new TransactionError(
        "ERR_INVALID_ARGUMENT",
        "every footprint entry needs an array from open() or create()",
      );
    }
    if (entry.mode !== "read" && entry.mode !== "write") {
      throw new TransactionError(
        "ERR_INVALID_ARGUMENT",
        `footprint mode must be "read" or "write", got ${JSON.stringify(entry.mode)}`,
      );
    }
    if (entry.array.store.id !== first.array.store.id) {
      throw new TransactionError(
        "ERR_INVALID_ARGUMENT",
        `a transaction spans one store; ${entry.array.store.id} differs from ${first.array.store.id}`,
      );
    }
    if (entry.array.synchronizer !== first.array.synchronizer) {
      throw new TransactionError(
        "ERR_INVALID_ARGUMENT",
        "every array of a transaction must use the same synchronizer; open them with the same one",
      );
    }
    if (entry.mode === "write") assertWritable(entry.array.store);
    // Validate now, before any lock: a bad selection throws a typed error here.
    normalizeSelection(entry.selection, entry.array.state.meta.shape);
  }
  return first.array.synchronizer;
}

function planLocks(
  planned: readonly PlannedEntry[],
  recoveryKeys: ReadonlySet<string>,
): { shared: string[]; exclusive: string[] } {
  const shared: string[] = [];
  const exclusive: string[] = [...recoveryKeys];
  for (const { entry, state } of planned) {
    shared.push(entry.array.metadataLockKey);
    const selection = normalizeSelection(entry.selection, state.meta.shape);
    const target = entry.mode === "write" ? exclusive : shared;
    forEachTouchedChunk(selection, state.meta.shape, state.meta.chunkShape, (linearIndex) => {
      target.push(lockKey(entry.array.lockScope, linearIndex));
    });
  }
  return { shared, exclusive };
}

/**
 * Re-reads each array's metadata under the lease. Returns false when a chunk grid changed, so that the
 * locks taken no longer match what the footprint touches.
 */
async function revalidate(planned: readonly PlannedEntry[]): Promise<boolean> {
  let stillValid = true;
  for (const { entry, state } of new Map(planned.map((p) => [p.entry.array, p])).values()) {
    const array = entry.array;
    const fresh = await readState(array.store, array.path, state);
    if (!fresh) {
      throw new StoreError("ERR_STORE_IO", `the array at ${array.path} in ${array.store.id} was deleted`);
    }
    if (fresh === state) continue;
    array.state = fresh;
    const same =
      fresh.meta.zarrFormat === state.meta.zarrFormat &&
      fresh.meta.shape.join() === state.meta.shape.join() &&
      fresh.meta.chunkShape.join() === state.meta.chunkShape.join() &&
      chunkKey(fresh.meta, [1, 2]) === chunkKey(state.meta, [1, 2]);
    if (!same) stillValid = false;
  }
  return stillValid;
}

/** A decoded chunk buffer owned by a transaction (C order, exact size). */
interface WorkingChunk {
  readonly key: AbsolutePath;
  /** The lock key that guards the object. */
  readonly lockKey: string;
  readonly data: RawTypedArray;
  dirty: boolean;
  /**
   * On stores with conditional writes: the version read under the lease (null: the object did not
   * exist). Undefined when not read (a full overwrite) or the store has no versions.
   */
  expected: string | null | undefined;
}

class TransactionImpl implements Transaction {
  readonly lease: Lease;
  readonly #concurrency: number;
  readonly #journal: boolean | undefined;
  /** Chunk buffers by store key; a promise so concurrent accesses share one read. */
  readonly #chunks = new Map<AbsolutePath, Promise<WorkingChunk>>();
  readonly #arrays = new Map<AbsolutePath, { array: ZarrTxArray; state: ArrayState }>();
  /** Keys this transaction has staged a write to. */
  readonly #written = new Set<AbsolutePath>();
  #closed = false;
  readonly #metrics: TransactionRecorder | undefined;

  constructor(lease: Lease, options: TransactionOptions, metrics?: TransactionRecorder) {
    this.lease = lease;
    this.#concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_CONCURRENCY));
    this.#journal = options.journal;
    this.#metrics = metrics;
  }

  close(): void {
    this.#closed = true;
  }

  async get(array: ZarrTxArray, selection?: Selection): Promise<NdArray> {
    this.#assertOpen();
    const state = array.state;
    const sel = normalizeSelection(selection, state.meta.shape);
    const projections = projectSelection(sel, state.meta.shape, state.meta.chunkShape);
    this.#assertHeld(array, projections, "shared");
    const out = allocate(state.meta.dtype, sizeOf(sel.shape));
    const outStrides = cStrides(sel.shape);
    const chunks = await mapLimit(projections, this.#concurrency, (p) => this.#chunk(array, state, p, true));
    const other = { data: out, offset: 0, strides: outStrides };
    projections.forEach((p, i) => {
      transfer(p, sel, state.meta.chunkShape, chunks[i]!.data, other, "fromChunk");
    });
    return { data: toUser(state.meta.dtype, out), shape: sel.shape, stride: outStrides };
  }

  async set(array: ZarrTxArray, selection: Selection, value: WriteValue): Promise<void> {
    this.#assertOpen();
    const state = array.state;
    const sel = normalizeSelection(selection, state.meta.shape);
    const source = checkValue(value, sel, state);
    const projections = projectSelection(sel, state.meta.shape, state.meta.chunkShape);
    this.#assertHeld(array, projections, "exclusive");
    // Every chunk is loaded before any is modified, so a failed read leaves the staged state unchanged.
    const unread: AbsolutePath[] = [];
    let chunks: WorkingChunk[];
    try {
      chunks = await mapLimit(projections, this.#concurrency, (p) =>
        this.#chunk(array, state, p, !p.full, unread),
      );
    } catch (error) {
      // Buffers made without a read hold fill values, not the stored data: drop them unless written.
      for (const key of unread) if (!this.#written.has(key)) this.#chunks.delete(key);
      throw error;
    }
    this.#assertOpen();
    projections.forEach((p, i) => {
      const chunk = chunks[i]!;
      transfer(p, sel, state.meta.chunkShape, chunk.data, source, "toChunk");
      chunk.dirty = true;
      this.#written.add(chunk.key);
    });
  }

  /** Encodes and writes every dirty chunk. Called once, after the transaction's function resolved. */
  async commit(): Promise<void> {
    this.#assertOpen();
    this.#closed = true;
    const dirty = (await Promise.all(this.#chunks.values())).filter((c) => c.dirty);
    if (dirty.length === 0) return;
    const encoded = await mapLimit(dirty, this.#concurrency, async (chunk) => {
      const { array, state } = this.#arrays.get(chunk.key)!;
      const shape = state.meta.chunkShape;
      const input = { data: chunk.data, shape, stride: cStrides(shape) } satisfies Chunk;
      try {
        // The pool takes the chunk's buffer (transferred): fine, the transaction is done with it.
        if (array.encodePool) return await array.encodePool.encode(state.codecSpec, input);
        return await state.codec.encode(input);
      } catch (cause) {
        if (isZarrTxError(cause)) throw cause;
        throw new StoreError(
          "ERR_STORE_IO",
          `encoding ${chunk.key} of ${array.path} failed: ${String(cause)}`,
          {
            cause,
          },
        );
      }
    });
    const store = this.#arrays.get(dirty[0]!.key)!.array.store;
    this.#assertLeaseHeld();
    // An object the codec declines to store (an all-fill shard) is deleted: it reads as fill values.
    const writes: ObjectWrite[] = dirty.map((chunk, i) => ({
      key: chunk.key,
      lockKey: chunk.lockKey,
      bytes: encoded[i],
      expected: chunk.expected,
    }));
    const journal = this.#journal ?? store.capabilities.persistent !== false;
    if (journal && writes.length > 1) journaledStores.add(store.id);
    await commitObjects(store, writes, this.lease, this.#concurrency, journal);
    this.#metrics?.committed(encoded);
  }

  #chunk(
    array: ZarrTxArray,
    state: ArrayState,
    p: ChunkProjection,
    needsRead: boolean,
    unread?: AbsolutePath[],
  ): Promise<WorkingChunk> {
    const key = objectKey(array, state, p.coords);
    let pending = this.#chunks.get(key);
    if (!pending) {
      this.#arrays.set(key, { array, state });
      if (!needsRead) unread?.push(key);
      pending = this.#load(array, state, key, lockKey(array.lockScope, p.linearIndex), needsRead);
      this.#chunks.set(key, pending);
      // A failed load must not poison later accesses with a rejected promise they never awaited.
      pending.catch(() => this.#chunks.delete(key));
    }
    return pending;
  }

  async #load(
    array: ZarrTxArray,
    state: ArrayState,
    key: AbsolutePath,
    chunkLockKey: string,
    needsRead: boolean,
  ): Promise<WorkingChunk> {
    const { meta, codec } = state;
    const size = sizeOf(meta.chunkShape);
    const store = array.store;
    let bytes: Uint8Array | undefined;
    let expected: string | null | undefined;
    if (needsRead && store.capabilities.conditionalWrite && store.getVersioned) {
      const versioned = await store.getVersioned(key);
      bytes = versioned?.value;
      expected = versioned?.version ?? null;
    } else if (needsRead) {
      bytes = await store.get(key);
    } else if (store.capabilities.conditionalWrite && store.version) {
      // A full overwrite reads no bytes, but fencing still needs the version it replaces, taken now,
      // while the lease is surely held (taking it at commit could see a newer writer's version).
      expected = (await store.version(key)) ?? null;
    }
    if (needsRead) this.#metrics?.read(bytes);
    if (!bytes) {
      const data = allocate(meta.dtype, size);
      if (meta.fillValue !== 0 && meta.fillValue !== 0n) {
        (data as unknown as { fill(v: unknown): void }).fill(meta.fillValue);
      }
      return { key, lockKey: chunkLockKey, data, dirty: false, expected };
    }
    let decoded: Chunk;
    try {
      decoded = await codec.decode(bytes);
    } catch (cause) {
      throw new CorruptChunkError(key, { cause });
    }
    const raw = toRaw(decoded.data as unknown as UserTypedArray);
    if (raw.length !== size) throw new CorruptChunkError(key);
    const shape = meta.chunkShape;
    const strides = cStrides(shape);
    // The pipeline hands back data that own an exact-size buffer; in C order it is used as is.
    if (decoded.stride.every((s, axis) => s === strides[axis] || shape[axis] === 1)) {
      return { key, lockKey: chunkLockKey, data: raw, dirty: false, expected };
    }
    const data = allocate(meta.dtype, size);
    copyStrided({ data: raw, offset: 0, strides: decoded.stride }, { data, offset: 0, strides }, shape);
    return { key, lockKey: chunkLockKey, data, dirty: false, expected };
  }

  #assertHeld(
    array: ZarrTxArray,
    projections: readonly ChunkProjection[],
    mode: "shared" | "exclusive",
  ): void {
    for (const p of projections) {
      const held = this.lease.modeOf(lockKey(array.lockScope, p.linearIndex));
      if (held === undefined || (mode === "exclusive" && held !== "exclusive")) {
        throw new TransactionError(
          "ERR_OUTSIDE_FOOTPRINT",
          `chunk ${p.coords.join(",")} of ${array.path} is outside the transaction's footprint` +
            ` (${mode === "exclusive" ? 'writes need a footprint entry with mode "write"' : "reads need a footprint entry"} covering it)`,
        );
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new TransactionError(
        "ERR_TRANSACTION_CLOSED",
        "this transaction has finished; use tx only inside the transaction's function, and await every call",
      );
    }
  }

  #assertLeaseHeld(): void {
    if (this.lease.signal.aborted) {
      throw new LeaseLostError(
        "the transaction's lease was lost before commit (expired or revoked); nothing was written. Retry the transaction.",
        { cause: this.lease.signal.reason },
      );
    }
  }
}

/** Validates a write value against the selection and dtype. Returns a strided view, or a raw scalar. */
function checkValue(
  value: WriteValue,
  sel: NormalizedSelection,
  state: ArrayState,
): StridedView | number | bigint {
  const { dtype } = state.meta;
  if (typeof value !== "object" || value === null) return toRawScalar(dtype, value);
  const { data, shape } = value as { data: unknown; shape: unknown; stride?: unknown };
  if (!matchesDtype(dtype, data)) {
    const got = typeof data === "object" && data !== null ? data.constructor.name : typeof data;
    throw new ValueError(
      "ERR_VALUE_DTYPE",
      `the value's data is a ${got}, but the array is ${dtype}; pass a ${expectedArrayName(dtype)}`,
    );
  }
  if (
    !Array.isArray(shape) ||
    shape.length !== sel.shape.length ||
    shape.some((n, i) => n !== sel.shape[i])
  ) {
    throw new ValueError(
      "ERR_VALUE_SHAPE",
      `the value has shape [${String(shape)}] but the selection has shape [${sel.shape.join(", ")}]; they must match exactly`,
    );
  }
  const stride = value.stride ?? cStrides(sel.shape);
  if (!Array.isArray(stride) || stride.length !== shape.length || !stride.every(Number.isInteger)) {
    throw new ValueError("ERR_VALUE_SHAPE", `the value's stride [${String(stride)}] does not fit its shape`);
  }
  const raw = toRaw(data);
  // The furthest element addressed must exist, or the copy would read past the data.
  let lo = 0;
  let hi = 0;
  shape.forEach((n: number, i: number) => {
    const reach = (n - 1) * (stride[i] as number);
    if (reach < 0) lo += reach;
    else hi += reach;
  });
  const offset = lo < 0 ? -lo : 0;
  if (sizeOf(sel.shape) > 0 && hi + offset >= raw.length) {
    throw new ValueError(
      "ERR_VALUE_SHAPE",
      `the value's data has ${raw.length} elements, too few for shape [${shape.join(", ")}] and stride [${stride.join(", ")}]`,
    );
  }
  return { data: raw, offset, strides: stride };
}

/**
 * Moves the elements of one chunk projection between a chunk buffer (C order, chunk shape) and another
 * array whose dimensions are the selection's output dimensions: out of the chunk into a result
 * ("fromChunk"), or from a value (or a scalar) into the chunk ("toChunk").
 */
function transfer(
  p: ChunkProjection,
  sel: NormalizedSelection,
  chunkShape: readonly number[],
  chunkData: RawTypedArray,
  other: StridedView | number | bigint,
  direction: "fromChunk" | "toChunk",
): void {
  const chunk = chunkData as unknown as { [i: number]: number | bigint };
  if (p.points) {
    // Coordinate selection: one element per point; `other` is 1-D.
    const { chunkOffsets, outIndices } = p.points;
    if (typeof other !== "object") {
      for (const offset of chunkOffsets) chunk[offset] = other;
      return;
    }
    const data = other.data as unknown as { [i: number]: number | bigint };
    const stride = other.strides[0] ?? 1;
    for (let j = 0; j < chunkOffsets.length; j++) {
      const o = other.offset + outIndices[j]! * stride;
      if (direction === "toChunk") chunk[chunkOffsets[j]!] = data[o]!;
      else data[o] = chunk[chunkOffsets[j]!]!;
    }
    return;
  }
  const counts = p.dims.map((d) => d.count);
  const chunkStrides = cStrides(chunkShape);
  if (p.dims.every((d) => !d.chunkIndices)) {
    // Basic selection: both sides are strided windows, copied row by row.
    const region = views(p, sel, chunkStrides, chunkData, typeof other === "object" ? other : undefined);
    if (typeof other !== "object") fillStrided(region.chunk, counts, other);
    else if (direction === "toChunk") copyStrided(region.other, region.chunk, counts);
    else copyStrided(region.chunk, region.other, counts);
    return;
  }
  // Orthogonal selection: per axis, the offset of each selected element on both sides; then visit the
  // cartesian product of those lists.
  const chunkOffsets: number[][] = [];
  const otherOffsets: number[][] = [];
  let outAxis = 0;
  p.dims.forEach((d, axis) => {
    const dim = sel.dims[axis]!;
    const cs = chunkStrides[axis]!;
    const os = typeof other === "object" && dim.kind !== "index" ? (other.strides[outAxis] ?? 0) : 0;
    const c: number[] = [];
    const o: number[] = [];
    for (let k = 0; k < d.count; k++) {
      c.push((d.chunkIndices ? d.chunkIndices[k]! : d.chunkStart + k * d.step) * cs);
      o.push((d.outIndices ? d.outIndices[k]! : d.outStart + k) * os);
    }
    chunkOffsets.push(c);
    otherOffsets.push(o);
    if (dim.kind !== "index") outAxis++;
  });
  const otherData =
    typeof other === "object" ? (other.data as unknown as { [i: number]: number | bigint }) : undefined;
  const base = typeof other === "object" ? other.offset : 0;
  const rank = counts.length;
  const pos = new Array<number>(rank).fill(0);
  const total = counts.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    let c = 0;
    let o = base;
    for (let axis = 0; axis < rank; axis++) {
      c += chunkOffsets[axis]![pos[axis]!]!;
      o += otherOffsets[axis]![pos[axis]!]!;
    }
    if (!otherData) chunk[c] = other as number | bigint;
    else if (direction === "toChunk") chunk[c] = otherData[o]!;
    else otherData[o] = chunk[c]!;
    for (let axis = rank - 1; axis >= 0; axis--) {
      if (++pos[axis]! < counts[axis]!) break;
      pos[axis] = 0;
    }
  }
}

/**
 * Views for copying one basic projection: `chunk` walks the selected part of the chunk buffer, and
 * `other` walks the matching part of a result or value, whose dimensions are the selection's output
 * dimensions (integer-selected ones dropped, so they get stride 0).
 */
function views(
  p: ChunkProjection,
  sel: NormalizedSelection,
  chunkStrides: readonly number[],
  chunkData: RawTypedArray,
  other?: StridedView,
): { chunk: StridedView; other: StridedView } {
  let chunkOffset = 0;
  let otherOffset = other?.offset ?? 0;
  const strides: number[] = [];
  const otherStrides: number[] = [];
  let outAxis = 0;
  p.dims.forEach((d, axis) => {
    chunkOffset += d.chunkStart * chunkStrides[axis]!;
    strides.push(d.step * chunkStrides[axis]!);
    if (sel.dims[axis]!.kind === "index") {
      otherStrides.push(0);
    } else {
      const s = other?.strides[outAxis] ?? 0;
      otherOffset += d.outStart * s;
      otherStrides.push(s);
      outAxis++;
    }
  });
  return {
    chunk: { data: chunkData, offset: chunkOffset, strides },
    other: { data: other?.data ?? chunkData, offset: otherOffset, strides: otherStrides },
  };
}

/**
 * Reads a selection under shared locks: a consistent snapshot of every chunk it touches.
 * Throws like {@link transaction}.
 */
export function get(
  array: ZarrTxArray,
  selection?: Selection,
  options?: TransactionOptions,
): Promise<NdArray> {
  return transaction([{ array, selection, mode: "read" }], (tx) => tx.get(array, selection), options);
}

/**
 * Writes `value` to a selection, atomically with respect to every zarr-tx reader and writer using the
 * same synchronizer: every chunk it rewrites is locked exclusively before the first read.
 * The selection and value are validated before any lock is taken; a bad one throws `SelectionError` or
 * `ValueError` and writes nothing. Otherwise throws like {@link transaction}.
 */
export async function set(
  array: ZarrTxArray,
  selection: Selection,
  value: WriteValue,
  options?: TransactionOptions,
): Promise<void> {
  checkValue(value, normalizeSelection(selection, array.state.meta.shape), array.state);
  assertWritable(array.store);
  await transaction([{ array, selection, mode: "write" }], (tx) => tx.set(array, selection, value), options);
}
