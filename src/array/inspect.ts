/**
 * Looking around a store without opening transactions, on any backend: which arrays and groups it
 * holds (by their metadata documents), which stored objects belong to each array, and which keys are
 * zarr-tx's reserved files (lock files, journal entries). Pure over a key listing, except that v3
 * `zarr.json` documents are read to tell arrays from groups. Used by `verify()` and by the CLI's
 * `info`, `verify` and `recover`.
 */
import type { AbsolutePath, Store } from "../store/types.js";
import { JOURNAL_PREFIX } from "./journal.js";
import type { ArrayMetadata } from "./metadata.js";

/** Path segment of zarr-tx's reserved files (`.zarr-tx/locks`, `.zarr-tx/journal/…`). Zarr readers ignore it. */
export const RESERVED_SEGMENT = ".zarr-tx";

/** Metadata documents a Zarr node may have (v3 and v2, consolidated metadata included). */
const METADATA_NAMES: ReadonlySet<string> = new Set([
  "zarr.json",
  ".zarray",
  ".zattrs",
  ".zgroup",
  ".zmetadata",
]);

/** A node found by its metadata document. */
export interface NodeEntry {
  readonly path: AbsolutePath;
  readonly kind: "array" | "group";
  readonly zarrFormat: 2 | 3;
  /** The metadata document's key. */
  readonly metadataKey: AbsolutePath;
}

/** A metadata document that cannot be parsed as JSON. */
export interface BrokenMetadata {
  readonly key: AbsolutePath;
  readonly error: string;
}

/** True for keys of zarr-tx's reserved files (anywhere in the store). */
export function isReservedKey(key: string): boolean {
  return key.split("/").includes(RESERVED_SEGMENT);
}

/** The node path of a metadata key: "/a/b/zarr.json" → "/a/b"; "/zarr.json" → "/". */
function nodePathOf(key: string, name: string): AbsolutePath {
  const path = key.slice(0, key.length - name.length - 1);
  return (path === "" ? "/" : path) as AbsolutePath;
}

/**
 * Every array and group of the store, found by their metadata keys among `keys` (all of the store's
 * keys). A v3 `zarr.json` is read to tell arrays from groups; one that is not JSON is reported in
 * `broken`. Reserved keys are ignored.
 */
export async function findNodes(
  store: Store,
  keys: readonly AbsolutePath[],
): Promise<{ nodes: NodeEntry[]; broken: BrokenMetadata[] }> {
  const nodes: NodeEntry[] = [];
  const broken: BrokenMetadata[] = [];
  for (const key of keys) {
    if (isReservedKey(key)) continue;
    const name = key.slice(key.lastIndexOf("/") + 1);
    if (name === ".zarray")
      nodes.push({ path: nodePathOf(key, name), kind: "array", zarrFormat: 2, metadataKey: key });
    else if (name === ".zgroup")
      nodes.push({ path: nodePathOf(key, name), kind: "group", zarrFormat: 2, metadataKey: key });
    else if (name === "zarr.json") {
      const bytes = await store.get(key);
      if (bytes === undefined) continue; // deleted since the listing: no node any more
      let doc: unknown;
      try {
        doc = JSON.parse(new TextDecoder().decode(bytes));
      } catch (error) {
        broken.push({ key, error: `not valid JSON (${(error as Error).message})` });
        continue;
      }
      const kind = (doc as { node_type?: unknown } | null)?.node_type === "group" ? "group" : "array";
      nodes.push({ path: nodePathOf(key, name), kind, zarrFormat: 3, metadataKey: key });
    }
  }
  nodes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { nodes, broken };
}

/** The stored objects of one array, sorted out. */
export interface ArrayObjects {
  /** Chunk (or shard) keys with their grid coordinates. */
  readonly chunks: { readonly key: AbsolutePath; readonly coords: readonly number[] }[];
  /** Keys under the array that are neither metadata nor chunks of its grid (e.g. left over after a shrink). */
  readonly unexpected: AbsolutePath[];
  /** zarr-tx's reserved files under the array (lock file). */
  readonly reserved: AbsolutePath[];
}

/** Number of chunks along each dimension. */
export function chunkGrid(meta: Pick<ArrayMetadata, "shape" | "chunkShape">): number[] {
  return meta.shape.map((n, axis) => Math.ceil(n / meta.chunkShape[axis]!));
}

/**
 * Sorts the keys under an array's path into chunks of its grid, reserved files and the rest. Keys of
 * other nodes nested below the array (`nodePaths`) are skipped.
 */
export function arrayObjects(
  arrayPath: AbsolutePath,
  meta: Pick<ArrayMetadata, "shape" | "chunkShape" | "chunkKeyEncoding">,
  keys: readonly AbsolutePath[],
  nodePaths: readonly string[] = [],
): ArrayObjects {
  const prefix = arrayPath === "/" ? "/" : `${arrayPath}/`;
  const nested = nodePaths.filter((p) => p !== arrayPath && p.startsWith(prefix)).map((p) => `${p}/`);
  const grid = chunkGrid(meta);
  const result: ArrayObjects = { chunks: [], unexpected: [], reserved: [] };
  for (const key of keys) {
    if (!key.startsWith(prefix) || nested.some((n) => key.startsWith(n))) continue;
    const relative = key.slice(prefix.length);
    if (relative.split("/").includes(RESERVED_SEGMENT)) {
      result.reserved.push(key);
      continue;
    }
    if (METADATA_NAMES.has(relative)) continue;
    const coords = parseChunkKey(relative, meta, grid.length);
    if (coords === undefined || coords.some((c, axis) => c >= grid[axis]!)) result.unexpected.push(key);
    else result.chunks.push({ key, coords });
  }
  return result;
}

/** The grid coordinates of a relative chunk key ("c/0/1", "0.1"), or undefined when it is not one. */
export function parseChunkKey(
  relative: string,
  meta: Pick<ArrayMetadata, "chunkKeyEncoding">,
  ndim: number,
): number[] | undefined {
  const { name, separator } = meta.chunkKeyEncoding;
  const parts = relative.split(separator);
  if (name === "default") {
    if (parts.shift() !== "c") return undefined;
    if (ndim === 0) return parts.length === 0 ? [] : undefined;
  } else if (ndim === 0) {
    return relative === "0" ? [] : undefined;
  }
  if (parts.length !== ndim || !parts.every((p) => /^\d+$/.test(p))) return undefined;
  return parts.map(Number);
}

/** Keys of pending journal entries (under the store's `/.zarr-tx/journal/`) among `keys`. */
export function journalKeys(keys: readonly AbsolutePath[]): AbsolutePath[] {
  return keys.filter((key) => key.startsWith(JOURNAL_PREFIX));
}
