/**
 * Selections and their projection onto the chunk grid. Pure code, no I/O: a selection and an array's
 * shape and chunk shape determine exactly which stored objects a read or write touches, and which part
 * of each. Semantics follow NumPy and zarr-python:
 * - basic: integers (negatives wrap, out of range is an error), slices with step ≥ 1 (bounds clamp), `null`
 *   for a whole dimension; missing trailing dimensions are whole;
 * - orthogonal (zarr-python's `oindex`): a dimension may also take a list of integers (any order,
 *   repeats allowed) or a boolean mask as long as the dimension; each such dimension is selected
 *   independently of the others;
 * - coordinate (zarr-python's `vindex`/`set_coordinate_selection`): `coordinates(rows, cols, …)` selects
 *   the points (rows[i], cols[i], …); the result is 1-D, one element per point. When a write names a
 *   cell twice, the last value wins.
 */
import { SelectionError } from "../errors.js";
import { cStrides } from "./ndarray.js";

/** A slice `start:stop:step`, like Python's. `null` fields take their defaults. Compatible with zarrita's. */
export interface Slice {
  readonly start: number | null;
  readonly stop: number | null;
  readonly step: number | null;
}

/**
 * Selects one dimension: an index (the dimension is dropped from the result), a slice, null (all), a
 * list of indices, or a boolean mask as long as the dimension (orthogonal selection).
 */
export type DimSelector = number | Slice | null | readonly number[] | readonly boolean[];

/** A coordinate (point) selection: `points[axis][i]` is the index of point i along `axis`. */
export interface CoordinateSelection {
  readonly kind: "coordinate";
  readonly points: readonly (readonly number[])[];
}

/**
 * A selection over an array: one selector per leading dimension, a coordinate selection, or
 * null/undefined for everything.
 */
export type Selection = readonly DimSelector[] | CoordinateSelection | null | undefined;

/**
 * Selects points, like zarr-python's coordinate selection: `coordinates([0, 3], [1, 1])` is the cells
 * (0, 1) and (3, 1). One integer list per dimension, all of the same length. Validated on use.
 */
export function coordinates(...perAxis: readonly (readonly number[])[]): CoordinateSelection {
  return { kind: "coordinate", points: perAxis };
}

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
  | { readonly kind: "range"; readonly start: number; readonly step: number; readonly count: number }
  | { readonly kind: "list"; readonly indices: readonly number[] };

/** A validated selection against a concrete shape. */
export interface NormalizedSelection {
  /** One entry per array dimension; empty for a coordinate selection. */
  readonly dims: readonly NormalizedDim[];
  /** The shape of the selected region (integer-selected dimensions dropped; [points] for coordinates). */
  readonly shape: readonly number[];
  /** For a coordinate selection: `points[axis][i]`, normalized (no negatives). */
  readonly points?: readonly (readonly number[])[];
}

/**
 * Validates `selection` against `shape`. Throws `SelectionError` with code `ERR_INVALID_SELECTION`
 * (malformed), `ERR_OUT_OF_BOUNDS` (an index outside the array) or `ERR_INVALID_STEP` (step ≤ 0).
 */
