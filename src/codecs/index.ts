/**
 * Codecs on top of zarrita's codec registry.
 *
 * zarrita 0.7.5 registers gzip, zlib and crc32c codecs that decode but throw on encode, its crc32c
 * decoder drops the checksum without checking it, and it hands the Zarr v3 blosc configuration (where
 * `shuffle` is a name) to numcodecs.js, which expects a number and silently compresses without shuffle.
 * {@link registerCodecs} replaces those entries with codecs that encode, decode and verify.
 * {@link loadCodecPipeline} builds an encode/decode pipeline from the same registry, eagerly, with
 * typed errors and exact-size buffers.
 */
import GZip from "numcodecs/gzip";
import Zlib from "numcodecs/zlib";
import {
  BoolArray,
  ByteStringArray,
  type Chunk,
  type CodecMetadata,
  type DataType,
  registry,
  type TypedArray,
  UnicodeStringArray,
} from "zarrita";
import { CodecError, isZarrTxError, MetadataError } from "../errors.js";

// zarrita does not export the type of a registry entry; derive it from the registry itself.
type RegistryFactory = Parameters<typeof registry.set>[1];
type RegistryEntry = Awaited<ReturnType<RegistryFactory>>;
type RegistryCodec = ReturnType<RegistryEntry["fromConfig"]>;
type ZarritaChunkMetadata = Parameters<RegistryEntry["fromConfig"]>[1];
type CodecKind = "array_to_array" | "array_to_bytes" | "bytes_to_bytes";

// ---------------------------------------------------------------------------------------------------
// CRC32C (Castagnoli), table-driven, slicing by 8.

/** The Castagnoli polynomial 0x1EDC6F41, bit-reversed (the CRC is computed least significant bit first). */
const CASTAGNOLI_REVERSED = 0x82f63b78;

/**
 * Eight 256-entry tables, one after the other: table 0 is the classic byte-at-a-time table, and table k
 * advances a byte's contribution by k more bytes, which lets the loop consume 8 bytes per step.
 */
const CRC_TABLES = (() => {
  const tables = new Uint32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI_REVERSED : c >>> 1;
    tables[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n] as number;
    for (let k = 1; k < 8; k++) {
      c = ((tables[c & 0xff] as number) ^ (c >>> 8)) >>> 0;
      tables[k * 256 + n] = c;
    }
  }
  return tables;
})();

/**
 * The CRC32C (Castagnoli) checksum of `bytes`, as an unsigned 32-bit number: the checksum of the Zarr v3
 * `crc32c` codec, iSCSI and ext4. `crc32c(utf8("123456789")) === 0xe3069283`.
 */
