/**
 * The file synchronizer: shared/exclusive locks for worker processes (and `worker_threads`) on one host
 * or on a shared filesystem with working POSIX locks, built on Linux open-file-description (OFD)
 * byte-range locks from `fs-native-extensions`.
 *
 * Protocol of one acquisition (see docs/file-synchronizer.md for the reasoning and the platforms):
 * 1. Plan. Every key is split by `parseLockKey` into scope and slot. Each scope (one array of one store)
 *    has one lock file: `<root><array path>/.zarr-tx/locks` for a `file:` scope, or
 *    `<lockDirectory>/<sha-256 of the array's directory or of the scope>.lock` with the `lockDirectory`
 *    option (required for scopes of other stores). In a lock file the metadata slot is byte 0 and chunk
 *    (or shard) `i` is byte `i + 1`; the turnstile ("gate") byte of lock byte `b` is `GATE_BASE + b`.
 *    Contiguous bytes wanted in one mode form one run. Files are taken in path order, runs in byte order.
 * 2. No in-process table in front. Every lease, also within one process, gets descriptors of its own
 *    and contends through the kernel: OFD locks belong to an open file description, so leases on
 *    separate descriptors exclude each other like processes do (and two leases on one descriptor would
 *    silently share one lock). A table in front was tried and dropped: a request queued in it is
 *    invisible to other processes, so their later readers overtook it (the conformance suite's
 *    no-starvation test failed), and announcing it to them while it waits for a local holder breaks the
 *    global lock order (deadlock). The turnstile gives the same no-overtaking rule inside a process.
 * 3. Open. Each lease opens each of its lock files afresh (read-write, created if missing, close-on-exec)
 *    and closes it on release. Closing the last descriptor of a description drops all its locks at once,
 *    which is also what the kernel does when the holder dies.
 * 4. Lock a run. Fast path, never blocking: take the run's gate bytes shared (this fails only if someone
 *    is queued on one of them), try the run's lock bytes in the wanted mode, drop the gates. If that fails,
 *    the longest grantable prefix is found by halving, and the first refused byte is taken on its own,
 *    waiting: its gate exclusively (announcing the wait), then its lock byte, then the gate is dropped.
 *    Every blocking step waits for a resource above everything the lease holds (files in path order;
 *    per byte: gate, then lock byte, then higher bytes), so waits cannot form a cycle; the kernel does not
 *    detect OFD deadlocks, so this order is what keeps the synchronizer deadlock-free.
 * 5. Wait. Every wait first tries the non-blocking lock (`waitForLock` starts a thread per call), then
 *    waits on a native thread, raced against the timeout, the abort signal and `close()`.
 * 6. Check the file. After a file's runs are held, a lock file that was unlinked meanwhile (link count 0)
 *    is dropped and the file is done again on a fresh descriptor: locks on a deleted inode exclude nobody
 *    who opens the path later.
 * 7. Give up (timeout, abort, close, error). Every descriptor of the attempt is unlocked and closed
 *    before the acquisition rejects. A descriptor with a wait still running
 *    on a native thread cannot be cancelled: it is unlocked now, kept open, and closed as soon as the wait
 *    settles, so a lock the kernel grants after the caller gave up is dropped at once. (Its descriptor is
 *    never closed earlier: the number could be reused by another open while the thread still waits.)
 * 8. Release: close every descriptor of the lease. Idempotent.
 * 9. Close: pending acquisitions reject with `ERR_SYNCHRONIZER_CLOSED`, held leases are revoked (their
 *    descriptors closed, so other processes get the locks at once; their signals abort).
 */

import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, mkdirSync, openSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { InvalidArgumentError, isZarrTxError, LeaseLostError, LockError } from "../errors.js";
import { nativeExtensions } from "../native.js";
import {
  lockAbortedError,
  lockTimeoutError,
  modeOfSorted,
  type ResolvedLockSet,
  resolveLockSet,
  synchronizerClosedError,
} from "./in-process.js";
import { META_SLOT, parseSlot } from "./keys.js";
import type { AcquireOptions, Lease, LockMode, LockSet, Synchronizer } from "./types.js";

/** Directory, inside an array's directory, that holds zarr-tx's reserved files. Zarr readers ignore it. */
export const RESERVED_DIR = ".zarr-tx";
/** Name of the lock file inside {@link RESERVED_DIR}. */
export const LOCK_FILE_NAME = "locks";

