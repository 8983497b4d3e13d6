/**
 * `verify(store)`: decodes every stored chunk (or shard) of every array, or of the array at `path`, and
 * reports each damaged object by key, with a stable error code. Store-generic: it lists the store once,
 * finds arrays by their metadata documents (src/array/inspect.ts) and decodes through each array's own
 * codec pipeline, exactly as a transaction would read the chunk.
 *
 * It takes no locks. Every object is replaced atomically (the journal applies by rename or copy), so a
 * concurrent writer never makes an object look damaged; it may only make counts move, or make an object
 * vanish between the listing and the read (skipped, not damage).
 */

import { mapLimit } from "../concurrency.js";
import { isZarrTxError, type ZarrTxErrorCode } from "../errors.js";
import { findTempFiles } from "../store/temp-files.js";
import type { AbsolutePath, Store } from "../store/types.js";
import { normalizePath, open, type ZarrTxArray } from "./array.js";
import { toRaw, type UserTypedArray } from "./dtype.js";
import { arrayObjects, findNodes, journalKeys } from "./inspect.js";
import { JOURNAL_PREFIX, listEntries } from "./journal.js";
import { sizeOf } from "./ndarray.js";

/** Options of {@link verify}. */
export interface VerifyOptions {
  /** Only the array at this path (default: every array of the store). */
  readonly path?: string;
  /** Objects read and decoded at once (default 8). */
  readonly concurrency?: number;
  /** Stops the walk (the promise rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /** Called after each object is checked (for progress displays). */
  readonly onProgress?: (progress: VerifyProgress) => void;
}

/** Progress of a {@link verify} run. */
export interface VerifyProgress {
  /** The array being checked. */
  readonly array: AbsolutePath;
  /** Objects checked so far, over all arrays. */
  readonly done: number;
  /** Objects to check in all. */
  readonly total: number;
  /** Damaged objects found so far. */
  readonly damaged: number;
}

/** One damaged object. */
export interface Damage {
  /** The store key of the damaged object. */
  readonly key: AbsolutePath;
  /** The array (or, for metadata, the node; for the journal, the store root) it belongs to. */
  readonly array: AbsolutePath;
  /** What kind of object it is. */
  readonly kind: "metadata" | "chunk" | "journal";
  /**
   * Stable code: `ERR_CORRUPT_CHUNK` for a chunk that does not decode to a whole chunk (truncated,
   * overwritten, checksum mismatch), `ERR_STORE_IO` for a chunk that cannot be read, the error code of
   * `open` for metadata (`ERR_INVALID_METADATA`, `ERR_UNKNOWN_CODEC`…), `ERR_CORRUPT_JOURNAL` for a
   * journal record damaged from outside.
   */
  readonly code: ZarrTxErrorCode;
  /** What is wrong, in one line, naming the key. */
  readonly message: string;
}

/** Per-array counts of a {@link verify} run. */
export interface VerifiedArray {
  readonly path: AbsolutePath;
  /** Stored chunks (or shards) checked. */
  readonly chunks: number;
  /** How many of them are damaged. */
  readonly damaged: number;
}

/** What {@link verify} found. */
export interface VerifyReport {
  /** The store's id. */
  readonly store: string;
  /** Arrays whose metadata opened, with their counts. */
  readonly arrays: VerifiedArray[];
  /** Stored chunks (or shards) decoded, over all arrays. */
  readonly objects: number;
  /** Damaged objects, sorted by key. Empty when everything decodes. */
  readonly damage: Damage[];
  /** Keys under an array that are not chunks of its grid (e.g. left after a shrink): warnings, not damage. */
  readonly unexpectedKeys: AbsolutePath[];
  /**
   * Txids of pending journal entries (transactions a crash interrupted, or running now): `recover()`
   * or the next transaction on their chunks applies or discards them.
   */
  readonly pendingJournal: string[];
  /** Temp files of interrupted filesystem writes (absolute paths); `recover()` removes those of dead writers. */
  readonly tempFiles: string[];
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0] ?? text;
}

/**
 * Decodes every stored chunk of every array of `store` (or of the array at `options.path`) and reports
 * the damage by key. Damage is returned, not thrown: a truncated chunk file is a {@link Damage} with
 * code `ERR_CORRUPT_CHUNK` and its key.
 *
 * Throws `ERR_ARRAY_NOT_FOUND` (or what `open` throws) when `options.path` names no array and no broken
 * metadata document, `StoreError` when the store cannot be listed, and the signal's reason when aborted.
 */
