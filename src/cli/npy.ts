/**
 * A small reader and writer of NumPy's `.npy` format for the data types zarr-tx supports.
 *
 * Layout (NumPy's format, version 1.0): the magic `\x93NUMPY`, the version bytes 1 and 0, the header
 * length as a little-endian uint16, then the header: a Python dict literal
 * `{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and ended by a
 * newline so that the data start at a multiple of 64 bytes. The data follow, C order (row-major) or,
 * with `fortran_order`, column-major. Versions 2.0 and 3.0 differ only by a uint32 header length (and
 * UTF-8 in 3.0); the reader accepts them too. Pure code: no I/O.
 */
import { type DataType, isDataType, type RawTypedArray } from "../array/dtype.js";
import { copyStrided, cStrides, sizeOf } from "../array/ndarray.js";
import { InvalidArgumentError, ValueError } from "../errors.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

/** NumPy's `descr` (little-endian where it matters) of each supported data type. */
const DESCR: Readonly<Record<DataType, string>> = {
  bool: "|b1",
  int8: "|i1",
  uint8: "|u1",
  int16: "<i2",
  uint16: "<u2",
  int32: "<i4",
  uint32: "<u4",
  int64: "<i8",
  uint64: "<u8",
  float32: "<f4",
  float64: "<f8",
};

const BY_CODE: Readonly<Record<string, DataType>> = Object.fromEntries(
  Object.entries(DESCR).map(([dtype, descr]) => [descr.slice(1), dtype as DataType]),
);

const CTORS: Readonly<Record<DataType, new (buffer: ArrayBuffer) => RawTypedArray>> = {
  bool: Uint8Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** A decoded `.npy` array. `data` holds native (little-endian) elements in the file's memory order. */
export interface NpyArray {
  readonly dtype: DataType;
  readonly shape: readonly number[];
  /** True when `data` is column-major (Fortran order). */
  readonly fortranOrder: boolean;
  /** The elements (bool as 0/1 bytes), `sizeOf(shape)` of them, in the order `fortranOrder` says. */
  readonly data: RawTypedArray;
  /** Element strides of `data` for `shape`: C or Fortran. */
  readonly stride: readonly number[];
}

/** Column-major (Fortran order) strides of a shape, in elements. */
export function fStrides(shape: readonly number[]): number[] {
  const strides: number[] = [];
  let step = 1;
  for (const n of shape) {
    strides.push(step);
    step *= n;
  }
  return strides;
}

/**
 * Encodes an array as `.npy` version 1.0. `data` holds `sizeOf(shape)` elements in C order (bool as 0/1
 * bytes); with `fortranOrder` the file stores them column-major (NumPy reads both the same).
 *
 * @throws {InvalidArgumentError} when `data` is too short for `shape`, or the dtype is unsupported.
 */
export function encodeNpy(
  dtype: DataType,
  shape: readonly number[],
  data: RawTypedArray,
  options: { readonly fortranOrder?: boolean } = {},
): Uint8Array {
  if (!isDataType(dtype)) throw new InvalidArgumentError(`cannot write ${String(dtype)} to .npy`);
  const count = sizeOf(shape);
  if (data.length < count) {
    throw new InvalidArgumentError(
      `.npy data has ${data.length} elements, shape [${shape.join(", ")}] needs ${count}`,
    );
  }
  const fortran = options.fortranOrder === true;
  let body: RawTypedArray = data.subarray(0, count) as RawTypedArray;
  if (fortran && shape.length > 1) {
    const out = new CTORS[dtype](new ArrayBuffer(count * body.BYTES_PER_ELEMENT));
    copyStrided(
      { data: body, offset: 0, strides: cStrides(shape) },
      { data: out, offset: 0, strides: fStrides(shape) },
      shape,
    );
    body = out;
  }
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${DESCR[dtype]}', 'fortran_order': ${fortran ? "True" : "False"}, 'shape': ${tuple}, }`;
  // Pad with spaces so that magic (6) + version (2) + length (2) + header + "\n" is a multiple of 64.
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((ALIGN - (unpadded % ALIGN)) % ALIGN) + "\n";
  if (header.length > 0xffff)
    throw new InvalidArgumentError("the .npy header is too long (too many dimensions)");
  const bytes = new Uint8Array(10 + header.length + body.byteLength);
  bytes.set(MAGIC, 0);
  bytes[6] = 1;
  bytes[7] = 0;
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) bytes[10 + i] = header.charCodeAt(i);
  bytes.set(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), 10 + header.length);
  return bytes;
}

