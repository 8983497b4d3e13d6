/**
 * Zarr array metadata, v3 (`zarr.json`) and v2 (`.zarray` + `.zattrs`): parsing into one normalized form,
 * and writing documents that zarrita and zarr-python open. Pure code: no I/O.
 */
import { InvalidArgumentError, MetadataError } from "../errors.js";
import type { AbsolutePath } from "../store/types.js";
import { type DataType, formatV2Dtype, isDataType, parseV2Dtype } from "./dtype.js";

/** One codec of a pipeline, in v3 form (`name` + `configuration`). v2 codecs are named `numcodecs.<id>`. */
export interface CodecMetadata {
  readonly name: string;
  readonly configuration?: Record<string, unknown>;
}

/** A v2 filter or compressor as zarr-python writes it (`{ id: "zlib", level: 1 }`). */
export interface V2CodecConfig {
  readonly id: string;
  readonly [option: string]: unknown;
}

/** Normalized metadata of one array, whatever its format. */
export interface ArrayMetadata {
  readonly zarrFormat: 2 | 3;
  readonly shape: readonly number[];
  readonly chunkShape: readonly number[];
  readonly dtype: DataType;
  /** Raw fill element: a number (0/1 for bool) or a bigint for 64-bit integers. */
  readonly fillValue: number | bigint;
  /** The codec pipeline a chunk goes through, in v3 form (v2 filters/compressor translated). */
  readonly codecs: readonly CodecMetadata[];
  readonly chunkKeyEncoding: { readonly name: "default" | "v2"; readonly separator: "/" | "." };
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** The key of the metadata document of the array at `path` in the given format. */
export function metadataKey(path: AbsolutePath, zarrFormat: 2 | 3): AbsolutePath {
  return joinKey(path, zarrFormat === 3 ? "zarr.json" : ".zarray");
}

/** The key of a v2 array's attributes document. */
export function v2AttributesKey(path: AbsolutePath): AbsolutePath {
  return joinKey(path, ".zattrs");
}

/** Joins an array path and a relative key ("c/0/1"). */
export function joinKey(path: AbsolutePath, relative: string): AbsolutePath {
  return (path === "/" ? `/${relative}` : `${path}/${relative}`) as AbsolutePath;
}

/** The relative key of the chunk at `coords` ("c/0/1" for v3 default, "0.1" for v2). */
export function chunkKey(meta: Pick<ArrayMetadata, "chunkKeyEncoding">, coords: readonly number[]): string {
  const { name, separator } = meta.chunkKeyEncoding;
  if (name === "default") return coords.length === 0 ? "c" : `c${separator}${coords.join(separator)}`;
  return coords.length === 0 ? "0" : coords.join(separator);
}

/**
 * Parses a `zarr.json` document. Throws `MetadataError`: `ERR_ARRAY_NOT_FOUND` when it describes a group,
 * `ERR_INVALID_METADATA` when it is malformed, `ERR_UNSUPPORTED` for valid Zarr that zarr-tx cannot write.
 */
export function parseV3(doc: unknown, where: string): ArrayMetadata {
  const m = asRecord(doc, where);
  if (m.zarr_format !== 3) bad(where, `zarr_format is ${JSON.stringify(m.zarr_format)}, expected 3`);
  if (m.node_type === "group") {
    throw new MetadataError("ERR_ARRAY_NOT_FOUND", `${where} describes a group, not an array`);
  }
  if (m.node_type !== "array") bad(where, `node_type is ${JSON.stringify(m.node_type)}, expected "array"`);
  const shape = intList(m.shape, "shape", where, 0);
  const dtype = m.data_type;
  if (!isDataType(dtype)) {
    throw new MetadataError(
      "ERR_UNSUPPORTED",
      `${where}: data_type ${JSON.stringify(dtype)} is not supported; zarr-tx writes bool, int8…int64, uint8…uint64, float32 and float64`,
    );
  }
  const grid = asRecord(m.chunk_grid, `${where} chunk_grid`);
  if (grid.name !== "regular") {
    throw new MetadataError(
      "ERR_UNSUPPORTED",
      `${where}: chunk_grid ${JSON.stringify(grid.name)} is not supported`,
    );
  }
  const chunkShape = intList(
    asRecord(grid.configuration, `${where} chunk_grid`).chunk_shape,
    "chunk_shape",
    where,
    1,
  );
  if (chunkShape.length !== shape.length) bad(where, "chunk_shape and shape have different lengths");
  const cke =
    m.chunk_key_encoding === undefined ? { name: "default" } : asRecord(m.chunk_key_encoding, where);
  if (cke.name !== "default" && cke.name !== "v2")
    bad(where, `unknown chunk_key_encoding ${JSON.stringify(cke.name)}`);
  const separator = (cke.configuration as { separator?: unknown } | undefined)?.separator;
  if (separator !== undefined && separator !== "/" && separator !== ".")
    bad(where, "chunk key separator must be / or .");
  if (!Array.isArray(m.codecs) || m.codecs.length === 0) bad(where, "codecs must be a non-empty list");
  const codecs = (m.codecs as unknown[]).map((c) => {
    const codec = asRecord(c, `${where} codec`);
    if (typeof codec.name !== "string") bad(where, "every codec needs a name");
    return {
      name: codec.name as string,
      configuration: (codec.configuration ?? {}) as Record<string, unknown>,
    };
  });
  const shardingAt = codecs.findIndex((c) => c.name === "sharding_indexed");
  if (shardingAt >= 0 && codecs.length !== 1) {
    throw new MetadataError(
      "ERR_UNSUPPORTED",
      `${where}: sharding_indexed must be the array's only codec (put other codecs inside its configuration)`,
    );
  }
  if (Array.isArray(m.storage_transformers) && m.storage_transformers.length > 0) {
    throw new MetadataError("ERR_UNSUPPORTED", `${where}: storage_transformers are not supported`);
  }
  return {
    zarrFormat: 3,
    shape,
    chunkShape,
    dtype,
    fillValue: parseFillValue(m.fill_value, dtype, where),
    codecs,
    chunkKeyEncoding: {
      name: cke.name,
      separator: (separator as "/" | "." | undefined) ?? (cke.name === "default" ? "/" : "."),
    },
    attributes: (m.attributes ?? {}) as Record<string, unknown>,
  };
}

/** Parses a `.zarray` document (and its `.zattrs`). Throws `MetadataError` like {@link parseV3}. */
export function parseV2(doc: unknown, attributes: unknown, where: string): ArrayMetadata {
  const m = asRecord(doc, where);
  if (m.zarr_format !== 2) bad(where, `zarr_format is ${JSON.stringify(m.zarr_format)}, expected 2`);
  const shape = intList(m.shape, "shape", where, 0);
  const chunkShape = intList(m.chunks, "chunks", where, 1);
  if (chunkShape.length !== shape.length) bad(where, "chunks and shape have different lengths");
  const parsed = typeof m.dtype === "string" ? parseV2Dtype(m.dtype) : undefined;
  if (!parsed) {
    throw new MetadataError(
      "ERR_UNSUPPORTED",
      `${where}: dtype ${JSON.stringify(m.dtype)} is not supported; zarr-tx writes |b1, i1…i8, u1…u8, f4 and f8`,
    );
  }
  const order = m.order ?? "C";
  if (order !== "C" && order !== "F") bad(where, `order must be "C" or "F", got ${JSON.stringify(order)}`);
  const separator = m.dimension_separator ?? ".";
  if (separator !== "." && separator !== "/") bad(where, "dimension_separator must be . or /");
  const codecs: CodecMetadata[] = [];
  if (order === "F") codecs.push({ name: "transpose", configuration: { order: "F" } });
  const filters = m.filters ?? [];
  if (!Array.isArray(filters)) bad(where, "filters must be a list or null");
  for (const filter of filters as unknown[]) codecs.push(v2CodecToV3(filter, where));
  if (parsed.endian === "big") codecs.push({ name: "bytes", configuration: { endian: "big" } });
  if (m.compressor !== null && m.compressor !== undefined) codecs.push(v2CodecToV3(m.compressor, where));
  return {
    zarrFormat: 2,
    shape,
    chunkShape,
    dtype: parsed.dtype,
    fillValue: parseFillValue(m.fill_value, parsed.dtype, where),
    codecs,
    chunkKeyEncoding: { name: "v2", separator: separator as "." | "/" },
    attributes: attributes === undefined ? {} : asRecord(attributes, `${where} attributes`),
  };
}

/** Options of a new array's metadata (see `create` for the user-facing documentation). */
export interface MetadataOptions {
  readonly shape: readonly number[];
  readonly chunkShape: readonly number[];
  readonly dtype: DataType;
  readonly fillValue?: number | bigint | boolean | null;
  readonly zarrFormat?: 2 | 3;
  readonly codecs?: readonly CodecMetadata[];
  readonly compressor?: V2CodecConfig | null;
  readonly filters?: readonly V2CodecConfig[] | null;
  readonly order?: "C" | "F";
  readonly endian?: "little" | "big";
  readonly dimensionSeparator?: "/" | ".";
  readonly attributes?: Record<string, unknown>;
  readonly dimensionNames?: readonly string[];
}

/**
 * Builds the documents of a new array: `{ key → JSON text }` relative to the array path, and the parsed
 * metadata. Throws `InvalidArgumentError` on a bad shape, chunk shape, dtype or fill value.
 */
export function buildMetadata(options: MetadataOptions): {
  documents: Record<string, string>;
  meta: ArrayMetadata;
} {
  const { shape, chunkShape, dtype } = options;
  if (!isDataType(dtype)) {
    throw new InvalidArgumentError(
      `dtype ${JSON.stringify(dtype)} is not supported; use one of bool, int8…uint64, float32, float64`,
    );
  }
  checkIntList(shape, "shape", 0);
  checkIntList(chunkShape, "chunkShape", 1);
  if (shape.length !== chunkShape.length) {
    throw new InvalidArgumentError(
      `shape has ${shape.length} dimensions but chunkShape has ${chunkShape.length}`,
    );
  }
  const fill = options.fillValue ?? null;
  const zarrFormat = options.zarrFormat ?? 3;
  if (zarrFormat !== 2 && zarrFormat !== 3)
    throw new InvalidArgumentError(`zarrFormat must be 2 or 3, got ${zarrFormat}`);
  const attributes = options.attributes ?? {};
  const documents: Record<string, string> = {};
  if (zarrFormat === 3) {
    if (options.compressor !== undefined || options.filters !== undefined || options.order !== undefined) {
      throw new InvalidArgumentError(
        "compressor, filters and order are v2 options; for a v3 array pass codecs",
      );
    }
    const codecs = withBytesCodec(options.codecs ?? [], options.endian ?? "little");
    const doc: Record<string, unknown> = {
      zarr_format: 3,
      node_type: "array",
      shape,
      data_type: dtype,
      chunk_grid: { name: "regular", configuration: { chunk_shape: chunkShape } },
      chunk_key_encoding: {
        name: "default",
        configuration: { separator: options.dimensionSeparator ?? "/" },
      },
      fill_value: FILL_PLACEHOLDER,
      codecs,
      attributes,
    };
    if (options.dimensionNames) doc.dimension_names = options.dimensionNames;
    documents["zarr.json"] = stringifyWithFill(doc, fill, dtype);
    return { documents, meta: parseV3(JSON.parse(documents["zarr.json"]), "new array") };
  }
  if (options.codecs !== undefined) {
    throw new InvalidArgumentError("codecs is a v3 option; for a v2 array pass compressor and filters");
  }
  const doc = {
    zarr_format: 2,
    shape,
    chunks: chunkShape,
    dtype: formatV2Dtype(dtype, options.endian ?? "little"),
    compressor: options.compressor ?? null,
    fill_value: FILL_PLACEHOLDER,
    order: options.order ?? "C",
    filters: options.filters && options.filters.length > 0 ? options.filters : null,
    dimension_separator: options.dimensionSeparator ?? ".",
  };
  documents[".zarray"] = stringifyWithFill(doc, fill, dtype);
  documents[".zattrs"] = JSON.stringify(attributes);
  return { documents, meta: parseV2(JSON.parse(documents[".zarray"]), attributes, "new array") };
}

const FILL_PLACEHOLDER = "\u0000fill\u0000";

/** JSON text of `doc` with the fill value written exactly (NaN as "NaN", big integers digit for digit). */
function stringifyWithFill(doc: object, fill: number | bigint | boolean | null, dtype: DataType): string {
  let text: string;
  if (fill === null) text = "null";
  else if (dtype === "bool") {
    if (typeof fill !== "boolean")
      throw new InvalidArgumentError(`fillValue of a bool array must be true or false`);
    text = String(fill);
  } else if (dtype === "int64" || dtype === "uint64") {
    if (typeof fill !== "bigint" && !Number.isSafeInteger(fill)) {
      throw new InvalidArgumentError(`fillValue of a ${dtype} array must be a bigint or a safe integer`);
    }
    text = String(fill);
  } else if (typeof fill !== "number") {
    throw new InvalidArgumentError(`fillValue of a ${dtype} array must be a number`);
  } else if (Number.isNaN(fill)) text = '"NaN"';
  else if (fill === Number.POSITIVE_INFINITY) text = '"Infinity"';
  else if (fill === Number.NEGATIVE_INFINITY) text = '"-Infinity"';
  else {
    if (dtype !== "float32" && dtype !== "float64" && !Number.isInteger(fill)) {
      throw new InvalidArgumentError(`fillValue ${fill} is not an integer, but the array is ${dtype}`);
    }
    text = String(fill);
  }
  // Round-trip through parseFillValue so that an out-of-range fill is refused at create time.
  parseFillValue(JSON.parse(text), dtype, "fillValue");
  return JSON.stringify(doc).replace(JSON.stringify(FILL_PLACEHOLDER), text);
}

function withBytesCodec(codecs: readonly CodecMetadata[], endian: "little" | "big"): CodecMetadata[] {
  const list = codecs.map((c) => ({ name: c.name, configuration: c.configuration ?? {} }));
  if (list.some((c) => c.name === "bytes" || c.name === "sharding_indexed")) return list;
  // The array→bytes codec goes after the array→array codecs (transpose), before any compressor.
  let at = 0;
  while (at < list.length && list[at]?.name === "transpose") at++;
  list.splice(at, 0, { name: "bytes", configuration: { endian } });
  return list;
}

function v2CodecToV3(value: unknown, where: string): CodecMetadata {
  const { id, ...configuration } = asRecord(value, `${where} codec`);
  if (typeof id !== "string") bad(where, "every filter and compressor needs an id");
  return { name: `numcodecs.${id as string}`, configuration };
}

/** Parses a stored fill value into a raw element. */
export function parseFillValue(value: unknown, dtype: DataType, where: string): number | bigint {
  if (value === null || value === undefined) return dtype === "int64" || dtype === "uint64" ? 0n : 0;
  if (dtype === "bool") {
    if (typeof value === "boolean") return value ? 1 : 0;
    if (value === 0 || value === 1) return value;
    return bad(where, `fill_value ${JSON.stringify(value)} is not a boolean`);
  }
  if (dtype === "float32" || dtype === "float64") {
    if (typeof value === "number") return value;
    if (value === "NaN") return Number.NaN;
    if (value === "Infinity") return Number.POSITIVE_INFINITY;
    if (value === "-Infinity") return Number.NEGATIVE_INFINITY;
    if (typeof value === "string" && /^0x[0-9a-fA-F]+$/.test(value)) {
      const bits = BigInt(value);
      const view = new DataView(new ArrayBuffer(8));
      if (dtype === "float32") {
        view.setUint32(0, Number(bits));
        return view.getFloat32(0);
      }
      view.setBigUint64(0, bits);
      return view.getFloat64(0);
    }
    return bad(where, `fill_value ${JSON.stringify(value)} is not a float`);
  }
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return bad(where, `fill_value ${JSON.stringify(value)} is not an integer`);
  }
  if (dtype === "int64" || dtype === "uint64") return BigInt(value);
  const probe = new {
    int8: Int8Array,
    int16: Int16Array,
    int32: Int32Array,
    uint8: Uint8Array,
    uint16: Uint16Array,
    uint32: Uint32Array,
  }[dtype]([value]);
  if (probe[0] !== value) bad(where, `fill_value ${value} does not fit ${dtype}`);
  return value;
}

function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    bad(where, "expected a JSON object");
  return value as Record<string, unknown>;
}

function intList(value: unknown, name: string, where: string, min: number): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v) && v >= min)) {
    bad(where, `${name} must be a list of integers ≥ ${min}`);
  }
  return [...(value as number[])];
}

function checkIntList(value: unknown, name: string, min: number): void {
  if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v) && v >= min)) {
    throw new InvalidArgumentError(
      `${name} must be a list of integers ≥ ${min}, got ${JSON.stringify(value)}`,
    );
  }
}

function bad(where: string, why: string): never {
  throw new MetadataError("ERR_INVALID_METADATA", `${where}: ${why}. The metadata is corrupt or not Zarr.`);
}