/**
 * Lock bytes live in [0, GATE_BASE) and turnstile bytes in [GATE_BASE, 2 * GATE_BASE). Offsets stay
 * below 2^53, so they are exact JavaScript numbers; nothing is ever written, so the file stays empty.
 */
export const GATE_BASE = 2 ** 52;

const NAME = "file synchronizer";
const RESOLVED: Promise<void> = Promise.resolve();
// setTimeout fires at once for delays it cannot represent, so longer waits are simply unbounded.
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How often an acquisition re-does a file that keeps being unlinked under it before it gives up. */
const MAX_REOPENS = 8;

/** How lock files are locked. */
export type LockGranularity = "byte" | "file";

/** Options of a {@link FileSynchronizer}. */
export interface FileSynchronizerOptions {
  /**
   * Put every lock file in this directory (created if missing) instead of beside each array, named
   * `<sha-256 hex, 32 chars>.lock` after the array's directory (file stores) or the lock scope (other
   * stores). Use it for read-only data, for a data filesystem without working locks (then every process
   * must be on one host and use the same directory), and for stores that are not on a filesystem
   * (`memory:`, S3), which need it. Every process that shares an array must use the same directory.
   */
  readonly lockDirectory?: string;
  /**
   * "byte" (default on Linux): one byte per chunk, so writers of disjoint chunks run in parallel.
   * "file" (default on macOS, where `fs-native-extensions` only has whole-file `flock`): one lock per
   * array and lease, exclusive if the lease writes any chunk of it, else shared. Correct but coarse:
   * writers of one array run one at a time, and there is no turnstile, so a steady stream of readers can
   * starve a writer. Processes using "byte" and "file" on one array still exclude each other correctly.
   */
  readonly granularity?: LockGranularity;
  /**
   * Take a turnstile (gate) byte before waiting for a lock byte, so that a waiting writer is not
   * overtaken by later readers in other processes (OFD locks do not queue). Default true. With false, an
   * acquisition saves two system calls per run and a steady stream of readers can starve a writer.
   */
  readonly turnstile?: boolean;
}

/** One run of lock bytes of one file, wanted in one mode. */
interface Run {
  readonly start: number;
  /** 0 means "to the end of the file": the whole-file lock of granularity "file". */
  readonly length: number;
  readonly exclusive: boolean;
}

/** Everything one lease needs from one lock file. */
interface FilePlan {
  readonly path: string;
  readonly runs: readonly Run[];
}

/** One open descriptor of a lock file, owned by one acquisition and then by its lease. */
interface LockHandle {
  readonly path: string;
  readonly fd: number;
  /** A native wait still running on this descriptor: it must settle before the descriptor is closed. */
  pending: Promise<void> | undefined;
}

/** The state of one acquisition in its OS phase: how and when it gives up. */
class Attempt {
  readonly keys: readonly string[];
  /** The error it was cancelled with (timeout, abort, close); undefined while it may go on. */
  error: LockError | undefined;
  /** Rejects with `error` when cancelled; raced against every native wait. */
  readonly cancelled: Promise<never>;
  /** True when the time is up already: only non-blocking tries are allowed. */
  readonly noWait: boolean;
  readonly timeoutMs: number | undefined;
  #reject: ((error: LockError) => void) | undefined;

  constructor(keys: readonly string[], timeoutMs: number | undefined, noWait: boolean) {
    this.keys = keys;
    this.timeoutMs = timeoutMs;
    this.noWait = noWait;
    this.cancelled = new Promise<never>((_, reject) => {
      this.#reject = reject;
    });
    // Nobody may be racing against it when it is cancelled; that is not an unhandled rejection.
    this.cancelled.catch(ignore);
  }

  cancel(error: LockError): void {
    if (this.error !== undefined) return;
    this.error = error;
    this.#reject?.(error);
  }

  /** The error to give up with when a wait would be needed but the time is up. */
  timeoutError(): LockError {
    return lockTimeoutError(this.keys, this.timeoutMs ?? 0);
  }
}

function ignore(): void {}

function checkTimeout(timeoutMs: number | undefined): void {
  if (timeoutMs === undefined) return;
  if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new InvalidArgumentError(
      `timeoutMs must be a non-negative number of milliseconds (0 tries once without waiting), got ${String(timeoutMs)}`,
    );
  }
}

class FileLease implements Lease {
  readonly keys: readonly string[];
  readonly mode: LockMode;
  readonly #modes: readonly LockMode[];
  #handles: LockHandle[] | undefined;
  readonly #onRelease: (lease: FileLease) => void;
  // Most callers never look at the signal, so its controller is made on first use.
  #controller: AbortController | undefined;
  #lostReason: unknown;

