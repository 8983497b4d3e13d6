/**
 * Key and range rules shared by every store backend, so that all of them accept and refuse exactly the
 * same keys and answer out-of-range reads the same way.
 */
import { InvalidArgumentError, StoreError } from "../errors.js";
import type { AbsolutePath, RangeQuery } from "./types.js";

const VALID_KEY_HINT =
  'A valid key is "/" followed by one or more "/"-separated segments, none empty, "." or "..", ' +
  'with no backslash or NUL, e.g. "/array/c/0/1" or "/group/zarr.json".';

/** Why `segment` cannot be part of a key, or undefined when it can. */
function segmentProblem(segment: string): string | undefined {
  if (segment === "") return "an empty segment (a doubled or trailing '/')";
  if (segment === ".") return 'a "." segment';
  if (segment === "..") return 'a ".." segment';
  return undefined;
}

/** Why `text` contains characters no key may hold, or undefined. */
function characterProblem(text: string): string | undefined {
  // Backslashes are path separators on Windows and NUL truncates paths in C APIs: both could make a
  // backend address a different object than the key names.
  if (text.includes("\\")) return "a backslash";
  if (text.includes("\0")) return "a NUL character";
  return undefined;
}

function invalidKey(what: string, key: unknown, problem: string): StoreError {
  return new StoreError(
    "ERR_INVALID_KEY",
    `invalid store ${what} ${JSON.stringify(key)}: it contains ${problem}. ${VALID_KEY_HINT}`,
  );
}

/**
 * Checks that `key` is a safe absolute store key: it starts with "/", and its segments are non-empty,
 * never "." or "..", and contain no backslash or NUL. This is what keeps a key from naming anything
 * outside the store (path traversal) and makes every backend agree on which keys exist.
 *
 * @throws {StoreError} code `ERR_INVALID_KEY`, with a message naming the problem and the valid form.
 */
export function assertValidKey(key: unknown): asserts key is AbsolutePath {
  if (typeof key !== "string") {
    throw new StoreError(
      "ERR_INVALID_KEY",
      `invalid store key ${String(key)}: a key must be a string. ${VALID_KEY_HINT}`,
    );
  }
  if (!key.startsWith("/")) throw invalidKey("key", key, 'no leading "/" (keys are absolute)');
  const chars = characterProblem(key);
  if (chars !== undefined) throw invalidKey("key", key, chars);
  for (const segment of key.slice(1).split("/")) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw invalidKey("key", key, problem);
  }
}

/**
 * Checks a `list` prefix. A prefix is "" (everything), or "/" followed by complete valid segments and,
 * optionally, a final partial segment: "/", "/a/", "/a/c" (matches "/a/c/0" and "/a/c0") are valid.
 * Complete segments follow the key rules, so a prefix can never walk out of the store.
 *
 * @throws {StoreError} code `ERR_INVALID_KEY` when the prefix could match no valid key or is unsafe.
 */
export function assertValidPrefix(prefix: unknown): asserts prefix is "" | AbsolutePath {
  if (typeof prefix !== "string") {
    throw new StoreError(
      "ERR_INVALID_KEY",
      `invalid store prefix ${String(prefix)}: a prefix must be a string. ${VALID_KEY_HINT}`,
    );
  }
  if (prefix === "") return;
  if (!prefix.startsWith("/")) throw invalidKey("prefix", prefix, 'no leading "/" (prefixes are absolute)');
  const chars = characterProblem(prefix);
  if (chars !== undefined) throw invalidKey("prefix", prefix, chars);
  const segments = prefix.slice(1).split("/");
  // The last piece is a partial segment: it may be empty ("/a/") or anything a segment may start with.
  segments.pop();
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw invalidKey("prefix", prefix, problem);
  }
}

/**
 * Resolves a range against an object of `size` bytes, the way S3 and HTTP servers do: the range is
 * clamped to the object, so a range past the end yields fewer bytes (possibly none), never an error.
 * Returns the half-open byte interval [start, end).
 *
 * @throws {InvalidArgumentError} when offset, length or suffixLength is negative or not an integer.
 */
export function resolveRange(range: RangeQuery, size: number): { start: number; end: number } {
  if ("suffixLength" in range) {
    const { suffixLength } = range;
    if (!Number.isSafeInteger(suffixLength) || suffixLength < 0) {
      throw new InvalidArgumentError(
        `range suffixLength must be a non-negative integer, got ${String(suffixLength)}`,
      );
    }
    return { start: Math.max(0, size - suffixLength), end: size };
  }
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidArgumentError(`range offset must be a non-negative integer, got ${String(offset)}`);
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new InvalidArgumentError(`range length must be a non-negative integer, got ${String(length)}`);
  }
  const start = Math.min(offset, size);
  return { start, end: Math.min(size, offset + length) };
}

/**
 * Checks that `value` is a Uint8Array before a store keeps it.
 *
 * @throws {InvalidArgumentError} for anything else.
 */
export function assertBytes(value: unknown, key: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      `value for ${key} must be a Uint8Array, got ${Object.prototype.toString.call(value)}`,
    );
  }
}

/**
 * A fresh, exact-size, plain Uint8Array copy of `bytes` (its own ArrayBuffer, byteOffset 0). Used instead
 * of `bytes.slice()` because a Buffer's `slice` returns a view into its pool, not a copy.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
