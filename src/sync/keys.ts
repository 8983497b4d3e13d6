/**
 * Lock key format shared by every synchronizer and the array layer.
 *
 * A key is `<scope>#<slot>`. The scope names one array of one store (`<store id>:<array path>`), so two
 * arrays or two stores never collide in one lock service. The slot is `meta` for the array's metadata,
 * or the linear index of a stored object (chunk or shard) in the grid, zero-padded to 16 digits so that
 * string order equals numeric order and neighbouring chunks sort next to each other.
 */

/** The slot of an array's metadata object. */
export const META_SLOT = "meta";

const SLOT_DIGITS = 16;

/** Builds the lock key of a slot (`meta` or a linear object index) within a scope. */
export function lockKey(scope: string, slot: number | typeof META_SLOT): string {
  if (slot === META_SLOT) return `${scope}#${META_SLOT}`;
  if (!Number.isSafeInteger(slot) || slot < 0)
    throw new RangeError(`lock slot must be a non-negative integer, got ${slot}`);
  return `${scope}#${String(slot).padStart(SLOT_DIGITS, "0")}`;
}

/** Splits a lock key into scope and slot; the inverse of `lockKey`. Returns undefined for foreign keys. */
export function parseLockKey(key: string): { scope: string; slot: number | typeof META_SLOT } | undefined {
  const at = key.lastIndexOf("#");
  if (at < 0) return undefined;
  const scope = key.slice(0, at);
  const slotText = key.slice(at + 1);
  if (slotText === META_SLOT) return { scope, slot: META_SLOT };
  if (!/^\d+$/.test(slotText)) return undefined;
  return { scope, slot: Number(slotText) };
}

/** The scope of one array in one store. */
export function lockScope(storeId: string, arrayPath: string): string {
  return `${storeId}:${arrayPath}`;
}

/** Sorted, deduplicated keys: the one total order every synchronizer acquires in. */
export function sortedUnique(keys: Iterable<string>): string[] {
  return [...new Set(keys)].sort();
}