  constructor(set: ResolvedLockSet, handles: LockHandle[], onRelease: (lease: FileLease) => void) {
    this.keys = set.keys;
    this.mode = set.mode;
    this.#modes = set.modes;
    this.#handles = handles;
    this.#onRelease = onRelease;
  }

  /** Aborted when the synchronizer is closed under the lease; OFD locks are never taken away otherwise. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#lostReason !== undefined) this.#controller.abort(this.#lostReason);
    }
    return this.#controller.signal;
  }

  /** No fencing token: OFD locks have no counter shared across processes. */
  get fence(): bigint | undefined {
    return undefined;
  }

  modeOf(key: string): LockMode | undefined {
    return modeOfSorted(this.keys, this.#modes, key);
  }

  release(): Promise<void> {
    // Clearing the handles first makes later calls no-ops: a closed descriptor number may already belong
    // to another open file, and unlocking or closing it again would hit someone else.
    const handles = this.#handles;
    if (handles === undefined) return RESOLVED;
    this.#handles = undefined;
    closeHandles(handles);
    this.#onRelease(this);
    return RESOLVED;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  /** Called by `close()`: frees the locks now (other processes get them at once) and aborts the signal. */
  revoke(): void {
    const handles = this.#handles;
    this.#handles = undefined;
    if (handles !== undefined) closeHandles(handles);
    this.#lostReason = new LeaseLostError(
      `the lease on ${this.keys.length} key(s) was revoked because the ${NAME} was closed; do not commit ` +
        "work done under it",
      { cause: synchronizerClosedError(NAME) },
    );
    this.#controller?.abort(this.#lostReason);
  }
}

/**
 * Closes every descriptor, which drops all OFD locks it holds. A descriptor with a native wait in flight
 * is unlocked now and closed when the wait settles (protocol step 7).
 */
function closeHandles(handles: readonly LockHandle[]): void {
  for (const handle of handles) {
    const pending = handle.pending;
    if (pending === undefined) {
      closeQuietly(handle.fd);
      continue;
    }
    try {
      nativeExtensions().unlock(handle.fd, 0, 0);
    } catch {
      // The close below drops everything anyway.
    }
    const close = () => closeQuietly(handle.fd);
    pending.then(close, close);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // A close that fails (EIO on a network filesystem) still releases the descriptor and its locks.
  }
}

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as Error & { code?: string }).code : undefined;
}

function describeValue(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : typeof value;
}

/**
 * Shared/exclusive locks for the worker processes and `worker_threads` of one host, or of several hosts
 * on a filesystem with working POSIX locks, using Linux OFD byte-range locks (see the protocol at the
 * top of this module and docs/file-synchronizer.md).
 *
 * Guarantees (each instance is one handle; instances in one process contend like processes):
 * - all-or-nothing: a lease holds every requested key; a failed, timed-out, aborted or closed acquisition
 *   holds none, and a lock the kernel grants to an abandoned wait is dropped as soon as it is granted;
 * - shared locks coexist, an exclusive lock excludes every other holder, in any process;
 * - deadlock-free: locks are taken in one global order (lock file path, then byte; gate before
 *   lock), as long as no task waits for a second lease while it holds a first one;
 * - no writer starvation: a request waiting for a key holds that key's gate, so later requests for the
 *   key, from any process or from this one, queue behind it (the turnstile). Keys of a request that it
 *   has not reached yet are not announced, and requests queued on one gate are served in no particular
 *   order (the kernel keeps no queue), so this is not FIFO;
 * - live: when a holder dies (SIGKILL included), the kernel frees its locks at once: no stale locks, no
 *   lease timeouts to tune. A `worker_threads` worker that is terminated has its descriptors closed by
 *   Node, which frees its locks too (but `worker.terminate()` itself waits until a native wait of that
 *   worker is granted).
 *
 * Leases have no `fence`, and their `signal` aborts only when this synchronizer is closed.
 *
 * Rejections: `LockError` `ERR_LOCK_TIMEOUT`, `ERR_LOCK_ABORTED`, `ERR_SYNCHRONIZER_CLOSED`;
 * `LockError` `ERR_UNSUPPORTED` when a lock file cannot be opened or the filesystem refuses locks;
 * `InvalidArgumentError` for a bad mode, key list or timeout, a key not built with `lockKey`, or a scope
 * that is not a `file:` store's while no `lockDirectory` is set.
 */
