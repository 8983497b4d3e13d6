/**
 * Selections and their projection onto the chunk grid. Pure code, no I/O: a selection and an array's
 * shape and chunk shape determine exactly which stored objects a read or write touches, and which part
 * of each. Semantics follow NumPy basic indexing: integers (negatives wrap, out of range is an error),
 * slices with step ≥ 1 (bounds clamp), `null` for a whole dimension; missing trailing dimensions are whole.
 */
import { SelectionError } from "../errors.js";

/** A slice `start:stop:step`, like Python's. `null` fields take their defaults. Compatible with zarrita's. */
export interface Slice {
  readonly start: number | null;
  readonly stop: number | null;
  readonly step: number | null;
}

/** Selects one dimension: an index (the dimension is dropped from the result), a slice, or null (all). */
export type DimSelector = number | Slice | null;

/** A selection over an array: one selector per leading dimension, or null/undefined for everything. */
export type Selection = readonly DimSelector[] | null | undefined;

/**
 * Builds a slice, like Python's `slice()`: `slice(stop)` or `slice(start, stop, step)`.
 * Validation (integer bounds, step ≥ 1) happens when the selection is used, before any lock.
 */
export function slice(start?: number | null, stop?: number | null, step?: number | null): Slice {
  if (stop === undefined && step === undefined) return { start: null, stop: start ?? null, step: null };
  return { start: start ?? null, stop: stop ?? null, step: step ?? null };
}

/** One normalized dimension: a single index, or `count` elements from `start` by `step`. */
export type NormalizedDim =
  | { readonly kind: "index"; readonly index: number }
  | { readonly kind: "range"; readonly start: number; readonly step: number; readonly count: number };

/** A validated selection against a concrete shape. */
export interface NormalizedSelection {
  readonly dims: readonly NormalizedDim[];
  /** The shape of the selected region, without the dimensions selected by an integer. */
  readonly shape: readonly number[];
}

/**
 * Validates `selection` against `shape`. Throws `SelectionError` with code `ERR_INVALID_SELECTION`
 * (malformed), `ERR_OUT_OF_BOUNDS` (an index outside the array) or `ERR_INVALID_STEP` (step ≤ 0).
 */
export function normalizeSelection(selection: Selection, shape: readonly number[]): NormalizedSelection {
  if (selection !== null && selection !== undefined && !Array.isArray(selection)) {
    throw new SelectionError(
      "ERR_INVALID_SELECTION",
      `a selection is a list with one entry per dimension (number, slice(...) or null), or null; got ${typeof selection}`,
    );
  }
  const entries = selection ?? [];
  if (entries.length > shape.length) {
    throw new SelectionError(
      "ERR_INVALID_SELECTION",
      `the selection has ${entries.length} entries but the array has ${shape.length} dimensions`,
    );
  }
  const dims: NormalizedDim[] = [];
  const outShape: number[] = [];
  shape.forEach((length, axis) => {
    const entry: unknown = entries[axis] ?? null;
    if (typeof entry === "number") {
      if (!Number.isInteger(entry)) {
        throw new SelectionError(
          "ERR_INVALID_SELECTION",
          `index ${entry} in dimension ${axis} is not an integer`,
        );
      }
      const index = entry < 0 ? entry + length : entry;
      if (index < 0 || index >= length) {
        throw new SelectionError(
          "ERR_OUT_OF_BOUNDS",
          `index ${entry} is out of bounds for dimension ${axis} of length ${length} (valid: ${-length}…${length - 1})`,
        );
      }
      dims.push({ kind: "index", index });
      return;
    }
    const range = entry === null ? { start: null, stop: null, step: null } : asSlice(entry, axis);
    const step = range.step ?? 1;
    if (step <= 0) {
      throw new SelectionError(
        "ERR_INVALID_STEP",
        `slice step ${step} in dimension ${axis} is not supported; use a step ≥ 1`,
      );
    }
    const start = clampBound(range.start, 0, length);
    const stop = clampBound(range.stop, length, length);
    const count = stop > start ? Math.ceil((stop - start) / step) : 0;
    dims.push({ kind: "range", start, step, count });
    outShape.push(count);
  });
  return { dims, shape: outShape };
}

