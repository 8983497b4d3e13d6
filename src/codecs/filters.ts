/**
 * The numcodecs `delta` and `shuffle` filters, byte for byte as numcodecs (Python) applies them to Zarr v2
 * chunks.
 *
 * Both are bytes-to-bytes codecs here: numcodecs runs v2 filters on the chunk's memory (in the array's
 * byte order, and in F order for `order: "F"` arrays), not on abstract values, so emulating that memory
 * is the only way to read and write every chunk zarr-python writes. zarrita's own entries get three
 * things wrong that zarr-python arrays do use: `delta` ignores `astype` (the encoded element type) and the
 * byte order named in `dtype`, and `shuffle` ignores `elementsize` (it shuffles by the array's item
 * size, while numcodecs' default is 4) and refuses bool arrays.
 *
 * This module imports nothing from the store, sync or array layers.
 */
import { MetadataError } from "../errors.js";

/** A fixed-size numeric NumPy type as the delta filter sees it (`"<i4"`, `">f8"`, `"|u1"`). */
export interface NumpyNumericType {
  /** Signed integer, unsigned integer or IEEE float. */
  readonly kind: "i" | "u" | "f";
  /** Bytes per element. */
  readonly size: 1 | 2 | 4 | 8;
  /** Byte order of the stored elements (one-byte types count as little-endian). */
  readonly littleEndian: boolean;
}

/** Zarr v3 / zarrita data type names and the NumPy kind and size each stands for. */
const NAMED: Readonly<Record<string, readonly ["i" | "u" | "f", 1 | 2 | 4 | 8]>> = {
  int8: ["i", 1],
  int16: ["i", 2],
  int32: ["i", 4],
  int64: ["i", 8],
  uint8: ["u", 1],
  uint16: ["u", 2],
  uint32: ["u", 4],
  uint64: ["u", 8],
  float32: ["f", 4],
  float64: ["f", 8],
};

/**
 * Parses a NumPy type string of a fixed-size integer or float: `"<i4"`, `">u8"`, `"|i1"`, `"=f8"`, `"i2"`
 * (no byte-order character: the machine's order, little-endian on every platform Node runs on), or a Zarr
 * v3 name (`"int16"`, little-endian).
 *
 * @throws {MetadataError} `ERR_UNSUPPORTED` for anything else (bool, float16, strings, structured types).
 */
export function parseNumpyNumericType(text: unknown, what: string): NumpyNumericType {
  if (typeof text === "string") {
    const named = NAMED[text];
    if (named !== undefined) return { kind: named[0], size: named[1], littleEndian: true };
    const match = /^([<>|=]?)([iuf])([1248])$/.exec(text);
    if (match !== null) {
      const kind = match[2] as "i" | "u" | "f";
      const size = Number(match[3]) as 1 | 2 | 4 | 8;
      if (kind !== "f" || size >= 4) return { kind, size, littleEndian: match[1] !== ">" };
    }
  }
  throw new MetadataError(
    "ERR_UNSUPPORTED",
    `${what} ${JSON.stringify(text)} is not supported: use a NumPy integer or float type such as "<i4", ">u2" or "<f8"`,
  );
}

type NumericArray =
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | Float32Array
  | Float64Array;
type BigArray = BigInt64Array | BigUint64Array;
type ElementArray = NumericArray | BigArray;

function constructorOf(t: NumpyNumericType): new (buffer: ArrayBuffer) => ElementArray {
  if (t.kind === "f") return t.size === 4 ? Float32Array : Float64Array;
  const signed = t.kind === "i";
  switch (t.size) {
    case 1:
      return signed ? Int8Array : Uint8Array;
    case 2:
      return signed ? Int16Array : Uint16Array;
    case 4:
      return signed ? Int32Array : Uint32Array;
    default:
      return signed ? BigInt64Array : BigUint64Array;
  }
}

/** Reverses the bytes of every `size`-byte element in place. */
function swapBytes(bytes: Uint8Array, size: number): void {
  for (let at = 0; at < bytes.length; at += size) {
    for (let lo = at, hi = at + size - 1; lo < hi; lo++, hi--) {
      const t = bytes[lo] as number;
      bytes[lo] = bytes[hi] as number;
      bytes[hi] = t;
    }
  }
}

/** The elements stored in `bytes` as type `t`, in a fresh, aligned typed array in the machine's order. */
function readElements(bytes: Uint8Array, t: NumpyNumericType, what: string): ElementArray {
  if (bytes.length % t.size !== 0) {
    throw new Error(`${what}: ${bytes.length} bytes are not a whole number of ${t.size}-byte elements`);
  }
  // A copy: the input may be unaligned, shared with the caller, or need swapping.
  const copy = bytes.slice();
  if (!t.littleEndian && t.size > 1) swapBytes(copy, t.size);
  return new (constructorOf(t))(copy.buffer);
}

