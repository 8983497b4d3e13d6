/**
 * Selection → storage keys: the pure mapping that decides what a read or write locks and rewrites.
 */

import type { AbsolutePath } from "../store/types.js";
import { lockKey } from "../sync/keys.js";
import { type ArrayMetadata, chunkKey, joinKey } from "./metadata.js";
import { forEachTouchedChunk, normalizeSelection, type Selection } from "./selection.js";

/** The stored objects a selection touches, with their lock keys. */
export interface TouchedKeys {
  /** Store keys of the touched chunks, in row-major order. */
  readonly storeKeys: AbsolutePath[];
  /** Lock keys of the touched chunks (same order). */
  readonly lockKeys: string[];
}

/**
 * Every stored object (chunk) that `selection` touches in an array with metadata `meta` at `path`,
 * whose lock scope is `scope`. Pure: no I/O. Throws `SelectionError` for a bad selection.
 */
export function touchedKeys(
  meta: Pick<ArrayMetadata, "shape" | "chunkShape" | "chunkKeyEncoding">,
  path: AbsolutePath,
  scope: string,
  selection: Selection,
): TouchedKeys {
  const sel = normalizeSelection(selection, meta.shape);
  const storeKeys: AbsolutePath[] = [];
  const lockKeys: string[] = [];
  forEachTouchedChunk(sel, meta.shape, meta.chunkShape, (linearIndex, coords) => {
    storeKeys.push(joinKey(path, chunkKey(meta, coords)));
    lockKeys.push(lockKey(scope, linearIndex));
  });
  return { storeKeys, lockKeys };
}