export class FileSynchronizer implements Synchronizer {
  readonly #lockDirectory: string | undefined;
  readonly #granularity: LockGranularity;
  readonly #turnstile: boolean;
  readonly #attempts = new Set<Attempt>();
  readonly #leases = new Set<FileLease>();
  readonly #paths = new Map<string, string>();
  readonly #releaseLease = (lease: FileLease) => {
    this.#leases.delete(lease);
  };
  #closed = false;

  /**
   * Creates a synchronizer. It opens nothing until the first acquisition.
   *
   * @throws {LockError} `ERR_UNSUPPORTED` on platforms other than Linux and macOS, or with granularity
   *   "byte" on macOS (which has only whole-file locks).
   * @throws {InvalidArgumentError} for a `lockDirectory` that is not a non-empty string or a bad option.
   */
  constructor(options: FileSynchronizerOptions = {}) {
    const platform = process.platform;
    if (platform !== "linux" && platform !== "darwin") {
      throw new LockError(
        "ERR_UNSUPPORTED",
        `the ${NAME} supports Linux (OFD byte-range locks) and macOS (whole-file locks), not ${platform}. ` +
          "Use the in-process synchronizer for one process, or the Redis synchronizer across processes.",
      );
    }
    const granularity = options.granularity ?? (platform === "linux" ? "byte" : "file");
    if (granularity !== "byte" && granularity !== "file") {
      throw new InvalidArgumentError(
        `granularity must be "byte" or "file", got ${describeValue(granularity)}`,
      );
    }
    if (granularity === "byte" && platform !== "linux") {
      throw new LockError(
        "ERR_UNSUPPORTED",
        `byte-range locks need Linux OFD locks; on ${platform} only whole-file locks exist. ` +
          'Use granularity "file" (the default there).',
      );
    }
    if (options.lockDirectory !== undefined) {
      if (typeof options.lockDirectory !== "string" || options.lockDirectory === "") {
        throw new InvalidArgumentError(
          `lockDirectory must be a non-empty path, got ${describeValue(options.lockDirectory)}`,
        );
      }
      this.#lockDirectory = resolve(options.lockDirectory);
    }
    this.#granularity = granularity;
    this.#turnstile = options.turnstile ?? true;
    // Load the addon now rather than inside the first lease (see nativeExtensions): its first load would
    // otherwise land in the first transaction's lock wait. Throws here, not mid-transaction, if missing.
    nativeExtensions();
  }

  /**
   * Locks every key in one mode, all-or-nothing; same as `acquireSet({ [mode]: keys }, options)`.
   * Rejects (never throws) like {@link FileSynchronizer.acquireSet}.
   */
  acquire(keys: Iterable<string>, mode: LockMode, options?: AcquireOptions): Promise<Lease> {
    if (mode === "exclusive") return this.acquireSet({ exclusive: keys }, options);
    if (mode === "shared") return this.acquireSet({ shared: keys }, options);
    return Promise.reject(
      new InvalidArgumentError(`lock mode must be "shared" or "exclusive", got ${describeValue(mode)}`),
    );
  }

  /**
   * Locks keys in mixed modes at once (a key in both lists is exclusive), all-or-nothing, in the lock
   * files, in one global order (see the protocol at the top of this module). `timeoutMs` bounds the whole
   * acquisition (0: only if everything is free now); `signal` cancels it. A cancelled or failed
   * acquisition holds nothing; a wait it leaves behind on a native thread drops its lock when granted.
   *
   * Rejects (never throws) with `LockError` `ERR_LOCK_TIMEOUT`, `ERR_LOCK_ABORTED`,
   * `ERR_SYNCHRONIZER_CLOSED` or `ERR_UNSUPPORTED` (lock file cannot be opened, filesystem refuses
   * locks), and `InvalidArgumentError` for bad arguments or keys this synchronizer cannot place.
   */
  acquireSet(locks: LockSet, options: AcquireOptions = {}): Promise<Lease> {
    return this.#acquire(locks, options);
  }

  async #acquire(locks: LockSet, options: AcquireOptions): Promise<Lease> {
    const { timeoutMs, signal } = options;
    if (this.#closed) throw synchronizerClosedError(NAME);
    const set = resolveLockSet(locks);
    checkTimeout(timeoutMs);
    if (signal?.aborted) throw lockAbortedError(set.keys, signal.reason);
    // Plan before taking anything: a key this synchronizer cannot place fails with nothing held.
    const plan = this.#plan(set);
    if (plan.length === 0) return this.#grant(set, []);

    const attempt = new Attempt(set.keys, timeoutMs, timeoutMs === 0);
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (timeoutMs !== undefined && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) {
      timer = setTimeout(() => attempt.cancel(attempt.timeoutError()), timeoutMs);
    }
    const onAbort = () => attempt.cancel(lockAbortedError(set.keys, signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#attempts.add(attempt);
    const handles: LockHandle[] = [];
    try {
      for (const file of plan) await this.#lockFile(file, handles, attempt);
      // A cancellation that arrived together with the last grant still wins: the caller was told no.
      if (attempt.error !== undefined) throw attempt.error;
    } catch (error) {
      closeHandles(handles);
      throw error;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      this.#attempts.delete(attempt);
    }
    return this.#grant(set, handles);
  }

  #grant(set: ResolvedLockSet, handles: LockHandle[]): Lease {
    const lease = new FileLease(set, handles, this.#releaseLease);
    this.#leases.add(lease);
    return lease;
  }

  /**
   * Closes the synchronizer: pending acquisitions reject with `LockError` `ERR_SYNCHRONIZER_CLOSED`,
   * held leases are revoked (their lock files closed, so other processes get the locks at once; their
   * signals abort), and later acquisitions reject. Idempotent; never rejects. A native wait that is still
   * running keeps its descriptor open until the kernel grants it, then closes it.
   */
  close(): Promise<void> {
    if (this.#closed) return RESOLVED;
    this.#closed = true;
    const closed = synchronizerClosedError(NAME);
    for (const attempt of this.#attempts) attempt.cancel(closed);
    for (const lease of this.#leases) lease.revoke();
    this.#leases.clear();
    return RESOLVED;
  }

  /** True once {@link FileSynchronizer.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The lock file of a lock scope (`lockScope(store.id, arrayPath)`), as every acquisition computes it.
   *
   * @throws {InvalidArgumentError} when the scope is not a `file:` store's and there is no
   *   `lockDirectory`, or its path is malformed.
   */
  lockFileOf(scope: string): string {
    let path = this.#paths.get(scope);
    if (path === undefined) {
      path = this.#locate(scope);
      this.#paths.set(scope, path);
    }
    return path;
  }

  #locate(scope: string): string {
    const dir = arrayDirectory(scope);
    if (this.#lockDirectory !== undefined) {
      // The array's real directory names it when there is one, so two stores opened at different roots
      // over the same files (root "/d" with path "/a", and root "/d/a" with path "/") share one file.
      const identity = dir ?? `scope:${scope}`;
      const name = createHash("sha256").update(identity).digest("hex").slice(0, 32);
      return join(this.#lockDirectory, `${name}.lock`);
    }
    if (dir === undefined) {
      throw new InvalidArgumentError(
        `the ${NAME} cannot place a lock file for scope ${JSON.stringify(scope)}: only arrays of a ` +
          "FileSystemStore (scope file:<root>:<path>) get one beside the array. Pass " +
          "{ lockDirectory } to keep the lock files of other stores (memory, S3) in a directory every process shares.",
      );
    }
    return join(dir, RESERVED_DIR, LOCK_FILE_NAME);
  }

  /**
   * Groups the keys by lock file and turns each file's bytes into runs (protocol step 1). Files are
   * ordered by path, not scope: two scopes can name one file (one array seen through stores opened at
   * different roots), and every process must agree on the order of the files themselves.
   */
  #plan(set: ResolvedLockSet): FilePlan[] {
    // One pass over the sorted keys. Consecutive keys of one scope (the common case: a transaction's
    // chunks) reuse the scope's file without slicing or hashing the scope again, and since the slots of
    // one scope sort numerically (zero-padded), their bytes arrive ascending and become runs on the fly.
    const byPath = new Map<string, FileBytes>();
    const { keys, modes } = set;
    let i = 0;
    while (i < keys.length) {
      // The first key of a block: split it the slow way.
      const key = keys[i]!;
      const at = key.lastIndexOf("#");
      const slot = at < 0 ? undefined : parseSlot(key, at + 1);
      if (slot === undefined) throw badKey(key);
      const bytes = this.#bytesOf(byPath, key.slice(0, at));
      this.#addByte(bytes, key, slot, modes[i] === "exclusive");
      // The keys that follow with the same "<scope>#" prefix form one block (the keys are sorted), found
      // with O(log n) prefix tests. A key of the block whose slot parses needs no further check: its
      // scope is this one. One that does not parse belongs to a longer scope ("<scope>#5#…") and starts
      // a block of its own.
      const prefix = key.slice(0, at + 1);
      const end = prefixBlockEnd(keys, i, prefix);
      const from = prefix.length;
      for (i++; i < end; i++) {
        const next = keys[i]!;
        // Inline fast path for the usual slot, 16 digits (lockKey pads to them); parseSlot otherwise.
        let slot = -1;
        if (next.length === from + 16) {
          let value = 0;
          let p = from;
          for (; p < next.length; p++) {
            const digit = next.charCodeAt(p) - 48;
            if (digit < 0 || digit > 9) break;
            value = value * 10 + digit;
          }
          if (p === next.length) slot = value;
        }
        if (slot >= 0 && slot + 1 < GATE_BASE) {
          bytes.add(slot + 1, modes[i] === "exclusive");
          continue;
        }
        const parsed = parseSlot(next, from);
        if (parsed === undefined) break;
        this.#addByte(bytes, next, parsed, modes[i] === "exclusive");
      }
    }
    const plan: FilePlan[] = [];
    for (const path of [...byPath.keys()].sort()) {
      const bytes = byPath.get(path)!;
      const runs =
        this.#granularity === "file"
          ? [{ start: 0, length: 0, exclusive: bytes.anyExclusive }]
          : bytes.runs();
      plan.push({ path, runs });
    }
    return plan;
  }

  #bytesOf(byPath: Map<string, FileBytes>, scope: string): FileBytes {
    const path = this.lockFileOf(scope);
    let bytes = byPath.get(path);
    if (bytes === undefined) {
      bytes = new FileBytes();
      byPath.set(path, bytes);
    }
    return bytes;
  }

  #addByte(bytes: FileBytes, key: string, slot: number | typeof META_SLOT, exclusive: boolean): void {
    const byte = slot === META_SLOT ? 0 : slot + 1;
    if (byte >= GATE_BASE) {
      throw new InvalidArgumentError(
        `lock key ${JSON.stringify(key)}: chunk index ${slot} is beyond what the ${NAME} can lock (2^52 - 2)`,
      );
    }
    bytes.add(byte, exclusive);
  }

  /** Opens one lock file for the attempt and takes all its runs (steps 3, 4 and 6). */
  async #lockFile(file: FilePlan, handles: LockHandle[], attempt: Attempt): Promise<void> {
    for (let reopen = 0; ; reopen++) {
      const handle: LockHandle = { path: file.path, fd: openLockFile(file.path), pending: undefined };
      // Registered before any wait, so that giving up closes it (and waits for its native thread).
      handles.push(handle);
      for (const run of file.runs) await this.#lockRun(handle, run, attempt);
      if (!unlinked(handle)) return;
      if (reopen >= MAX_REOPENS) {
        throw new LockError(
          "ERR_UNSUPPORTED",
          `the lock file ${file.path} was deleted ${MAX_REOPENS} times while locks were taken on it; lock ` +
            "files must not be deleted while processes use them",
        );
      }
      // Locks on an unlinked inode exclude nobody who opens the path from now on: start this file again.
      handles.pop();
      closeQuietly(handle.fd);
    }
  }

  /** Takes one run (step 4): a non-blocking fast path, and byte-by-byte waiting where it is refused. */
  async #lockRun(handle: LockHandle, run: Run, attempt: Attempt): Promise<void> {
    if (run.length === 0) {
      // Whole-file lock (granularity "file"): there is no room for gate bytes, so no turnstile.
      await this.#wait(handle, 0, 0, run.exclusive, attempt);
      return;
    }
    let pos = run.start;
    const end = run.start + run.length;
    while (pos < end) {
      let length = end - pos;
      while (length > 0 && !this.#tryRun(handle, pos, length, run.exclusive)) length = Math.floor(length / 2);
      if (length > 0) {
        pos += length;
        continue;
      }
      if (this.#turnstile) {
        // Announce the wait: later requests for this byte find its gate taken and queue behind it.
        await this.#wait(handle, GATE_BASE + pos, 1, true, attempt);
        await this.#wait(handle, pos, 1, run.exclusive, attempt);
        nativeExtensions().unlock(handle.fd, GATE_BASE + pos, 1);
      } else {
        await this.#wait(handle, pos, 1, run.exclusive, attempt);
      }
      pos++;
    }
  }

  /** The fast path of a run: never blocks. True when the lock bytes are now held. */
  #tryRun(handle: LockHandle, start: number, length: number, exclusive: boolean): boolean {
    if (!this.#turnstile) return tryLock(handle, start, length, exclusive);
    // Gates taken shared: probes of concurrent newcomers never collide, but a queued waiter (who holds
    // its gate exclusively) makes the probe fail, so nobody overtakes it.
    if (!tryLock(handle, GATE_BASE + start, length, false)) return false;
    try {
      return tryLock(handle, start, length, exclusive);
    } finally {
      nativeExtensions().unlock(handle.fd, GATE_BASE + start, length);
    }
  }

  /** Takes one range, waiting on a native thread if needed (step 5). */
  async #wait(
    handle: LockHandle,
    start: number,
    length: number,
    exclusive: boolean,
    attempt: Attempt,
  ): Promise<void> {
    if (attempt.error !== undefined) throw attempt.error;
    if (tryLock(handle, start, length, exclusive)) return;
    if (attempt.noWait) throw attempt.timeoutError();
    const granted = nativeExtensions().waitForLock(handle.fd, start, length, { shared: !exclusive });
    handle.pending = granted;
    let outcome: "granted" | "cancelled";
    try {
      outcome = await Promise.race([granted.then(() => "granted" as const), attempt.cancelled]);
    } catch (error) {
      if (error === attempt.error) throw error;
      // The wait itself failed (the filesystem refused the lock): nothing is pending any more.
      handle.pending = undefined;
      throw lockRefused(handle.path, error);
    }
    if (outcome === "granted") handle.pending = undefined;
  }
}