/** The bytes of `values` stored as type `t` (the array is machine-ordered and owns its whole buffer). */
function writeElements(values: ElementArray, t: NumpyNumericType): Uint8Array {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (!t.littleEndian && t.size > 1) swapBytes(bytes, t.size);
  return bytes;
}

/**
 * Converts `values` to type `to` as a C cast (NumPy's `astype`) does between integers: modulo 2^bits,
 * sign- or zero-extended by the source's own signedness. Floats convert to floats of the same size.
 */
function castIntegers(values: ElementArray, to: NumpyNumericType): ElementArray {
  const Out = constructorOf(to);
  if (values.constructor === Out) return values;
  const out = new Out(new ArrayBuffer(values.length * to.size));
  const bits = to.size * 8;
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    // Storing a bigint wraps it modulo 2^64 (BigInt.asIntN/asUintN), which is the C cast.
    for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i] as number | bigint);
  } else if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
    // Reduce before converting to a Number: a 64-bit value would lose low bits in a double.
    for (let i = 0; i < values.length; i++) out[i] = Number(BigInt.asUintN(bits, values[i] as bigint));
  } else {
    // Storing an exact integer into an integer typed array wraps it modulo 2^bits (ToInt8, ToUint16…).
    for (let i = 0; i < values.length; i++) out[i] = values[i] as number;
  }
  return out;
}

/**
 * numcodecs' `Delta(dtype, astype)` filter: the first element, then each element minus the one before it,
 * computed in `dtype` (integers wrap) and stored as `astype`. Decoding is a cumulative sum into `dtype`.
 * The elements are the chunk's memory read as `dtype`, exactly as numcodecs views it, whatever the
 * array's own type and byte order.
 */
export class DeltaFilter {
  /** Runs after the bytes codec, on the stored bytes. */
  readonly kind = "bytes_to_bytes";
  /** The type the chunk's bytes are read as. */
  readonly dtype: NumpyNumericType;
  /** The type the differences are stored as. */
  readonly astype: NumpyNumericType;

  /**
   * @throws {MetadataError} `ERR_UNSUPPORTED` when `dtype` and `astype` are not both integers or both
   *   floats of one size (numcodecs would compute such sums in a type that depends on NumPy's casting
   *   rules; refusing them keeps reads exact), or when one of them is uint64 and the other signed
   *   (NumPy decodes that pair through float64).
   */
  constructor(dtype: NumpyNumericType, astype: NumpyNumericType) {
    const bothInts = dtype.kind !== "f" && astype.kind !== "f";
    const sameFloats = dtype.kind === "f" && astype.kind === "f" && dtype.size === astype.size;
    if (!bothInts && !sameFloats) {
      throw new MetadataError(
        "ERR_UNSUPPORTED",
        "delta filter: dtype and astype must both be integers, or both floats of the same size",
      );
    }
    const u64 = (t: NumpyNumericType) => t.kind === "u" && t.size === 8;
    if ((u64(astype) && dtype.kind === "i") || (u64(dtype) && astype.kind === "i")) {
      // NumPy's cumsum mixing uint64 with a signed type runs in float64, so numcodecs itself decodes
      // such data wrongly (beyond 2^53, or at once for negative differences): refuse the pair rather
      // than read or write data that zarr-python does not get back.
      throw new MetadataError(
        "ERR_UNSUPPORTED",
        "delta filter: uint64 paired with a signed type is not supported (numcodecs decodes it through float64 and loses data); use types of one signedness",
      );
    }
    this.dtype = dtype;
    this.astype = astype;
  }

  /**
   * Builds the filter from a numcodecs configuration (`{ dtype: "<i8", astype: "<i2" }`). Without
   * `dtype`, the chunk's data type (`meta.dataType`, little-endian) is used; `astype` defaults to `dtype`.
   *
   * @throws {MetadataError} `ERR_UNSUPPORTED` as the constructor does, or for an unsupported type string.
   */
  static fromConfig(config: Record<string, unknown>, meta: { dataType: unknown }): DeltaFilter {
    const dtype = parseNumpyNumericType(config.dtype ?? meta.dataType, "delta filter dtype");
    const astype =
      config.astype === undefined || config.astype === null
        ? dtype
        : parseNumpyNumericType(config.astype, "delta filter astype");
    return new DeltaFilter(dtype, astype);
  }