export async function verify(store: Store, options: VerifyOptions = {}): Promise<VerifyReport> {
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 8));
  const signal = options.signal;
  const keys = await store.list("");
  const { nodes, broken } = await findNodes(store, keys);
  const nodePaths = nodes.map((n) => n.path);
  const only = options.path === undefined ? undefined : normalizePath(options.path);
  const damage: Damage[] = broken
    .filter((b) => only === undefined || b.key.startsWith(only === "/" ? "/" : `${only}/`))
    .map((b) => ({
      key: b.key,
      array: (b.key.slice(0, b.key.lastIndexOf("/")) || "/") as AbsolutePath,
      kind: "metadata" as const,
      code: "ERR_INVALID_METADATA" as const,
      message: `metadata ${b.key} is ${b.error}`,
    }));
  const targets = nodes.filter((n) => n.kind === "array" && (only === undefined || n.path === only));
  if (only !== undefined && targets.length === 0 && damage.length === 0) {
    // Let open() say precisely what is missing (ERR_ARRAY_NOT_FOUND, or a group).
    await open(store, { path: only });
  }

  // Open every array first, so that progress can show a total.
  const plans: { path: AbsolutePath; array: ZarrTxArray; chunks: { key: AbsolutePath }[] }[] = [];
  const unexpectedKeys: AbsolutePath[] = [];
  for (const node of targets) {
    try {
      const array = await open(store, { path: node.path });
      const objects = arrayObjects(node.path, array.metadata, keys, nodePaths);
      plans.push({ path: node.path, array, chunks: objects.chunks });
      unexpectedKeys.push(...objects.unexpected);
    } catch (error) {
      damage.push({
        key: node.metadataKey,
        array: node.path,
        kind: "metadata",
        code: isZarrTxError(error) ? error.code : "ERR_INVALID_METADATA",
        message: `metadata ${node.metadataKey} does not open: ${firstLine(error)}`,
      });
    }
  }

  const total = plans.reduce((n, p) => n + p.chunks.length, 0);
  let done = 0;
  const arrays: VerifiedArray[] = [];
  for (const plan of plans) {
    const { codec, meta } = plan.array.state;
    const expected = sizeOf(meta.chunkShape);
    let damaged = 0;
    const report = (key: AbsolutePath, code: ZarrTxErrorCode, message: string): void => {
      damaged++;
      damage.push({ key, array: plan.path, kind: "chunk", code, message });
    };
    await mapLimit(plan.chunks, concurrency, async ({ key }) => {
      signal?.throwIfAborted();
      let bytes: Uint8Array | undefined;
      try {
        bytes = await store.get(key);
      } catch (error) {
        report(
          key,
          isZarrTxError(error) ? error.code : "ERR_STORE_IO",
          `chunk ${key} cannot be read: ${firstLine(error)}`,
        );
      }
      if (bytes !== undefined) {
        // Same checks as a transaction's read: the pipeline must decode it, to exactly one chunk.
        try {
          const decoded = await codec.decode(bytes);
          const length = toRaw(decoded.data as unknown as UserTypedArray).length;
          if (length !== expected) throw new Error(`decoded ${length} elements, a chunk has ${expected}`);
        } catch (error) {
          report(
            key,
            "ERR_CORRUPT_CHUNK",
            `chunk ${key} is damaged: its ${bytes.length} bytes do not decode (${firstLine(error)})`,
          );
        }
      }
      // An object deleted since the listing (an all-fill shard rewritten) has nothing to check.
      done++;
      options.onProgress?.({ array: plan.path, done, total, damaged: damage.length });
    });
    arrays.push({ path: plan.path, chunks: plan.chunks.length, damaged });
  }

  const journal = journalKeys(keys);
  const pendingJournal = [...new Set(journal.map(txidOf).filter((t) => t !== undefined))].sort();
  if (journal.length > 0) {
    // Reads each record: one damaged from outside would stop every recovery, so it is damage.
    try {
      await listEntries(store);
    } catch (error) {
      if (!isZarrTxError(error, "ERR_CORRUPT_JOURNAL")) throw error;
      damage.push({
        key: JOURNAL_PREFIX as AbsolutePath,
        array: "/" as AbsolutePath,
        kind: "journal",
        code: error.code,
        message: firstLine(error),
      });
    }
  }
  const tempFiles = (await findTempFiles(store)).map((t) => t.file).sort();
  damage.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { store: store.id, arrays, objects: total, damage, unexpectedKeys, pendingJournal, tempFiles };
}

/** The txid of a journal key (`/.zarr-tx/journal/<txid>.<i>` or `<txid>.commit`). */
function txidOf(key: AbsolutePath): string | undefined {
  const name = key.slice(JOURNAL_PREFIX.length);
  const dot = name.lastIndexOf(".");
  return dot <= 0 || name.includes("/") ? undefined : name.slice(0, dot);
}