export function crc32c(bytes: Uint8Array): number {
  const t = CRC_TABLES;
  let crc = 0xffffffff;
  let i = 0;
  const n = bytes.length;
  // The non-null assertions below are safe: every index is < n, and table indices are < 256 * 8.
  for (const end8 = n - (n % 8); i < end8; i += 8) {
    const lo =
      (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    crc =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < n; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The Zarr v3 `crc32c` codec: appends the CRC32C of the data as 4 little-endian bytes, and checks it. */
class Crc32cCodec {
  readonly kind = "bytes_to_bytes";

  static fromConfig(): Crc32cCodec {
    return new Crc32cCodec();
  }

  encode(bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.length + 4);
    out.set(bytes);
    new DataView(out.buffer).setUint32(bytes.length, crc32c(bytes), true);
    return out;
  }

  decode(bytes: Uint8Array): Uint8Array {
    if (bytes.length < 4) {
      throw new CodecError("ERR_CODEC", `crc32c: ${bytes.length} bytes cannot hold a 4-byte checksum`);
    }
    const payload = bytes.subarray(0, bytes.length - 4);
    const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(
      payload.length,
      true,
    );
    const computed = crc32c(payload);
    if (stored !== computed) {
      throw new CodecError(
        "ERR_CODEC",
        `crc32c checksum mismatch: stored 0x${hex32(stored)}, computed 0x${hex32(computed)}; the data are damaged`,
      );
    }
    // A copy, not a view: a view would keep the checksum in the buffer, and zarrita's bytes codec
    // re-encodes `data.buffer` whole.
    return payload.slice();
  }

  computeEncodedSize(decodedSize: number): number {
    return decodedSize + 4;
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, "0");
}

// ---------------------------------------------------------------------------------------------------
// Registry entries.

type Bytes2Bytes = {
  encode(b: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decode(b: Uint8Array): Uint8Array | Promise<Uint8Array>;
};

/** A bytes-to-bytes registry entry around a numcodecs.js codec. */
function bytesEntry(makeCodec: (config: Record<string, unknown>) => Bytes2Bytes): RegistryEntry {
  return {
    kind: "bytes_to_bytes",
    fromConfig(config: unknown): RegistryCodec {
      const codec = makeCodec((config ?? {}) as Record<string, unknown>);
      return {
        kind: "bytes_to_bytes",
        encode: (bytes: Uint8Array) => codec.encode(bytes),
        decode: (bytes: Uint8Array) => codec.decode(bytes),
      };
    },
  };
}

function levelOf(config: Record<string, unknown>): number | undefined {
  const { level } = config;
  if (level === undefined || level === null) return undefined;
  if (typeof level !== "number") throw new Error(`level must be a number, got ${JSON.stringify(level)}`);
  return level;
}

const gzipEntry = bytesEntry((config) => GZip.fromConfig({ id: "gzip", level: levelOf(config) }));
const zlibEntry = bytesEntry((config) => Zlib.fromConfig({ id: "zlib", level: levelOf(config) }));
const crc32cEntry: RegistryEntry = {
  kind: "bytes_to_bytes",
  fromConfig: () => Crc32cCodec.fromConfig(),
};

/** Blosc shuffle names of the Zarr v3 blosc codec, and the numbers numcodecs (and Zarr v2) use. */
const BLOSC_SHUFFLE: Readonly<Record<string, number>> = { noshuffle: 0, shuffle: 1, bitshuffle: 2 };

function bloscShuffle(shuffle: unknown): number | undefined {
  if (shuffle === undefined || shuffle === null) return undefined;
  if (typeof shuffle === "number") return shuffle;
  if (typeof shuffle === "string" && shuffle in BLOSC_SHUFFLE) return BLOSC_SHUFFLE[shuffle];
  throw new Error(
    `blosc shuffle must be one of noshuffle, shuffle, bitshuffle, 0, 1, 2; got ${JSON.stringify(shuffle)}`,
  );
}

async function loadBloscEntry(): Promise<RegistryEntry> {
  // Loaded on first use only: the module embeds a large WebAssembly binary.
  const { default: Blosc } = await import("numcodecs/blosc");
  return bytesEntry((config) =>
    Blosc.fromConfig({
      id: "blosc",
      cname: config.cname as string | undefined,
      clevel: config.clevel as number | undefined,
      blocksize: config.blocksize as number | undefined,
      shuffle: bloscShuffle(config.shuffle),
    }),
  );
}

/**
 * Wraps zarrita's `bytes` entry so that one-byte data types ignore `endian`, as the Zarr v3 spec says.
 * zarrita sizes its byte swap from a static BYTES_PER_ELEMENT that BoolArray and ByteStringArray lack,
 * so with `endian: "big"` it would swap their bytes in groups of four and scramble the data.
 */
function oneByteSafeBytesEntry(original: RegistryFactory): RegistryFactory {
  return async () => {
    const entry = await original();
    return {
      kind: entry.kind ?? "array_to_bytes",
      fromConfig(config: unknown, meta: ZarritaChunkMetadata): RegistryCodec {
        const dataType = String(meta.dataType);
        const oneByte =
          dataType === "bool" || dataType === "int8" || dataType === "uint8" || dataType.startsWith("v2:S");
        return entry.fromConfig(
          oneByte ? { ...(config as object | undefined), endian: "little" } : config,
          meta,
        );
      },
    };
  };
}

let registered = false;

/**
 * Replaces zarrita's registry entries `gzip`, `zlib`, `crc32c`, `numcodecs.gzip`, `numcodecs.zlib`,
 * `blosc`, `numcodecs.blosc` and `bytes` with codecs that both encode and decode, so that plain zarrita and
 * {@link loadCodecPipeline} can write arrays that use them:
 * - gzip and zlib: numcodecs.js (fflate), honouring `level` (numcodecs' default 1 when absent);
 * - crc32c: CRC32C appended as 4 little-endian bytes (Zarr v3 spec); decode verifies it and throws
 *   `CodecError` `ERR_CODEC` on a mismatch;
 * - blosc: numcodecs.js, additionally accepting the Zarr v3 shuffle names (`"shuffle"`...), which
 *   numcodecs.js would otherwise silently treat as no shuffle;
 * - bytes: zarrita's codec, except that one-byte types (bool, int8, uint8, byte strings) ignore
 *   `endian`, which zarrita would otherwise apply to bools in groups of four bytes.
 *
 * Idempotent; it changes the process-wide `zarrita.registry`, overwriting any entry registered under
 * those names before. Throws nothing.
 */
export function registerCodecs(): void {
  if (registered) return;
  registered = true;
  const gzip = async () => gzipEntry;
  const zlib = async () => zlibEntry;
  let blosc: Promise<RegistryEntry> | undefined;
  const bloscFactory = () => {
    if (blosc === undefined) {
      blosc = loadBloscEntry();
      // A failed load is retried next time rather than cached forever.
      blosc.catch(() => {
        blosc = undefined;
      });
    }
    return blosc;
  };
  registry
    .set("gzip", gzip)
    .set("numcodecs.gzip", gzip)
    .set("zlib", zlib)
    .set("numcodecs.zlib", zlib)
    .set("crc32c", async () => crc32cEntry)
    .set("blosc", bloscFactory)
    .set("numcodecs.blosc", bloscFactory);
  const bytes = registry.get("bytes");
  if (bytes !== undefined) registry.set("bytes", oneByteSafeBytesEntry(bytes));
}

// ---------------------------------------------------------------------------------------------------
// The pipeline.

/** What a codec pipeline is built from: one chunk's data type and shape, and the codec list. */
export interface CodecPipelineMetadata<D extends DataType = DataType> {
  readonly dataType: D;
  readonly shape: readonly number[];
  readonly codecs: readonly CodecMetadata[];
  readonly fillValue: unknown;
}

/** Encodes chunks to stored bytes and back, through a fixed list of codecs. */
export interface CodecPipeline<D extends DataType = DataType> {
  /** The codec names, in metadata order. */
  readonly codecNames: readonly string[];
  /**
   * Encodes a chunk of the pipeline's shape. The chunk may be a view into a larger buffer and in any
   * memory order (its strides are honoured). The result never shares memory with `chunk.data`.
   *
   * @throws {CodecError} `ERR_CODEC` when the chunk has the wrong shape or a codec fails.
   */
  encode(chunk: Chunk<D>): Promise<Uint8Array>;
  /**
   * Decodes stored bytes into a chunk of the pipeline's shape. Its data own an exact-size buffer that
   * shares no memory with `bytes`; its strides say the memory order (C unless a transpose codec ran).
   *
   * @throws {CodecError} `ERR_CODEC` when a codec fails (e.g. a checksum mismatch) or the decoded size is wrong.
   */
  decode(bytes: Uint8Array): Promise<Chunk<D>>;
  /**
   * The encoded size of `decodedSize` bytes, for pipelines whose every codec has a fixed size (such as
   * bytes + crc32c, used for shard indexes).
   *
   * @throws {CodecError} `ERR_CODEC` when some codec's output size depends on the data.
   */
  computeEncodedSize(decodedSize: number): number;
}

type LoadedCodec = { name: string; codec: RegistryCodec };

/**
 * Builds the codec pipeline of one chunk from `zarrita.registry` (after {@link registerCodecs}, which it
 * calls). Every codec is resolved and configured now, so a bad codec list fails here rather than at the
 * first write. Ordering follows zarrita and the Zarr v3 spec: array-to-array codecs, then one
 * array-to-bytes codec (`bytes` little-endian when none is listed), then bytes-to-bytes codecs; decode
 * runs them in reverse. Codecs that declare no kind (numcodecs' blosc, zstd, lz4) are bytes-to-bytes.
 *
 * @throws {CodecError} `ERR_UNKNOWN_CODEC` when a codec name is not registered, `ERR_CODEC` when a codec
 *   module fails to load.
 * @throws {MetadataError} `ERR_INVALID_METADATA` when a codec rejects its configuration, when more than
 *   one array-to-bytes codec is listed, or when the data type needs an explicit array-to-bytes codec.
 */
export async function loadCodecPipeline<D extends DataType>(
  meta: CodecPipelineMetadata<D>,
): Promise<CodecPipeline<D>> {
  registerCodecs();
  const entries = await Promise.all(meta.codecs.map((codecMeta) => resolveEntry(codecMeta.name)));

  const shape = [...meta.shape];
  const elementCount = shape.reduce((a, b) => a * b, 1);
  let current: ZarritaChunkMetadata = {
    dataType: meta.dataType,
    shape,
    codecs: [...meta.codecs],
    fillValue: meta.fillValue as ZarritaChunkMetadata["fillValue"],
  };
  const arrayToArray: LoadedCodec[] = [];
  let arrayToBytes: LoadedCodec | undefined;
  const bytesToBytes: LoadedCodec[] = [];

  for (const [index, codecMeta] of meta.codecs.entries()) {
    const entry = entries[index] as RegistryEntry;
    const codec = configure(codecMeta, entry, current);
    const kind: CodecKind = codec.kind ?? entry.kind ?? "bytes_to_bytes";
    if (kind === "array_to_array") {
      arrayToArray.push({ name: codecMeta.name, codec });
      // A codec that changes the stored data type (cast_value) tells the next codecs what they get.
      if (codec.getEncodedMeta) current = codec.getEncodedMeta(current);
    } else if (kind === "array_to_bytes") {
      if (arrayToBytes !== undefined) {
        throw new MetadataError(
          "ERR_INVALID_METADATA",
          `codecs ${arrayToBytes.name} and ${codecMeta.name} are both array-to-bytes; a codec list has at most one`,
        );
      }
      arrayToBytes = { name: codecMeta.name, codec };
    } else {
      bytesToBytes.push({ name: codecMeta.name, codec });
    }
  }
  if (arrayToBytes === undefined) {
    if (current.dataType === "string" || current.dataType === "v2:object") {
      throw new MetadataError(
        "ERR_INVALID_METADATA",
        `data type ${current.dataType} needs an explicit array-to-bytes codec (such as vlen-utf8) in its codec list`,
      );
    }
    const bytesMeta: CodecMetadata = { name: "bytes", configuration: { endian: "little" } };
    arrayToBytes = { name: "bytes", codec: configure(bytesMeta, await resolveEntry("bytes"), current) };
  }
  // A chunk in another memory order must be made C-ordered before a bytes codec writes its memory out,
  // unless a transpose codec already puts it into the order the metadata asks for.
  const toCOrder = arrayToArray.some((c) => c.name === "transpose")
    ? undefined
    : configure(
        { name: "transpose", configuration: { order: "C" } },
        await resolveEntry("transpose"),
        current,
      );
  const a2b = arrayToBytes;

  return {
    codecNames: meta.codecs.map((c) => c.name),

    async encode(chunk: Chunk<D>): Promise<Uint8Array> {
      checkShape(chunk, shape, elementCount);
      let data: Chunk<D> = chunk;
      if (toCOrder !== undefined && !isCOrder(data)) {
        data = await step(
          "encode",
          "transpose",
          async () => (await toCOrder.encode(data as never)) as Chunk<D>,
        );
      }
      for (const { name, codec } of arrayToArray) {
        data = await step("encode", name, async () => (await codec.encode(data as never)) as Chunk<D>);
      }
      // zarrita's bytes codec encodes `data.buffer` whole, so hand it data that own an exact-size buffer.
      const exact = { ...data, data: ownedData(data.data) };
      let bytes = await step(
        "encode",
        a2b.name,
        async () => (await a2b.codec.encode(exact as never)) as Uint8Array,
      );
      for (const { name, codec } of bytesToBytes) {
        const input = bytes;
        bytes = await step("encode", name, async () => (await codec.encode(input)) as Uint8Array);
      }
      // Without a bytes-to-bytes codec the result can be the chunk's own buffer; never return that.
      if (sharesMemory(bytes, chunk.data)) bytes = bytes.slice();
      return bytes;
    },

    async decode(input: Uint8Array): Promise<Chunk<D>> {
      let bytes = input;
      for (let i = bytesToBytes.length - 1; i >= 0; i--) {
        const { name, codec } = bytesToBytes[i] as LoadedCodec;
        const current = bytes;
        bytes = await step("decode", name, async () => (await codec.decode(current)) as Uint8Array);
      }
      const encoded = bytes;
      let chunk = await step(
        "decode",
        a2b.name,
        async () => (await a2b.codec.decode(encoded)) as unknown as Chunk<D>,
      );
      for (let i = arrayToArray.length - 1; i >= 0; i--) {
        const { name, codec } = arrayToArray[i] as LoadedCodec;
        const current = chunk;
        chunk = await step("decode", name, async () => (await codec.decode(current as never)) as Chunk<D>);
      }
      if (chunk.data.length !== elementCount) {
        throw new CodecError(
          "ERR_CODEC",
          `decoded chunk has ${chunk.data.length} elements, expected ${elementCount} for shape [${shape.join(", ")}]; ` +
            "the stored object is damaged or was written with other codecs",
        );
      }
      // Decoded data are often a view of `input` or of a larger buffer; give the caller its own copy.
      return { data: ownedData(chunk.data, input.buffer), shape: chunk.shape, stride: chunk.stride };
    },

    computeEncodedSize(decodedSize: number): number {
      let size = decodedSize;
      for (const { name, codec } of [a2b, ...bytesToBytes]) {
        if (!codec.computeEncodedSize) {
          throw new CodecError("ERR_CODEC", `codec ${name} has no fixed encoded size`);
        }
        size = codec.computeEncodedSize(size);
      }
      return size;
    },
  };
}

async function resolveEntry(name: string): Promise<RegistryEntry> {
  const factory = registry.get(name);
  if (factory === undefined) {
    const hint =
      name === "sharding_indexed"
        ? " Sharding is not a chunk codec: build one pipeline from its configuration.codecs (inner chunks) and one from its index_codecs."
        : ` Register it with zarrita's registry.set(${JSON.stringify(name)}, ...) before opening the array.`;
    throw new CodecError(
      "ERR_UNKNOWN_CODEC",
      `unknown codec ${JSON.stringify(name)}: it is not in zarrita's codec registry.${hint} ` +
        `Registered: ${[...registry.keys()].sort().join(", ")}.`,
    );
  }
  try {
    return await factory();
  } catch (cause) {
    throw new CodecError("ERR_CODEC", `codec ${name} failed to load: ${messageOf(cause)}`, { cause });
  }
}

function configure(
  codecMeta: CodecMetadata,
  entry: RegistryEntry,
  meta: ZarritaChunkMetadata,
): RegistryCodec {
  try {
    return entry.fromConfig(codecMeta.configuration ?? {}, meta);
  } catch (cause) {
    throw new MetadataError(
      "ERR_INVALID_METADATA",
      `codec ${codecMeta.name} rejected its configuration ${JSON.stringify(codecMeta.configuration)}: ${messageOf(cause)}`,
      { cause },
    );
  }
}

/** Runs one codec step, turning any failure into a `CodecError` that names the codec and direction. */
async function step<T>(direction: "encode" | "decode", name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (cause) {
    if (isZarrTxError(cause)) throw cause;
    throw new CodecError("ERR_CODEC", `codec ${name} failed to ${direction}: ${messageOf(cause)}`, { cause });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function checkShape(chunk: Chunk<DataType>, shape: readonly number[], elementCount: number): void {
  const same = chunk.shape.length === shape.length && chunk.shape.every((d, i) => d === shape[i]);
  if (!same || chunk.data.length !== elementCount || chunk.stride.length !== shape.length) {
    throw new CodecError(
      "ERR_CODEC",
      `cannot encode a chunk of shape [${chunk.shape.join(", ")}] with ${chunk.data.length} elements and ` +
        `${chunk.stride.length} strides: this pipeline encodes chunks of shape [${shape.join(", ")}] (${elementCount} elements)`,
    );
  }
}

/** True when the strides are C order (row-major) for the shape; axes of length 1 may have any stride. */
function isCOrder(chunk: Chunk<DataType>): boolean {
  let expected = 1;
  for (let i = chunk.shape.length - 1; i >= 0; i--) {
    const dim = chunk.shape[i] as number;
    if (dim !== 1 && chunk.stride[i] !== expected) return false;
    expected *= dim;
  }
  return true;
}

type BufferView = { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };

function isBufferView(data: unknown): data is BufferView {
  return (
    typeof data === "object" &&
    data !== null &&
    "buffer" in data &&
    "byteOffset" in data &&
    "byteLength" in data
  );
}

function sharesMemory(a: Uint8Array, b: unknown): boolean {
  return isBufferView(b) && a.buffer === b.buffer;
}

// Typed array constructors to rebuild a copy of the same kind; Float16Array only where it exists.
const TYPED_ARRAYS: Array<new (buffer: ArrayBuffer) => ArrayBufferView> = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];
const Float16 = (globalThis as { Float16Array?: new (buffer: ArrayBuffer) => ArrayBufferView }).Float16Array;
if (Float16 !== undefined) TYPED_ARRAYS.push(Float16);

/**
 * `data` itself when it owns an exact-size buffer other than `avoid`; otherwise a copy of the same kind
 * that does. Plain JS arrays (object data types) are returned as they are.
 */
function ownedData<D extends DataType>(data: TypedArray<D>, avoid?: ArrayBufferLike): TypedArray<D> {
  if (!isBufferView(data)) return data;
  if (data.byteOffset === 0 && data.buffer.byteLength === data.byteLength && data.buffer !== avoid)
    return data;
  const copy = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer;
  let result: unknown;
  if (data instanceof BoolArray) result = new BoolArray(copy);
  else if (data instanceof ByteStringArray) result = new ByteStringArray(data.chars, copy);
  else if (data instanceof UnicodeStringArray) result = new UnicodeStringArray(data.chars, copy);
  else {
    const Ctor = TYPED_ARRAYS.find((C) => data instanceof C);
    if (Ctor === undefined) {
      throw new CodecError("ERR_CODEC", `unsupported chunk data ${Object.prototype.toString.call(data)}`);
    }
    result = new Ctor(copy);
  }
  return result as TypedArray<D>;
}