  /** Encodes the chunk's bytes. Throws `Error` when their length is not a multiple of the dtype's size. */
  encode(bytes: Uint8Array): Uint8Array {
    const values = readElements(bytes, this.dtype, "delta filter");
    const n = values.length;
    if (n === 0) return new Uint8Array(0);
    // In place, from the end, so that each difference still sees its unmodified predecessor. The typed
    // array of `dtype` wraps integer differences and rounds float ones exactly as NumPy's diff does.
    if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
      for (let i = n - 1; i > 0; i--) values[i] = (values[i] as bigint) - (values[i - 1] as bigint);
    } else {
      for (let i = n - 1; i > 0; i--) values[i] = (values[i] as number) - (values[i - 1] as number);
    }
    return writeElements(castIntegers(values, this.astype), this.astype);
  }

  /** Decodes stored differences. Throws `Error` when their length is not a multiple of astype's size. */
  decode(bytes: Uint8Array): Uint8Array {
    const diffs = readElements(bytes, this.astype, "delta filter");
    // Widening or narrowing first and summing modulo 2^bits of `dtype` equals NumPy's cumsum followed by
    // the cast into `dtype`, because reduction modulo 2^bits commutes with addition.
    const values = castIntegers(diffs, this.dtype);
    if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
      for (let i = 1; i < values.length; i++) values[i] = (values[i - 1] as bigint) + (values[i] as bigint);
    } else {
      // Each sum is exact in a double (|operands| < 2^33) and is wrapped or rounded by the store, as the
      // sequential cumsum in NumPy's `dtype` does.
      for (let i = 1; i < values.length; i++) values[i] = (values[i - 1] as number) + (values[i] as number);
    }
    return writeElements(values, this.dtype);
  }

  /** The encoded size of `decodedSize` bytes: the element count times astype's size. */
  computeEncodedSize(decodedSize: number): number {
    return (decodedSize / this.dtype.size) * this.astype.size;
  }
}

/**
 * numcodecs' `Shuffle(elementsize)` filter: byte k of every element goes to the k-th of `elementsize`
 * planes. An element size of 0 or 1 copies the bytes unchanged.
 */
export class ShuffleFilter {
  /** Runs after the bytes codec, on the stored bytes. */
  readonly kind = "bytes_to_bytes";
  /** Bytes per element of the planes. */
  readonly elementSize: number;

  /** @throws {MetadataError} `ERR_INVALID_METADATA` when `elementSize` is not an integer ≥ 0. */
  constructor(elementSize: number) {
    if (!Number.isSafeInteger(elementSize) || elementSize < 0) {
      throw new MetadataError(
        "ERR_INVALID_METADATA",
        `shuffle filter: elementsize must be an integer ≥ 0, got ${JSON.stringify(elementSize)}`,
      );
    }
    this.elementSize = elementSize;
  }

  /**
   * Builds the filter from `{ elementsize }`. Without it, the chunk's item size is used (as zarr-python 3
   * does; zarr-python 2 always writes `elementsize`).
   *
   * @throws {MetadataError} `ERR_INVALID_METADATA` for a bad element size.
   */
  static fromConfig(config: Record<string, unknown>, meta: { dataType: unknown }): ShuffleFilter {
    const given = config.elementsize;
    if (given === undefined || given === null) return new ShuffleFilter(itemSizeOf(meta.dataType));
    return new ShuffleFilter(given as number);
  }

  /** Shuffles. Throws `Error` when the length is not a multiple of the element size (as numcodecs does). */
  encode(bytes: Uint8Array): Uint8Array {
    return this.#permute(bytes, true);
  }

  /** Unshuffles. Throws `Error` when the length is not a multiple of the element size. */
  decode(bytes: Uint8Array): Uint8Array {
    return this.#permute(bytes, false);
  }

  /** The encoded size: the same as the decoded size. */
  computeEncodedSize(decodedSize: number): number {
    return decodedSize;
  }

  #permute(bytes: Uint8Array, forward: boolean): Uint8Array {
    const size = this.elementSize;
    if (size <= 1) return bytes.slice();
    if (bytes.length % size !== 0) {
      throw new Error(`shuffle filter: ${bytes.length} bytes are not a multiple of elementsize ${size}`);
    }
    const count = bytes.length / size;
    const out = new Uint8Array(bytes.length);
    for (let b = 0; b < size; b++) {
      const plane = b * count;
      if (forward) for (let i = 0; i < count; i++) out[plane + i] = bytes[i * size + b] as number;
      else for (let i = 0; i < count; i++) out[i * size + b] = bytes[plane + i] as number;
    }
    return out;
  }
}

/** Bytes per element of a zarrita data type name; 1 for bool and anything unknown to this module. */
export function itemSizeOf(dataType: unknown): number {
  if (typeof dataType !== "string") return 1;
  const named = NAMED[dataType];
  if (named !== undefined) return named[1];
  if (dataType === "float16") return 2;
  return 1;
}
