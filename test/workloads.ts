/**
 * The concurrency workloads of the test suite, shared by the in-process tests here and by the
 * multi-process tests of later synchronizers: the #857 anti-diagonal invariant and the counter.
 */
import { get, slice, transaction, type ZarrTxArray } from "../src/index.js";

/** Cells of the anti-diagonal (2-D: i + j = d) or diagonal plane (3-D: i + j + k = d) number `d`. */
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
  walk([], 0, 0);
  return cells;
}

/** Number of diagonals of a shape. */
export function diagonalCount(shape: readonly number[]): number {
  return shape.reduce((acc, n) => acc + n - 1, 0) + 1;
}

/** Rewrites every cell of diagonal `d` with `value` in one transaction. */
export async function writeDiagonal(array: ZarrTxArray, d: number, value: number): Promise<void> {
  const cells = diagonalCells(array.shape, d);
  await transaction(
    cells.map((cell) => ({ array, selection: cell, mode: "write" as const })),
    async (tx) => {
      for (const cell of cells) await tx.set(array, cell, value);
    },
  );
}

/** Reads the whole array once and returns how many diagonals are not uniform (torn). */
export async function countTornDiagonals(array: ZarrTxArray): Promise<number> {
  const { data, stride } = await get(array, null);
  const values = data as Int32Array;
  let torn = 0;
  for (let d = 0; d < diagonalCount(array.shape); d++) {
    const cells = diagonalCells(array.shape, d);
    const at = (cell: number[]) => values[cell.reduce((acc, v, axis) => acc + v * stride[axis]!, 0)];
    const first = at(cells[0]!);
    if (cells.some((cell) => at(cell) !== first)) torn++;
  }
  return torn;
}

/** A region for the counter workload: a box of up to 5 cells per dimension, usually crossing chunk borders. */
export function counterRegion(
  shape: readonly number[],
  random: () => number,
): { start: number[]; stop: number[] } {
  const start = shape.map((n) => Math.floor(random() * n));
  const stop = start.map((s, axis) => Math.min(shape[axis]!, s + 1 + Math.floor(random() * 5)));
  return { start, stop };
}

/** One read-modify-write increment of a region, inside a transaction. */
export async function incrementRegion(array: ZarrTxArray, start: number[], stop: number[]): Promise<void> {
  const selection = start.map((s, axis) => slice(s, stop[axis]!));
  await transaction([{ array, selection, mode: "write" }], async (tx) => {
    const current = await tx.get(array, selection);
    const next = (current.data as Int32Array).map((v) => v + 1);
    await tx.set(array, selection, { data: next, shape: current.shape });
  });
}

/** A small seeded PRNG (mulberry32), so that a failing run can be replayed. */
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