export function normalizeSelection(selection: Selection, shape: readonly number[]): NormalizedSelection {
  if (isCoordinateSelection(selection)) return normalizeCoordinates(selection, shape);
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
    if (Array.isArray(entry) || isIntegerTypedArray(entry)) {
      const indices = normalizeList(entry as ArrayLike<unknown>, length, axis);
      dims.push({ kind: "list", indices });
      outShape.push(indices.length);
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

function isCoordinateSelection(selection: unknown): selection is CoordinateSelection {
  return (
    typeof selection === "object" &&
    selection !== null &&
    (selection as { kind?: unknown }).kind === "coordinate"
  );
}

function isIntegerTypedArray(value: unknown): value is ArrayLike<number> {
  return (
    value instanceof Int8Array ||
    value instanceof Int16Array ||
    value instanceof Int32Array ||
    value instanceof Uint8Array ||
    value instanceof Uint16Array ||
    value instanceof Uint32Array
  );
}

/** An index list or boolean mask along one dimension, as in-bounds indices in the given order. */
function normalizeList(entry: ArrayLike<unknown>, length: number, axis: number): number[] {
  if (entry.length > 0 && typeof entry[0] === "boolean") {
    if (entry.length !== length) {
      throw new SelectionError(
        "ERR_INVALID_SELECTION",
        `the boolean mask for dimension ${axis} has ${entry.length} entries but the dimension has ${length}`,
      );
    }
    const indices: number[] = [];
    for (let i = 0; i < entry.length; i++) {
      if (typeof entry[i] !== "boolean") {
        throw new SelectionError("ERR_INVALID_SELECTION", `dimension ${axis}: a mask may hold only booleans`);
      }
      if (entry[i]) indices.push(i);
    }
    return indices;
  }
  const indices = new Array<number>(entry.length);
  for (let i = 0; i < entry.length; i++) indices[i] = normalizeIndex(entry[i], length, axis);
  return indices;
}

function normalizeIndex(value: unknown, length: number, axis: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new SelectionError(
      "ERR_INVALID_SELECTION",
      `dimension ${axis}: index ${JSON.stringify(value)} is not an integer`,
    );
  }
  const index = value < 0 ? value + length : value;
  if (index < 0 || index >= length) {
    throw new SelectionError(
      "ERR_OUT_OF_BOUNDS",
      `index ${value} is out of bounds for dimension ${axis} of length ${length} (valid: ${-length}…${length - 1})`,
    );
  }
  return index;
}

function normalizeCoordinates(selection: CoordinateSelection, shape: readonly number[]): NormalizedSelection {
  const perAxis = selection.points;
  if (!Array.isArray(perAxis) || perAxis.length !== shape.length) {
    throw new SelectionError(
      "ERR_INVALID_SELECTION",
      `a coordinate selection needs one index list per dimension (${shape.length}), got ${Array.isArray(perAxis) ? perAxis.length : typeof perAxis}`,
    );
  }
  const count = perAxis[0]?.length ?? 1;
  const points = perAxis.map((list, axis) => {
    if (!(Array.isArray(list) || isIntegerTypedArray(list)) || list.length !== count) {
      throw new SelectionError(
        "ERR_INVALID_SELECTION",
        `coordinate lists must all have the same length (${count}); dimension ${axis} differs`,
      );
    }
    return Array.from(list as ArrayLike<unknown>, (v) => normalizeIndex(v, shape[axis]!, axis));
  });
  return { dims: [], shape: [shape.length === 0 ? 1 : count], points };
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
  /** For a list dimension: the in-chunk index of each selected element, and its output position. */
  readonly chunkIndices?: readonly number[];
  readonly outIndices?: readonly number[];
}

/** The chunks one normalized dimension touches, in increasing order; chunks with no selected element are skipped. */
export function projectDim(dim: NormalizedDim, chunkSize: number): DimProjection[] {
  if (dim.kind === "index") {
    const chunk = Math.floor(dim.index / chunkSize);
    return [{ chunk, chunkStart: dim.index - chunk * chunkSize, step: 1, outStart: 0, count: 1 }];
  }
  if (dim.kind === "list") {
    // Group by chunk in increasing chunk order; within a chunk keep selection order (last write wins).
    const byChunk = new Map<number, { chunkIndices: number[]; outIndices: number[] }>();
    dim.indices.forEach((index, out) => {
      const chunk = Math.floor(index / chunkSize);
      let group = byChunk.get(chunk);
      if (!group) {
        group = { chunkIndices: [], outIndices: [] };
        byChunk.set(chunk, group);
      }
      group.chunkIndices.push(index - chunk * chunkSize);
      group.outIndices.push(out);
    });
    return [...byChunk.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([chunk, g]) => ({
        chunk,
        chunkStart: 0,
        step: 1,
        outStart: 0,
        count: g.chunkIndices.length,
        ...g,
      }));
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
  /** Per dimension, what the selection takes of this chunk (empty for a coordinate selection). */
  readonly dims: readonly DimProjection[];
  /** For a coordinate selection: C-order element offsets in the chunk, and each point's output index. */
  readonly points?: { readonly chunkOffsets: readonly number[]; readonly outIndices: readonly number[] };
  /** Number of selected elements in this chunk (repeats counted). */
  readonly elements: number;
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
  const extentOf = (coords: readonly number[]) =>
    coords.reduce((n, c, axis) => n * Math.min(chunkShape[axis]!, shape[axis]! - c * chunkShape[axis]!), 1);
  if (selection.points) return projectPoints(selection.points, shape, chunkShape, grid, extentOf);
  const perDim = selection.dims.map((dim, axis) => projectDim(dim, chunkShape[axis]!));
  if (perDim.some((p) => p.length === 0)) return [];
  const result: ChunkProjection[] = [];
  const pick = new Array<number>(perDim.length).fill(0);
  for (;;) {
    const dims = pick.map((p, axis) => perDim[axis]![p]!);
    const coords = dims.map((d) => d.chunk);
    let linearIndex = 0;
    let full = true;
    let elements = 1;
    dims.forEach((d, axis) => {
      linearIndex = linearIndex * grid[axis]! + d.chunk;
      const size = chunkShape[axis]!;
      const extent = Math.min(size, shape[axis]! - d.chunk * size);
      const distinct = d.chunkIndices ? new Set(d.chunkIndices).size : d.count;
      if (distinct !== extent) full = false;
      elements *= d.count;
    });
    result.push({ coords, linearIndex, dims, elements, full });
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

function projectPoints(
  points: readonly (readonly number[])[],
  shape: readonly number[],
  chunkShape: readonly number[],
  grid: readonly number[],
  extentOf: (coords: readonly number[]) => number,
): ChunkProjection[] {
  const count = shape.length === 0 ? 1 : (points[0]?.length ?? 0);
  const chunkStrides = cStrides(chunkShape);
  const byChunk = new Map<number, { coords: number[]; chunkOffsets: number[]; outIndices: number[] }>();
  for (let i = 0; i < count; i++) {
    let linearIndex = 0;
    let offset = 0;
    const coords: number[] = [];
    for (let axis = 0; axis < shape.length; axis++) {
      const index = points[axis]![i]!;
      const chunk = Math.floor(index / chunkShape[axis]!);
      coords.push(chunk);
      linearIndex = linearIndex * grid[axis]! + chunk;
      offset += (index - chunk * chunkShape[axis]!) * chunkStrides[axis]!;
    }
    let group = byChunk.get(linearIndex);
    if (!group) {
      group = { coords, chunkOffsets: [], outIndices: [] };
      byChunk.set(linearIndex, group);
    }
    group.chunkOffsets.push(offset);
    group.outIndices.push(i);
  }
  return [...byChunk.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([linearIndex, g]) => ({
      coords: g.coords,
      linearIndex,
      dims: [],
      points: { chunkOffsets: g.chunkOffsets, outIndices: g.outIndices },
      elements: g.chunkOffsets.length,
      full: new Set(g.chunkOffsets).size === extentOf(g.coords),
    }));
}

/** The chunks one dimension touches, as sorted distinct chunk indices (no per-element work for ranges). */
function touchedChunksOfDim(dim: NormalizedDim, chunkSize: number): number[] {
  if (dim.kind === "index") return [Math.floor(dim.index / chunkSize)];
  if (dim.kind === "list")
    return [...new Set(dim.indices.map((i) => Math.floor(i / chunkSize)))].sort((a, b) => a - b);
  const chunks: number[] = [];
  let k = 0;
  while (k < dim.count) {
    const chunk = Math.floor((dim.start + k * dim.step) / chunkSize);
    chunks.push(chunk);
    k = Math.ceil(((chunk + 1) * chunkSize - dim.start) / dim.step);
  }
  return chunks;
}

/**
 * Calls `visit` for every chunk a selection touches, in row-major order, without building projections:
 * the cheap path for planning locks over very many chunks. `coords` is reused between calls (copy it to
 * keep it). Visits exactly the chunks {@link projectSelection} lists.
 */
export function forEachTouchedChunk(
  selection: NormalizedSelection,
  shape: readonly number[],
  chunkShape: readonly number[],
  visit: (linearIndex: number, coords: readonly number[]) => void,
): void {
  if (selection.points) {
    for (const p of projectSelection(selection, shape, chunkShape)) visit(p.linearIndex, p.coords);
    return;
  }
  const grid = gridShape(shape, chunkShape);
  const perDim = selection.dims.map((dim, axis) => touchedChunksOfDim(dim, chunkShape[axis]!));
  if (perDim.some((list) => list.length === 0)) return;
  const rank = perDim.length;
  const pick = new Array<number>(rank).fill(0);
  const coords = perDim.map((list) => list[0]!);
  // Row-major strides of the chunk grid, so the linear index is updated incrementally.
  const gridStrides = cStrides(grid);
  let linear = coords.reduce((acc, c, axis) => acc + c * gridStrides[axis]!, 0);
  for (;;) {
    visit(linear, coords);
    let axis = rank - 1;
    while (axis >= 0) {
      const list = perDim[axis]!;
      linear -= coords[axis]! * gridStrides[axis]!;
      pick[axis]!++;
      if (pick[axis]! < list.length) {
        coords[axis] = list[pick[axis]!]!;
        linear += coords[axis]! * gridStrides[axis]!;
        break;
      }
      pick[axis] = 0;
      coords[axis] = list[0]!;
      linear += coords[axis]! * gridStrides[axis]!;
      axis--;
    }
    if (axis < 0) return;
  }
}
