/**
 * The CLI's look around a store: the store-generic parts (nodes, an array's objects, reserved and
 * journal keys) live in src/array/inspect.ts and are re-exported here; what is left is CLI-only:
 * object sizes for `info` (a `stat` on files) and the temp files of interrupted filesystem writes.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { FileSystemStore } from "../store/filesystem.js";
import type { AbsolutePath, Store } from "../store/types.js";

export {
  type ArrayObjects,
  arrayObjects,
  type BrokenMetadata,
  chunkGrid,
  findNodes,
  isReservedKey,
  journalKeys,
  type NodeEntry,
  parseChunkKey,
  RESERVED_SEGMENT,
} from "../array/inspect.js";
export { findTempFiles, processAlive, type TempFile } from "../store/temp-files.js";

/**
 * The size of a stored object in bytes: a `stat` on a filesystem store (no read), else the length of
 * its bytes. 0 when it vanished meanwhile.
 */
export async function objectSize(store: Store, key: AbsolutePath): Promise<number> {
  if (store instanceof FileSystemStore) {
    try {
      return (await stat(join(store.root, key.slice(1)))).size;
    } catch {
      return 0;
    }
  }
  return (await store.get(key))?.length ?? 0;
}