/** A non-blocking lock; true when granted. Errors other than "held by someone else" are typed. */
function tryLock(handle: LockHandle, start: number, length: number, exclusive: boolean): boolean {
  try {
    return nativeExtensions().tryLock(handle.fd, start, length, { shared: !exclusive });
  } catch (error) {
    throw lockRefused(handle.path, error);
  }
}

function lockRefused(where: string, error: unknown): LockError {
  if (isZarrTxError(error)) return error as LockError;
  return new LockError(
    "ERR_UNSUPPORTED",
    `the filesystem refused a byte-range lock on ${where} (${errnoCode(error) ?? String(error)}). It may ` +
      "not support POSIX/OFD locks (some network or FUSE filesystems, Lustre mounted without -o flock): " +
      "pass { lockDirectory } on a local filesystem that has them. Nothing is held.",
    { cause: error },
  );
}

/**
 * Opens (creating if needed) a lock file read-write. libuv opens every file close-on-exec, which matters:
 * a child process that inherited the descriptor would keep the lock alive after its holder released it.
 */
function openLockFile(path: string): number {
  const flags = constants.O_RDWR | constants.O_CREAT;
  try {
    try {
      return openSync(path, flags, 0o666);
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error;
      // First use of this array (or lock directory): make the reserved directory, then open again.
      mkdirSync(dirname(path), { recursive: true });
      return openSync(path, flags, 0o666);
    }
  } catch (error) {
    throw new LockError(
      "ERR_UNSUPPORTED",
      `cannot open the lock file ${path} for reading and writing (${errnoCode(error) ?? String(error)}). ` +
        "Exclusive locks need a writable lock file: for read-only data, pass { lockDirectory } naming a " +
        "writable directory that every process shares. Nothing is held.",
      { cause: error },
    );
  }
}