/**
 * Decodes a `.npy` file (format 1.0, 2.0 or 3.0) of a supported data type, either byte order.
 *
 * @throws {ValueError} `ERR_VALUE_DTYPE` for data types zarr-tx does not support (structured, strings,
 *   float16, complex, objects); `ERR_VALUE_SHAPE` for a malformed or truncated file.
 */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    malformed("it does not start with \\x93NUMPY");
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) malformed("the header is cut short");
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    return malformed(`format version ${major}.${bytes[7]} is unknown (1.0, 2.0 and 3.0 are read)`);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) malformed("the header is cut short");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(headerStart, dataStart),
  );
  const dict = parseHeader(header);
  const descr = dict.descr;
  if (typeof descr !== "string") {
    throw new ValueError(
      "ERR_VALUE_DTYPE",
      "the .npy file holds a structured data type; zarr-tx reads plain numeric and bool arrays",
    );
  }
  const fortran = dict.fortran_order;
  if (typeof fortran !== "boolean") malformed("fortran_order is missing");
  const shape = dict.shape;
  if (
    !Array.isArray(shape) ||
    !shape.every((n) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0)
  ) {
    return malformed("shape is not a tuple of non-negative integers");
  }
  const order = descr[0];
  const dtype = BY_CODE[descr.slice(1)];
  if (dtype === undefined || (order !== "<" && order !== ">" && order !== "|" && order !== "=")) {
    throw new ValueError(
      "ERR_VALUE_DTYPE",
      `the .npy data type ${JSON.stringify(descr)} is not supported; use bool, int8…int64, uint8…uint64, float32 or float64`,
    );
  }
  const count = sizeOf(shape as number[]);
  const itemSize = Number(descr.slice(2));
  const byteLength = count * itemSize;
  if (bytes.length - dataStart < byteLength) {
    malformed(
      `the data are cut short: ${bytes.length - dataStart} bytes for ${count} elements of ${itemSize} bytes`,
    );
  }
  // A fresh buffer: aligned for the typed array, and owned (no view into the caller's bytes).
  const buffer = bytes.slice(dataStart, dataStart + byteLength).buffer;
  if (order === ">" && itemSize > 1) swapBytes(new Uint8Array(buffer), itemSize);
  const data = new CTORS[dtype](buffer);
  if (dtype === "bool" && data.some((v) => v !== 0 && v !== 1))
    malformed("a bool element is neither 0 nor 1");
  const dims = shape as number[];
  return {
    dtype,
    shape: dims,
    fortranOrder: fortran,
    data,
    stride: fortran ? fStrides(dims) : cStrides(dims),
  };
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let at = 0; at < bytes.length; at += size) bytes.subarray(at, at + size).reverse();
}

function malformed(why: string): never {
  throw new ValueError("ERR_VALUE_SHAPE", `not a readable .npy file: ${why}`);
}

type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

/** Parses the header: a Python literal dict of strings, booleans, None, integers, tuples and lists. */
function parseHeader(text: string): Record<string, PyValue> {
  let at = 0;
  const skip = () => {
    while (at < text.length && /\s/.test(text[at]!)) at++;
  };
  const expect = (c: string) => {
    skip();
    if (text[at] !== c) malformed(`the header has ${JSON.stringify(text[at] ?? "end")} where ${c} belongs`);
    at++;
  };
  const value = (): PyValue => {
    skip();
    const c = text[at];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, at + 1);
      if (end < 0) malformed("the header has an unterminated string");
      const s = text.slice(at + 1, end);
      at = end + 1;
      return s;
    }
    if (c === "{") {
      at++;
      const dict: Record<string, PyValue> = {};
      for (;;) {
        skip();
        if (text[at] === "}") {
          at++;
          return dict;
        }
        const key = value();
        if (typeof key !== "string") malformed("a header key is not a string");
        expect(":");
        dict[key] = value();
        skip();
        if (text[at] === ",") at++;
      }
    }
    if (c === "(" || c === "[") {
      const close = c === "(" ? ")" : "]";
      at++;
      const items: PyValue[] = [];
      for (;;) {
        skip();
        if (text[at] === close) {
          at++;
          return items;
        }
        items.push(value());
        skip();
        if (text[at] === ",") at++;
        else if (text[at] !== close) malformed("a header tuple is malformed");
      }
    }
    const word = /^[A-Za-z_]+|^[+-]?\d+L?/.exec(text.slice(at))?.[0];
    if (word === undefined) return malformed(`the header has an unexpected ${JSON.stringify(c ?? "end")}`);
    at += word.length;
    if (word === "True") return true;
    if (word === "False") return false;
    if (word === "None") return null;
    // Python 2 wrote long integers with an L suffix.
    if (/^[+-]?\d+L?$/.test(word)) return Number(word.replace("L", ""));
    return malformed(`the header has an unexpected word ${word}`);
  };
  const dict = value();
  if (typeof dict !== "object" || dict === null || Array.isArray(dict)) malformed("the header is not a dict");
  return dict as Record<string, PyValue>;
}
