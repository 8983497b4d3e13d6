/**
 * Strided n-dimensional copies between typed arrays: the merge step of read-modify-write and the
 * assembly step of reads. Pure code.
 */
import { cStrides } from "../strides.js";
import type { RawTypedArray } from "./dtype.js";

/** A strided window onto a typed array: element (i0, i1, …) is at `offset + Σ ik·strides[k]`. */
export interface StridedView {
  readonly data: RawTypedArray;
  readonly offset: number;
  readonly strides: readonly number[];
}

export { cStrides };

/** Number of elements of a shape (1 for a scalar shape []). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Copies a `counts`-shaped block from `src` to `dst`. Both views must be over the same element type
 * (number or bigint); the caller guarantees every addressed element is in range.
 */
export function copyStrided(src: StridedView, dst: StridedView, counts: readonly number[]): void {
  visit(counts, src.strides, dst.strides, src.offset, dst.offset, (s, d, n, ss, ds) => {
    const from = src.data as unknown as ArrayLike<number> & { [i: number]: number };
    const to = dst.data as unknown as { [i: number]: number };
    if (ss === 1 && ds === 1 && n > 16) {
      (dst.data as Float64Array).set((src.data as Float64Array).subarray(s, s + n), d);
      return;
    }
    for (let i = 0; i < n; i++) to[d + i * ds] = from[s + i * ss]!;
  });
}

/** Sets every element of a `counts`-shaped block of `dst` to `value`. */
export function fillStrided(dst: StridedView, counts: readonly number[], value: number | bigint): void {
  visit(counts, dst.strides, dst.strides, dst.offset, dst.offset, (_s, d, n, _ss, ds) => {
    const to = dst.data as unknown as { [i: number]: number | bigint };
    if (ds === 1) {
      (dst.data as unknown as { fill(v: number | bigint, a: number, b: number): void }).fill(value, d, d + n);
      return;
    }
    for (let i = 0; i < n; i++) to[d + i * ds] = value;
  });
}

/**
 * Calls `row` once per innermost run of a block, with the run's start in both views, its length and
 * its stride in both views. An odometer over the outer dimensions keeps this allocation-free per row.
 */
function visit(
  counts: readonly number[],
  aStrides: readonly number[],
  bStrides: readonly number[],
  aOffset: number,
  bOffset: number,
  row: (a: number, b: number, n: number, aStride: number, bStride: number) => void,
): void {
  const rank = counts.length;
  if (counts.some((c) => c === 0)) return;
  if (rank === 0) {
    row(aOffset, bOffset, 1, 1, 1);
    return;
  }
  const inner = rank - 1;
  const n = counts[inner]!;
  const aInner = aStrides[inner]!;
  const bInner = bStrides[inner]!;
  const index = new Array<number>(inner).fill(0);
  let a = aOffset;
  let b = bOffset;
  for (;;) {
    row(a, b, n, aInner, bInner);
    let axis = inner - 1;
    while (axis >= 0) {
      index[axis]!++;
      a += aStrides[axis]!;
      b += bStrides[axis]!;
      if (index[axis]! < counts[axis]!) break;
      a -= aStrides[axis]! * counts[axis]!;
      b -= bStrides[axis]! * counts[axis]!;
      index[axis] = 0;
      axis--;
    }
    if (axis < 0) return;
  }
}