/** True when the open lock file has been unlinked (its link count fell to 0). */
function unlinked(handle: LockHandle): boolean {
  try {
    return fstatSync(handle.fd).nlink === 0;
  } catch {
    return false;
  }
}

/**
 * The real directory of the array a `file:` scope names, or undefined for other stores. A scope is
 * `file:<root>:<path>` with an absolute root and an absolute array path; one that could be split in two
 * ways, or whose path has `.`/`..`/empty segments, is refused rather than guessed.
 */
function arrayDirectory(scope: string): string | undefined {
  if (!scope.startsWith("file:")) return undefined;
  const rest = scope.slice("file:".length);
  const split = rest.indexOf(":/");
  if (split < 0 || rest.indexOf(":/", split + 1) >= 0) {
    throw new InvalidArgumentError(
      `the lock scope ${JSON.stringify(scope)} is not file:<root>:<array path>, or it could be split in ` +
        "more than one way (a ':/' inside the root or the path); pass { lockDirectory } to name lock files by hash",
    );
  }
  const root = rest.slice(0, split);
  const path = rest.slice(split + 1);
  const segments = path === "/" ? [] : path.slice(1).split("/");
  if (
    !isAbsolute(root) ||
    root.includes("\0") ||
    segments.some((s) => s === "" || s === "." || s === ".." || s.includes("\0") || s.includes("\\"))
  ) {
    throw new InvalidArgumentError(
      `the lock scope ${JSON.stringify(scope)} has a root that is not absolute or an array path with ` +
        "empty, '.', '..' or NUL segments; build scopes with lockScope(store.id, arrayPath)",
    );
  }
  return join(root, ...segments);
}

