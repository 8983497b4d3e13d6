/**
 * zarr-tx: transactional writes for plain Zarr arrays (v3 and v2).
 *
 * ```ts
 * import { FileSystemStore, create, set, get, slice, transaction } from "zarr-tx";
 * const store = new FileSystemStore("data.zarr");
 * const arr = await create(store, { shape: [100, 100], chunkShape: [10, 10], dtype: "int32" });
 * await set(arr, [slice(5, 25), null], 7);                 // atomic across the 3 chunk rows it touches
 * const { data, shape } = await get(arr, [slice(0, 10)]);
 * await transaction([{ array: arr, selection: [0], mode: "write" }], async (tx) => {
 *   const row = await tx.get(arr, [0]);                     // read-modify-write under one lock set
 *   await tx.set(arr, [0], { data: row.data.map((v) => v + 1), shape: row.shape });
 * });
 * ```
 * @module
 */
export {
  type ArrayState,
  type Chunk,
  type CreateOptions,
  create,
  defaultSynchronizer,
  type OpenOptions,
  open,
  ZarrTxArray,
} from "./array/array.js";
export { DATA_TYPES, type DataType, type Scalar, type UserTypedArray } from "./array/dtype.js";
export { JOURNAL_PREFIX, type JournalEntry, listEntries as listJournalEntries } from "./array/journal.js";
export { touchedKeys } from "./array/keys.js";
export type { ArrayMetadata, CodecMetadata, V2CodecConfig } from "./array/metadata.js";
export {
  onTransaction,
  type TransactionListener,
  type TransactionMetrics,
  type TransactionOutcome,
} from "./array/metrics.js";
export { type RecoverOptions, type RecoveryReport, recover } from "./array/recovery.js";
export {
  type CoordinateSelection,
  coordinates,
  type DimSelector,
  gridShape,
  normalizeSelection,
  projectSelection,
  type Selection,
  type Slice,
  slice,
} from "./array/selection.js";
export {
  type FootprintEntry,
  get,
  type NdArray,
  set,
  type Transaction,
  type TransactionOptions,
  transaction,
  type WriteValue,
} from "./array/transaction.js";
export {
  type Damage,
  type VerifiedArray,
  type VerifyOptions,
  type VerifyProgress,
  type VerifyReport,
  verify,
} from "./array/verify.js";
export { registerCodecs } from "./codecs/index.js";
export * from "./errors.js";
export { FileSystemStore, type FileSystemStoreOptions } from "./store/filesystem.js";
export { MemoryStore, type MemoryStoreOptions } from "./store/memory.js";
export type * from "./store/types.js";
export {
  FileSynchronizer,
  type FileSynchronizerOptions,
  type LockGranularity,
} from "./sync/file.js";
export { InProcessSynchronizer } from "./sync/in-process.js";
export { lockKey, lockScope, META_SLOT, parseLockKey } from "./sync/keys.js";
export type * from "./sync/types.js";
