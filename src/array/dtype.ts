/**
 * Data types zarr-tx reads and writes, and how each maps to a typed array, a scalar and the v2 `dtype`
 * string. Bool chunks are handled internally as `Uint8Array` (0/1) and exposed as zarrita's `BoolArray`.
 */
import { BoolArray } from "zarrita";
import { ValueError } from "../errors.js";

/** Numeric and boolean data types (the ones that map to a fixed-size typed array). */
export type DataType =
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "float32"
  | "float64"
  | "bool";

/** The scalar type of a data type: bigint for 64-bit integers, boolean for bool, else number. */
export type Scalar = number | bigint | boolean;

/** The typed array zarr-tx uses inside chunks (bool as Uint8Array). */
export type RawTypedArray =
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** The typed array a user passes and receives (bool as zarrita's BoolArray). */
export type UserTypedArray = RawTypedArray | BoolArray;

type RawCtor = {
  new (length: number): RawTypedArray;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

interface DataTypeInfo {
  readonly ctor: RawCtor;
  readonly v2Code: string;
  readonly scalar: "number" | "bigint" | "boolean";
  readonly integerRange?: readonly [number, number];
}

const INFO: Record<DataType, DataTypeInfo> = {
  int8: { ctor: Int8Array, v2Code: "i1", scalar: "number", integerRange: [-128, 127] },
  int16: { ctor: Int16Array, v2Code: "i2", scalar: "number", integerRange: [-32768, 32767] },
  int32: { ctor: Int32Array, v2Code: "i4", scalar: "number", integerRange: [-2147483648, 2147483647] },
  int64: { ctor: BigInt64Array, v2Code: "i8", scalar: "bigint" },
  uint8: { ctor: Uint8Array, v2Code: "u1", scalar: "number", integerRange: [0, 255] },
  uint16: { ctor: Uint16Array, v2Code: "u2", scalar: "number", integerRange: [0, 65535] },
  uint32: { ctor: Uint32Array, v2Code: "u4", scalar: "number", integerRange: [0, 4294967295] },
  uint64: { ctor: BigUint64Array, v2Code: "u8", scalar: "bigint" },
  float32: { ctor: Float32Array, v2Code: "f4", scalar: "number" },
  float64: { ctor: Float64Array, v2Code: "f8", scalar: "number" },
  bool: { ctor: Uint8Array, v2Code: "b1", scalar: "boolean" },
};

const BIGINT_RANGE: Partial<Record<DataType, readonly [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/** True when `name` is a data type zarr-tx supports. */
export function isDataType(name: unknown): name is DataType {
  return typeof name === "string" && Object.hasOwn(INFO, name);
}

/** Every supported data type. */
export const DATA_TYPES = Object.keys(INFO) as DataType[];

/** Bytes per element. */
export function itemSize(dtype: DataType): number {
  return INFO[dtype].ctor.BYTES_PER_ELEMENT;
}

/** A new zeroed raw typed array of `length` elements. */
export function allocate(dtype: DataType, length: number): RawTypedArray {
  return new INFO[dtype].ctor(length);
}

/** The v2 type code without byte order ("i4", "b1"). */
export function v2TypeCode(dtype: DataType): string {
  return INFO[dtype].v2Code;
}

/** Parses a v2 dtype string ("<i4", ">f8", "|b1"). Returns undefined for unsupported types. */
export function parseV2Dtype(text: string): { dtype: DataType; endian: "little" | "big" } | undefined {
  const match = /^([<>|])([a-z]\d+)$/.exec(text);
  if (!match) return undefined;
  const entry = Object.entries(INFO).find(([, info]) => info.v2Code === match[2]);
  if (!entry) return undefined;
  return { dtype: entry[0] as DataType, endian: match[1] === ">" ? "big" : "little" };
}

/** The v2 dtype string of a data type and byte order. */
export function formatV2Dtype(dtype: DataType, endian: "little" | "big"): string {
  const code = INFO[dtype].v2Code;
  const order = itemSize(dtype) === 1 ? "|" : endian === "big" ? ">" : "<";
  return order + code;
}

/** The raw array of a user value's data: BoolArray unwrapped to its Uint8Array bytes. */
export function toRaw(data: UserTypedArray): RawTypedArray {
  if (data instanceof BoolArray) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  return data;
}

/** Wraps a raw chunk array for the user (Uint8Array → BoolArray for bool). */
export function toUser(dtype: DataType, data: RawTypedArray): UserTypedArray {
  if (dtype === "bool") return new BoolArray(data.buffer, data.byteOffset, data.length);
  return data;
}

/** The name of the typed array a user must pass for `dtype`. */
export function expectedArrayName(dtype: DataType): string {
  return dtype === "bool" ? "BoolArray (from zarrita)" : INFO[dtype].ctor.name;
}

/** True when `data` is the typed array `dtype` requires. */
export function matchesDtype(dtype: DataType, data: unknown): data is UserTypedArray {
  if (dtype === "bool") return data instanceof BoolArray;
  // Exact constructor: a Uint8ClampedArray or a Uint8Array of bools must not pass as another type.
  return typeof data === "object" && data !== null && data.constructor === INFO[dtype].ctor;
}

/**
 * Converts a user scalar to the raw element value stored for `dtype` (bool → 0/1).
 * Throws `ValueError` (`ERR_VALUE_DTYPE`) when the scalar's type or range does not fit the data type.
 */
export function toRawScalar(dtype: DataType, value: unknown): number | bigint {
  const info = INFO[dtype];
  const fail = (why: string): never => {
    throw new ValueError("ERR_VALUE_DTYPE", `cannot store ${describe(value)} in a ${dtype} array: ${why}`);
  };
  if (info.scalar === "boolean") {
    if (typeof value !== "boolean") fail("pass true or false");
    return value ? 1 : 0;
  }
  if (info.scalar === "bigint") {
    if (typeof value !== "bigint") fail(`64-bit integers take a bigint, e.g. ${String(value)}n`);
    const [lo, hi] = BIGINT_RANGE[dtype]!;
    const big = value as bigint;
    if (big < lo || big > hi) fail(`it is outside [${lo}, ${hi}]`);
    return big;
  }
  if (typeof value !== "number") fail("pass a number");
  const num = value as number;
  if (info.integerRange) {
    if (!Number.isInteger(num)) fail("it is not an integer");
    const [lo, hi] = info.integerRange;
    if (num < lo || num > hi) fail(`it is outside [${lo}, ${hi}]`);
  }
  return num;
}

/** Converts a raw element back to the user scalar (0/1 → boolean for bool). */
export function toUserScalar(dtype: DataType, raw: number | bigint): Scalar {
  if (dtype === "bool") return raw !== 0;
  return raw;
}

function describe(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object" && value !== null) return value.constructor?.name ?? "an object";
  return String(value);
}