/**
 * The end (exclusive) of the block of sorted `keys` from `from` on that start with `prefix` (which
 * `keys[from]` does): in sorted order, the keys with a common prefix are contiguous. Galloping, then
 * binary search: O(log n) prefix tests instead of one per key.
 */
function prefixBlockEnd(keys: readonly string[], from: number, prefix: string): number {
  let lo = from + 1;
  let step = 1;
  let hi = lo;
  while (hi < keys.length && keys[hi]!.startsWith(prefix)) {
    lo = hi + 1;
    step *= 2;
    hi = from + step;
  }
  hi = Math.min(hi, keys.length);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]!.startsWith(prefix)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function badKey(key: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `lock key ${JSON.stringify(key)} was not built with lockKey(scope, slot): the ${NAME} needs ` +
      "the slot (meta or a chunk index) to find its byte",
  );
}

/**
 * The bytes one lease wants in one lock file, with their modes, turned into runs: contiguous bytes
 * wanted in one mode, in byte order. Bytes usually arrive ascending (sorted keys of one scope), except
 * the metadata byte 0, whose key sorts last; they are then appended to runs directly. Anything else
 * (two scopes naming one file, keys not built by `lockKey`) falls back to a sort. A byte added twice
 * is exclusive if either time was.
 */
/** @internal Exported for tests. */
export class FileBytes {
  /** The metadata byte's mode, kept aside: its key (`#meta`) sorts after every chunk key. */
  #meta: boolean | undefined;
  #runs: Run[] = [];
  /** Bytes that came out of order, sorted and merged in `runs()`. */
  #unordered: { byte: number; exclusive: boolean }[] | undefined;
  anyExclusive = false;

