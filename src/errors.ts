/**
 * Typed errors of zarr-tx. Every error is a {@link ZarrTxError} with a stable `code`, so callers can
 * branch with {@link isZarrTxError} instead of parsing messages. This module imports nothing, so every
 * layer (array, sync, store, codecs) may use it.
 */

/** Stable error codes. Never renamed once published; new codes are only added. */
export type ZarrTxErrorCode =
  | "ERR_INVALID_SELECTION"
  | "ERR_OUT_OF_BOUNDS"
  | "ERR_INVALID_STEP"
  | "ERR_VALUE_SHAPE"
  | "ERR_VALUE_DTYPE"
  | "ERR_INVALID_ARGUMENT"
  | "ERR_UNKNOWN_CODEC"
  | "ERR_ARRAY_NOT_FOUND"
  | "ERR_ARRAY_EXISTS"
  | "ERR_INVALID_METADATA"
  | "ERR_UNSUPPORTED"
  | "ERR_STORE_READ_ONLY"
  | "ERR_INVALID_KEY"
  | "ERR_STORE_IO"
  | "ERR_CORRUPT_CHUNK"
  | "ERR_CODEC"
  | "ERR_OUTSIDE_FOOTPRINT"
  | "ERR_TRANSACTION_CLOSED"
  | "ERR_LOCK_TIMEOUT"
  | "ERR_LOCK_ABORTED"
  | "ERR_LEASE_LOST"
  | "ERR_SYNCHRONIZER_CLOSED"
  | "ERR_CONFLICT"
  | "ERR_QUORUM_UNAVAILABLE"
  | "ERR_STORE_ACCESS_DENIED"
  | "ERR_STORE_NOT_FOUND"
  | "ERR_CORRUPT_JOURNAL"
  | "ERR_RECOVERY_NEEDED"
  | "ERR_APPLY_PENDING";

const ZARR_TX_ERROR = Symbol.for("zarr-tx.error");

/**
 * Base class of every error zarr-tx throws on purpose. `code` is stable; `message` says what was wrong
 * and what to do about it.
 */
export class ZarrTxError extends Error {
  readonly code: ZarrTxErrorCode;
  readonly [ZARR_TX_ERROR] = true;

  constructor(code: ZarrTxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * True when `error` is a zarr-tx error, optionally with the given code. Works across copies of the
 * module (it checks a registered symbol, not `instanceof`).
 */
export function isZarrTxError(error: unknown, code?: ZarrTxErrorCode): error is ZarrTxError {
  if (typeof error !== "object" || error === null || !(ZARR_TX_ERROR in error)) return false;
  return code === undefined || (error as ZarrTxError).code === code;
}

/** A selection is malformed, out of bounds or has a bad step. Thrown before any lock is taken. */
export class SelectionError extends ZarrTxError {}

/** A value to write has the wrong shape or dtype. Thrown before any lock is taken. */
export class ValueError extends ZarrTxError {}

/** An argument (option, shape, chunk shape, fill value…) is invalid. */
export class InvalidArgumentError extends ZarrTxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_INVALID_ARGUMENT", message, options);
  }
}

/** Array metadata is missing, corrupt, or names something zarr-tx cannot handle. */
export class MetadataError extends ZarrTxError {}

/** A codec named in the metadata is not registered, or failed to encode or decode. */
export class CodecError extends ZarrTxError {}

/** A store operation failed, a key was rejected, or the store cannot write. */
export class StoreError extends ZarrTxError {}

/** A stored chunk could not be decoded. `key` names the damaged object. */
export class CorruptChunkError extends ZarrTxError {
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super(
      "ERR_CORRUPT_CHUNK",
      `chunk ${key} could not be decoded: the stored object is damaged or was written with other codecs. ` +
        "Restore it from a backup or delete it (it then reads as the fill value).",
      options,
    );
    this.key = key;
  }
}

/**
 * Lock acquisition failed: timed out, aborted, the synchronizer is closed, or (Redis) fewer than a
 * majority of the lock servers answered (`ERR_QUORUM_UNAVAILABLE`). Nothing is held.
 */
export class LockError extends ZarrTxError {}

/** A lease was lost (expired or revoked) while it was held; the transaction must not commit. */
export class LeaseLostError extends ZarrTxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_LEASE_LOST", message, options);
  }
}

/**
 * A transaction was used wrongly (access outside its footprint, or after it finished), conflicted too
 * often, or (`ERR_APPLY_PENDING`) committed but could not apply its journal entry: it is durable and
 * the next transaction on its chunks (or `recover`) applies it, so it must not be retried.
 */
export class TransactionError extends ZarrTxError {}

/** A conditional write lost the race: the object changed since it was read. Nothing was written. */
export class ConflictError extends ZarrTxError {
  readonly key: string;
  constructor(key: string, message?: string) {
    super(
      "ERR_CONFLICT",
      message ?? `${key} changed since it was read; the write was refused and nothing was written`,
    );
    this.key = key;
  }
}
