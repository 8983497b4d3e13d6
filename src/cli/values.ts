/**
 * Array values on the command line: nested JSON lists to and from zarr-tx values, checked against the
 * array's data type and the selection's shape. Pure code.
 */
import { allocate, type DataType, type RawTypedArray, toRaw, toRawScalar, toUser } from "../array/dtype.js";
import { cStrides, sizeOf } from "../array/ndarray.js";
import type { NdArray, WriteValue } from "../array/transaction.js";
import { ValueError } from "../errors.js";

/** A JSON-ready element: number, bigint (64-bit integers), boolean. NaN/±Infinity stay numbers. */
export type JsonElement = number | bigint | boolean;
/** A nested list of elements (or one element, for a zero-dimensional result). */
export type Nested = JsonElement | Nested[];

/** The raw elements of a result, copied into C order (a result may be strided). */
export function cOrderData(dtype: DataType, value: NdArray): RawTypedArray {
  const raw = toRaw(value.data);
  const strides = cStrides(value.shape);
  if (value.stride.every((s, axis) => s === strides[axis] || value.shape[axis] === 1)) {
    return raw.subarray(0, sizeOf(value.shape)) as RawTypedArray;
  }
  const out = allocate(dtype, sizeOf(value.shape));
  const src = raw as unknown as ArrayLike<number>;
  const dst = out as unknown as { [i: number]: number };
  const index = new Array<number>(value.shape.length).fill(0);
  for (let n = 0; n < out.length; n++) {
    let offset = 0;
    for (let axis = 0; axis < index.length; axis++) offset += index[axis]! * value.stride[axis]!;
    dst[n] = src[offset]!;
    for (let axis = index.length - 1; axis >= 0; axis--) {
      if (++index[axis]! < value.shape[axis]!) break;
      index[axis] = 0;
    }
  }
  return out;
}

/** Nested lists of the elements of `data` (C order, `shape`): booleans for bool, bigints for 64-bit. */
export function toNested(dtype: DataType, shape: readonly number[], data: RawTypedArray): Nested {
  const element = (i: number): JsonElement => {
    const v = (data as unknown as ArrayLike<number | bigint>)[i]!;
    return dtype === "bool" ? v !== 0 : v;
  };
  if (shape.length === 0) return element(0);
  const strides = cStrides(shape);
  const build = (axis: number, offset: number): Nested[] => {
    const out: Nested[] = [];
    for (let i = 0; i < shape[axis]!; i++) {
      const at = offset + i * strides[axis]!;
      out.push(axis === shape.length - 1 ? element(at) : build(axis + 1, at));
    }
    return out;
  };
  return build(0, 0);
}

function formatElement(value: JsonElement): string {
  if (typeof value === "number" && !Number.isFinite(value))
    return Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  return String(value);
}

/** Human text of nested lists: the innermost lists on one line each, like NumPy prints arrays. */
export function formatNested(value: Nested, depth = 0): string {
  if (!Array.isArray(value)) return formatElement(value);
  if (value.length === 0) return "[]";
  if (!Array.isArray(value[0])) return `[${value.map((v) => formatNested(v, depth + 1)).join(", ")}]`;
  const pad = " ".repeat(depth + 1);
  return `[${value.map((v, i) => (i === 0 ? "" : pad) + formatNested(v, depth + 1)).join(",\n")}]`;
}

/**
 * One element of `dtype` from JSON: a number; a boolean (or 0/1) for bool; for 64-bit integers a safe
 * integer or a string of digits (exact beyond 2^53); for floats also "NaN", "Infinity", "-Infinity".
 *
 * @throws {ValueError} `ERR_VALUE_DTYPE` when it does not fit the data type.
 */
export function elementOf(dtype: DataType, value: unknown): number | bigint | boolean {
  const fail = (why: string): never => {
    throw new ValueError("ERR_VALUE_DTYPE", `${JSON.stringify(value)} does not fit a ${dtype} array: ${why}`);
  };
  if (dtype === "bool") {
    if (typeof value === "boolean") return value;
    if (value === 0 || value === 1) return value === 1;
    return fail("use true or false");
  }
  if (dtype === "int64" || dtype === "uint64") {
    if (typeof value === "number") {
      if (!Number.isSafeInteger(value))
        return fail("beyond 2^53, write 64-bit integers as strings of digits");
      return BigInt(value);
    }
    if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
    return fail("use an integer");
  }
  if (dtype === "float32" || dtype === "float64") {
    if (typeof value === "number") return value;
    if (value === "NaN") return Number.NaN;
    if (value === "Infinity") return Number.POSITIVE_INFINITY;
    if (value === "-Infinity") return Number.NEGATIVE_INFINITY;
    return fail('use a number, or "NaN", "Infinity", "-Infinity"');
  }
  if (typeof value !== "number") return fail("use an integer");
  return value;
}

/**
 * A write value from parsed JSON: a scalar (broadcast over the selection) or nested lists of exactly
 * the selection's shape.
 *
 * @throws {ValueError} `ERR_VALUE_SHAPE` when the nesting does not match `shape`, `ERR_VALUE_DTYPE`
 *   when an element does not fit `dtype` (range included).
 */
export function writeValueOf(dtype: DataType, shape: readonly number[], json: unknown): WriteValue {
  if (!Array.isArray(json)) {
    const scalar = elementOf(dtype, json);
    toRawScalar(dtype, scalar); // range check now, with the array's words
    return scalar;
  }
  const data = allocate(dtype, sizeOf(shape));
  const out = data as unknown as { [i: number]: number | bigint };
  let n = 0;
  const walk = (node: unknown, axis: number, where: string): void => {
    if (axis === shape.length) {
      if (Array.isArray(node)) shapeMismatch(shape, `${where} is a list where an element belongs`);
      out[n++] = toRawScalar(dtype, elementOf(dtype, node));
      return;
    }
    if (!Array.isArray(node))
      shapeMismatch(shape, `${where} is an element where a list of ${shape[axis]} belongs`);
    if (node.length !== shape[axis]) {
      shapeMismatch(shape, `${where} has ${node.length} entries, dimension ${axis} has ${shape[axis]}`);
    }
    node.forEach((child, i) => {
      walk(child, axis + 1, `${where}[${i}]`);
    });
  };
  walk(json, 0, "the value");
  return { data: toUser(dtype, data), shape: [...shape] };
}

function shapeMismatch(shape: readonly number[], why: string): never {
  throw new ValueError(
    "ERR_VALUE_SHAPE",
    `the value does not have the selection's shape [${shape.join(", ")}]: ${why}`,
  );
}
