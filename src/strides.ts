/** Strides of n-dimensional arrays, shared by the array and codec layers (this module imports nothing). */

/** Row-major (C order) strides of a shape, in elements. */
export function cStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = step;
    step *= shape[axis]!;
  }
  return strides;
}
