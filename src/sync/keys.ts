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

/** `PADDING[n]`: the zeros that pad an n-digit slot to SLOT_DIGITS. */
const PADDING = Array.from({ length: SLOT_DIGITS + 1 }, (_, n) => "0".repeat(SLOT_DIGITS - n));

/**
 * For recent scopes, `<scope>#<padding for n digits>` for every n, each a flat string: a chunk key is
 * then one concatenation (two new objects: the digits and the pair), not three. For 10⁶ keys that
 * halves the time, most of which is garbage collection of intermediate strings.
 */
const headCache = new Map<string, string[]>();
const HEAD_CACHE_SIZE = 64;
let lastScope: string | undefined;
let lastHeads: string[] = [];

function headsOf(scope: string): string[] {
  if (scope === lastScope) return lastHeads;
  let heads = headCache.get(scope);
  if (heads === undefined) {
    if (headCache.size >= HEAD_CACHE_SIZE) headCache.clear();
    // Flatten each head once (a rope would be walked again for every key built on it).
    heads = PADDING.map((padding) => flat(`${scope}#${padding}`));
    headCache.set(scope, heads);
  }
  lastScope = scope;
  lastHeads = heads;
  return heads;
}

/** A flat copy of a string (V8 keeps concatenations as ropes until something reads them). */
function flat(text: string): string {
  // Reading a character forces V8 to flatten the rope in place.
  text.charCodeAt(0);
  return text;
}

/** Builds the lock key of a slot (`meta` or a linear object index) within a scope. */
export function lockKey(scope: string, slot: number | typeof META_SLOT): string {
  if (slot === META_SLOT) return `${scope}#${META_SLOT}`;
  if (!Number.isSafeInteger(slot) || slot < 0)
    throw new RangeError(`lock slot must be a non-negative integer, got ${slot}`);
  const digits = `${slot}`;
  return headsOf(scope)[digits.length]! + digits;
}

/** Splits a lock key into scope and slot; the inverse of `lockKey`. Returns undefined for foreign keys. */
export function parseLockKey(key: string): { scope: string; slot: number | typeof META_SLOT } | undefined {
  const at = key.lastIndexOf("#");
  if (at < 0) return undefined;
  const slot = parseSlot(key, at + 1);
  if (slot === undefined) return undefined;
  return { scope: key.slice(0, at), slot };
}

/**
 * The slot of a lock key whose slot text starts at `from` (just after the last `#`): `meta`, a
 * non-negative integer, or undefined when the text is neither. No regular expression and no substring:
 * the file synchronizer parses every key of a lease with it.
 */
export function parseSlot(key: string, from: number): number | typeof META_SLOT | undefined {
  const end = key.length;
  if (from >= end) return undefined;
  let value = 0;
  for (let i = from; i < end; i++) {
    const digit = key.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9)
      return end - from === META_SLOT.length && key.endsWith(META_SLOT) ? META_SLOT : undefined;
    value = value * 10 + digit;
  }
  return value;
}

/** The scope of one array in one store. */
export function lockScope(storeId: string, arrayPath: string): string {
  return `${storeId}:${arrayPath}`;
}

/**
 * Sorted, deduplicated keys: the one total order every synchronizer acquires in. A list that is already
 * strictly ascending (what a transaction plans: chunk keys in linear order) is copied in one pass,
 * without hashing or sorting.
 */
export function sortedUnique(keys: Iterable<string>): string[] {
  if (Array.isArray(keys) && isStrictlyAscending(keys as readonly string[]))
    return (keys as string[]).slice();
  return [...new Set(keys)].sort();
}

/** True when every key is a string greater than the one before it (so sorted, without repeats). */
export function isStrictlyAscending(keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (typeof key !== "string") return false;
    if (i > 0 && !((keys[i - 1] as string) < key)) return false;
  }
  return true;
}
