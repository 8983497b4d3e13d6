/**
 * The Synchronizer interface: shared/exclusive locks on sets of string keys, granted all-or-nothing.
 * The sync layer knows nothing of stores or arrays; callers build keys with `lockKey` (keys.ts).
 */

/** Shared locks may be held by many at once; an exclusive lock by one holder alone. */
export type LockMode = "shared" | "exclusive";

/** Options of one acquisition. */
export interface AcquireOptions {
  /** Give up waiting when aborted; the call then rejects with `LockError` `ERR_LOCK_ABORTED` and holds nothing. */
  readonly signal?: AbortSignal;
  /** Give up after this many milliseconds; rejects with `LockError` `ERR_LOCK_TIMEOUT` and holds nothing. */
  readonly timeoutMs?: number;
}

/** Keys to lock, by mode. A key named in both lists is locked exclusively. */
export interface LockSet {
  readonly shared?: Iterable<string>;
  readonly exclusive?: Iterable<string>;
}

/**
 * A granted set of locks. Release it exactly once in a `finally` (or with `await using`); extra
 * releases are no-ops, and a release never frees another holder's lock.
 */
export interface Lease extends AsyncDisposable {
  /** Every key held, sorted and deduplicated. */
  readonly keys: readonly string[];
  /** "exclusive" if any key is held exclusively, else "shared". */
  readonly mode: LockMode;
  /** The mode one key is held in, or undefined if this lease does not hold it. */
  modeOf(key: string): LockMode | undefined;
  /** Aborted when the lease is lost (expiry, lost quorum, synchronizer closed). Check before committing. */
  readonly signal: AbortSignal;
  /** Monotonically increasing token per grant, where the backend has one. */
  readonly fence?: bigint;
  /**
   * What the synchronizer knows about crashed writers of these keys. "clean": no holder of any of these
   * keys called `markJournal` without a matching `clearJournal` (so no journal entry can name them, and
   * a transaction need not look). Undefined: unknown; a transaction looks for pending entries itself.
   */
  readonly journalHint?: "clean" | "marked";
  /**
   * Records in the synchronizer, before a journal entry is written, that this lease's exclusive keys
   * may be named by a pending entry, so the next holder looks even when listing the store is costly.
   * The mark outlives a crash of this process. Optional: synchronizers without it give no hint.
   */
  markJournal?(): Promise<void>;
  /** Clears the mark set by `markJournal`, once the entry has been applied and deleted. */
  clearJournal?(): Promise<void>;
  /** Frees every key. Idempotent. */
  release(): Promise<void>;
}

/**
 * Grants leases on key sets. Guarantees (checked by `describeSynchronizer`):
 * - all-or-nothing: a lease holds every requested key, and a failed or cancelled acquisition holds none;
 * - shared locks coexist, an exclusive lock excludes every other holder of that key;
 * - deadlock-free: keys are taken in one deterministic total order;
 * - fair: a waiting exclusive request is not overtaken by later shared requests on its keys.
 */
export interface Synchronizer {
  /** Locks every key in one mode. Throws `LockError` on timeout, abort or a closed synchronizer. */
  acquire(keys: Iterable<string>, mode: LockMode, options?: AcquireOptions): Promise<Lease>;
  /** Locks keys in mixed modes at once (reads shared, writes exclusive), all-or-nothing. */
  acquireSet(locks: LockSet, options?: AcquireOptions): Promise<Lease>;
  /** Rejects pending acquisitions and frees held leases (their signals abort). Idempotent. */
  close(): Promise<void>;
}