function asSlice(entry: unknown, axis: number): Slice {
  if (typeof entry !== "object" || entry === null || !("start" in entry) || !("stop" in entry)) {
    throw new SelectionError(
      "ERR_INVALID_SELECTION",
      `dimension ${axis}: expected a number, slice(...) or null, got ${JSON.stringify(entry)}`,
    );
  }
  const s = entry as Slice;
  for (const [name, v] of [
    ["start", s.start],
    ["stop", s.stop],
    ["step", s.step],
  ] as const) {
    if (v !== null && v !== undefined && !Number.isInteger(v)) {
      throw new SelectionError(
        "ERR_INVALID_SELECTION",
        `dimension ${axis}: slice ${name} ${v} is not an integer`,
      );
    }
  }
  return { start: s.start ?? null, stop: s.stop ?? null, step: s.step ?? null };
}

function clampBound(bound: number | null, fallback: number, length: number): number {
  if (bound === null) return fallback;
  const b = bound < 0 ? bound + length : bound;
  return Math.min(Math.max(b, 0), length);
}

/**
 * The part of one dimension of a selection that falls in one chunk: `count` elements from `chunkStart`
 * by `step` inside the chunk, which are elements `outStart…` of the selection along that dimension.
 */
export interface DimProjection {
  readonly chunk: number;
  readonly chunkStart: number;
  readonly step: number;
  readonly outStart: number;
  readonly count: number;
}

/** The chunks one normalized dimension touches, in increasing order; chunks with no selected element are skipped. */
export function projectDim(dim: NormalizedDim, chunkSize: number): DimProjection[] {
  if (dim.kind === "index") {
    const chunk = Math.floor(dim.index / chunkSize);
    return [{ chunk, chunkStart: dim.index - chunk * chunkSize, step: 1, outStart: 0, count: 1 }];
  }
  const out: DimProjection[] = [];
  let k = 0;
  while (k < dim.count) {
    const index = dim.start + k * dim.step;
    const chunk = Math.floor(index / chunkSize);
    const chunkEnd = (chunk + 1) * chunkSize;
    const kEnd = Math.min(dim.count, Math.ceil((chunkEnd - dim.start) / dim.step));
    out.push({ chunk, chunkStart: index - chunk * chunkSize, step: dim.step, outStart: k, count: kEnd - k });
    k = kEnd;
  }
  return out;
}

/** One touched chunk: its grid coordinates, row-major linear index, and per-dimension projections. */
export interface ChunkProjection {
  readonly coords: readonly number[];
  readonly linearIndex: number;
  readonly dims: readonly DimProjection[];
  /** True when the selection covers every in-bounds element of the chunk (no read needed to overwrite it). */
  readonly full: boolean;
}

/** The number of chunks along each dimension. */
export function gridShape(shape: readonly number[], chunkShape: readonly number[]): number[] {
  return shape.map((n, i) => Math.ceil(n / (chunkShape[i] ?? 1)));
}

/**
 * Every chunk a selection touches, in row-major (= linear index) order, with what it touches of each.
 * Exact: a chunk is listed if and only if it contains at least one selected element.
 */
export function projectSelection(
  selection: NormalizedSelection,
  shape: readonly number[],
  chunkShape: readonly number[],
): ChunkProjection[] {
  const grid = gridShape(shape, chunkShape);
  const perDim = selection.dims.map((dim, axis) => projectDim(dim, chunkShape[axis]!));
  if (perDim.some((p) => p.length === 0)) return [];
  const result: ChunkProjection[] = [];
  const pick = new Array<number>(perDim.length).fill(0);
  for (;;) {
    const dims = pick.map((p, axis) => perDim[axis]![p]!);
    const coords = dims.map((d) => d.chunk);
    let linearIndex = 0;
    let full = true;
    dims.forEach((d, axis) => {
      linearIndex = linearIndex * grid[axis]! + d.chunk;
      const size = chunkShape[axis]!;
      const extent = Math.min(size, shape[axis]! - d.chunk * size);
      if (d.count !== extent) full = false;
    });
    result.push({ coords, linearIndex, dims, full });
    // Odometer over the per-dimension projection lists, last dimension fastest (row-major).
    let axis = perDim.length - 1;
    while (axis >= 0) {
      pick[axis]!++;
      if (pick[axis]! < perDim[axis]!.length) break;
      pick[axis] = 0;
      axis--;
    }
    if (axis < 0) return result;
  }
}
