/**
 * The concurrency workloads of the test suite (the #857 anti-diagonal invariant and the counter), as
 * thin wrappers over the CLI's `stress` workloads in src/cli/workloads.ts, so that the tests and the
 * user's own `zarr-tx stress` run the same code.
 */
import {
  countTornDiagonals as countTorn,
  diagonalCells,
  diagonalCount,
  writeDiagonal as writeCells,
} from "../src/cli/workloads.js";
import type { ZarrTxArray } from "../src/index.js";

export {
  counterRegion,
  diagonalCells,
  diagonalCount,
  incrementRegion,
  seededRandom,
} from "../src/cli/workloads.js";

/** Rewrites every cell of diagonal `d` with `value` in one transaction. */
export function writeDiagonal(array: ZarrTxArray, d: number, value: number): Promise<void> {
  return writeCells(array, diagonalCells(array.shape, d), value);
}

/** Reads the whole array once and returns how many diagonals are not uniform (torn). */
export function countTornDiagonals(array: ZarrTxArray): Promise<number> {
  const diagonals = Array.from({ length: diagonalCount(array.shape) }, (_, d) =>
    diagonalCells(array.shape, d),
  );
  return countTorn(array, diagonals);
}
