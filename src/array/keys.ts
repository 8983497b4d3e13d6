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
  const storeKey = storeKeyBuilder(meta, path);
  forEachTouchedChunk(sel, meta.shape, meta.chunkShape, (linearIndex, coords) => {
    storeKeys.push(storeKey(coords));
    lockKeys.push(lockKey(scope, linearIndex));
  });
  return { storeKeys, lockKeys };
}

/**
 * A function from chunk coordinates to the chunk's store key, equal to
 * `joinKey(path, chunkKey(meta, coords))`, for coordinates visited in row-major order: the part of the
 * key that names all but the last coordinate is built once per row, not once per chunk (a tenth of the
 * cost of joining every key afresh, for 10⁶ keys).
 */
export function storeKeyBuilder(
  meta: Pick<ArrayMetadata, "chunkKeyEncoding">,
  path: AbsolutePath,
): (coords: readonly number[]) => AbsolutePath {
  const { name, separator } = meta.chunkKeyEncoding;
  const head = joinKey(path, name === "default" ? `c${separator}` : "");
  let outer: number[] = [];
  let outerKey = head;
  return (coords) => {
    const rank = coords.length;
    if (rank === 0) return joinKey(path, chunkKey(meta, coords));
    let same = outer.length === rank - 1;
    for (let axis = 0; same && axis < rank - 1; axis++) same = outer[axis] === coords[axis];
    if (!same) {
      outer = coords.slice(0, rank - 1);
      outerKey = head;
      for (const c of outer) outerKey += `${c}${separator}`;
    }
    return (outerKey + coords[rank - 1]!) as AbsolutePath;
  };
}
