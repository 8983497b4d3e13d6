/**
 * The two invariant workloads of `zarr-tx stress`:
 * - diagonal (zarr-python #857): writers rewrite a whole anti-diagonal (cells whose coordinates sum to
 *   d) with one value in one transaction; a reader must never see a diagonal that is not uniform;
 * - counter: read-modify-write increments of random boxes that cross chunk borders; in the end every
 *   cell must equal the number of committed increments that covered it (none lost, none doubled).
 */
import type { ZarrTxArray } from "../array/array.js";
import { slice } from "../array/selection.js";
import { get, transaction } from "../array/transaction.js";

/** Cells whose coordinates sum to `d`. */
export function diagonalCells(shape: readonly number[], d: number): number[][] {
  const cells: number[][] = [];
  const walk = (prefix: number[], axis: number, sum: number): void => {
    if (axis === shape.length - 1) {
      const last = d - sum;
      if (last >= 0 && last < shape[axis]!) cells.push([...prefix, last]);
      return;
    }
    for (let i = 0; i < shape[axis]! && sum + i <= d; i++) walk([...prefix, i], axis + 1, sum + i);
  };
  if (shape.length > 0) walk([], 0, 0);
  return cells;
}

/** How many diagonals a shape has. */
export function diagonalCount(shape: readonly number[]): number {
  return shape.reduce((acc, n) => acc + n - 1, 0) + 1;
}

/** Rewrites every cell of diagonal `d` with `value`, in one transaction (exclusive locks on all its chunks). */
export async function writeDiagonal(
  array: ZarrTxArray,
  cells: readonly number[][],
  value: number,
  timeoutMs?: number,
): Promise<void> {
  await transaction(
    cells.map((cell) => ({ array, selection: cell, mode: "write" as const })),
    async (tx) => {
      for (const cell of cells) await tx.set(array, cell, value);
    },
    timeoutMs === undefined ? {} : { timeoutMs },
  );
}

/**
 * Reads the whole array once (one snapshot under shared locks) and counts the diagonals that are not
 * uniform. `diagonals` is `diagonalCells` for every d, computed once by the caller.
 */
export async function countTornDiagonals(
  array: ZarrTxArray,
  diagonals: readonly (readonly number[][])[],
  timeoutMs?: number,
): Promise<number> {
  const { data, stride } = await get(array, null, timeoutMs === undefined ? {} : { timeoutMs });
  const values = data as Int32Array;
  const at = (cell: readonly number[]) => values[cell.reduce((acc, v, axis) => acc + v * stride[axis]!, 0)];
  let torn = 0;
  for (const cells of diagonals) {
    const first = at(cells[0]!);
    if (cells.some((cell) => at(cell) !== first)) torn++;
  }
  return torn;
}

/** A random box of 1 to 5 cells per dimension, usually crossing chunk borders. */
export function counterRegion(
  shape: readonly number[],
  random: () => number,
): { start: number[]; stop: number[] } {
  const start = shape.map((n) => Math.floor(random() * n));
  const stop = start.map((s, axis) => Math.min(shape[axis]!, s + 1 + Math.floor(random() * 5)));
  return { start, stop };
}

/** Adds 1 to every cell of a box in one read-modify-write transaction. */
export async function incrementRegion(
  array: ZarrTxArray,
  start: readonly number[],
  stop: readonly number[],
  timeoutMs?: number,
): Promise<void> {
  const selection = start.map((s, axis) => slice(s, stop[axis]!));
  await transaction(
    [{ array, selection, mode: "write" }],
    async (tx) => {
      const current = await tx.get(array, selection);
      const next = (current.data as Int32Array).map((v) => v + 1);
      await tx.set(array, selection, { data: next, shape: current.shape });
    },
    timeoutMs === undefined ? {} : { timeoutMs },
  );
}

/** Adds 1 to every cell of a box in a C-order tally of `shape`. */
export function tallyRegion(
  tally: Int32Array,
  shape: readonly number[],
  start: readonly number[],
  stop: readonly number[],
): void {
  const index = [...start];
  for (;;) {
    let linear = 0;
    for (let axis = 0; axis < shape.length; axis++) linear = linear * shape[axis]! + index[axis]!;
    tally[linear] = (tally[linear] ?? 0) + 1;
    let axis = shape.length - 1;
    while (axis >= 0) {
      if (++index[axis]! < stop[axis]!) break;
      index[axis] = start[axis]!;
      axis--;
    }
    if (axis < 0) return;
  }
}

/** A small seeded PRNG (mulberry32), so that a run can be replayed with --seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