  add(byte: number, exclusive: boolean): void {
    if (exclusive) this.anyExclusive = true;
    if (byte === 0) {
      this.#meta = (this.#meta ?? false) || exclusive;
      return;
    }
    if (this.#unordered !== undefined) {
      this.#unordered.push({ byte, exclusive });
      return;
    }
    const last = this.#runs[this.#runs.length - 1] as
      | { start: number; length: number; exclusive: boolean }
      | undefined;
    if (last === undefined || byte >= last.start + last.length) {
      if (last !== undefined && last.exclusive === exclusive && last.start + last.length === byte)
        last.length++;
      else this.#runs.push({ start: byte, length: 1, exclusive });
      return;
    }
    // Out of order: keep everything as single bytes and sort at the end.
    this.#unordered = [];
    for (const run of this.#runs) {
      for (let b = run.start; b < run.start + run.length; b++)
        this.#unordered.push({ byte: b, exclusive: run.exclusive });
    }
    this.#runs = [];
    this.#unordered.push({ byte, exclusive });
  }

  runs(): Run[] {
    let runs = this.#runs;
    if (this.#unordered !== undefined) {
      const sorted = this.#unordered.sort((x, y) => x.byte - y.byte);
      runs = [];
      for (let i = 0; i < sorted.length; i++) {
        let { byte, exclusive } = sorted[i]!;
        while (i + 1 < sorted.length && sorted[i + 1]!.byte === byte) {
          i++;
          if (sorted[i]!.exclusive) exclusive = true;
        }
        const last = runs[runs.length - 1] as
          | { start: number; length: number; exclusive: boolean }
          | undefined;
        if (last !== undefined && last.exclusive === exclusive && last.start + last.length === byte)
          last.length++;
        else runs.push({ start: byte, length: 1, exclusive });
      }
    }
    if (this.#meta === undefined) return runs;
    const first = runs[0] as { start: number; length: number; exclusive: boolean } | undefined;
    if (first !== undefined && first.start === 1 && first.exclusive === this.#meta) {
      first.start = 0;
      first.length++;
      return runs;
    }
    return [{ start: 0, length: 1, exclusive: this.#meta }, ...runs];
  }
}
