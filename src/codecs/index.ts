/**
 * Codecs on top of zarrita's codec registry.
 *
 * zarrita 0.7.5 registers gzip, zlib and crc32c codecs that decode but throw on encode, its crc32c
 * decoder drops the checksum without checking it, and it hands the Zarr v3 blosc configuration (where
 * `shuffle` is a name) to numcodecs.js, which expects a number and silently compresses without shuffle.
 * Its numcodecs `delta` filter ignores `astype` and the filter's byte order, and its `shuffle` filter
 * ignores `elementsize`, so some arrays zarr-python 2 writes read back wrong (see ./filters.ts).
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
import { type BlockCompressor, type BloscFrameOptions, writeBloscFrame, writesNatively } from "./blosc.js";
import { DeltaFilter, itemSizeOf, parseNumpyNumericType, ShuffleFilter } from "./filters.js";

export { DeltaFilter, type NumpyNumericType, parseNumpyNumericType, ShuffleFilter } from "./filters.js";

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

/** True on little-endian hosts (all of Node's usual ones), where 32-bit word loads give CRC byte order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

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
  if (LITTLE_ENDIAN && n >= 64) {
    // Bytewise up to a 4-byte boundary, then 8 bytes per step read as two 32-bit words (the host's
    // order is the CRC's: least significant byte first): twice the speed of eight byte loads.
    while (((bytes.byteOffset + i) & 3) !== 0) {
      crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
      i++;
    }
    const words = ((n - i) >>> 3) << 1;
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let k = 0; k < words; k += 2) {
      const lo = crc ^ w[k]!;
      const hi = w[k + 1]!;
      crc =
        t[1792 + (lo & 0xff)]! ^
        t[1536 + ((lo >>> 8) & 0xff)]! ^
        t[1280 + ((lo >>> 16) & 0xff)]! ^
        t[1024 + (lo >>> 24)]! ^
        t[768 + (hi & 0xff)]! ^
        t[512 + ((hi >>> 8) & 0xff)]! ^
        t[256 + ((hi >>> 16) & 0xff)]! ^
        t[hi >>> 24]!;
    }
    i += words * 4;
  }
  for (const end8 = n - ((n - i) % 8); i < end8; i += 8) {
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
  computeEncodedSize?(decodedSize: number): number;
};

/** A bytes-to-bytes registry entry around a numcodecs.js codec (or one of ./filters.ts). */
function bytesEntry(
  makeCodec: (config: Record<string, unknown>, meta: ZarritaChunkMetadata) => Bytes2Bytes,
): RegistryEntry {
  return {
    kind: "bytes_to_bytes",
    fromConfig(config: unknown, meta: ZarritaChunkMetadata): RegistryCodec {
      const codec = makeCodec((config ?? {}) as Record<string, unknown>, meta);
      const entry: RegistryCodec = {
        kind: "bytes_to_bytes",
        encode: (bytes: Uint8Array) => codec.encode(bytes),
        decode: (bytes: Uint8Array) => codec.decode(bytes),
      };
      if (codec.computeEncodedSize !== undefined) {
        const size = codec.computeEncodedSize.bind(codec);
        entry.computeEncodedSize = size;
      }
      return entry;
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
const deltaEntry = bytesEntry((config, meta) => DeltaFilter.fromConfig(config, meta));
const shuffleEntry = bytesEntry((config, meta) => ShuffleFilter.fromConfig(config, meta));

/** Blosc shuffle names of the Zarr v3 blosc codec, and the numbers numcodecs (and Zarr v2) use. */
const BLOSC_SHUFFLE: Readonly<Record<string, number>> = { noshuffle: 0, shuffle: 1, bitshuffle: 2 };

/**
 * The shuffle (0 none, 1 byte, 2 bit) a blosc configuration asks for. numcodecs' AUTOSHUFFLE (-1) is
 * resolved as numcodecs (Python) resolves it, bit shuffle for one-byte items and byte shuffle otherwise,
 * because numcodecs.js would pass -1 on to c-blosc, which then does not shuffle at all; no shuffle given
 * means byte shuffle (numcodecs' default).
 */
function bloscShuffle(shuffle: unknown, typesize: number): 0 | 1 | 2 {
  if (shuffle === undefined || shuffle === null) return 1;
  if (shuffle === -1) return typesize === 1 ? 2 : 1;
  if (shuffle === 0 || shuffle === 1 || shuffle === 2) return shuffle;
  if (typeof shuffle === "string" && Object.hasOwn(BLOSC_SHUFFLE, shuffle)) {
    return BLOSC_SHUFFLE[shuffle] as 0 | 1 | 2;
  }
  throw new Error(
    `blosc shuffle must be one of noshuffle, shuffle, bitshuffle, -1, 0, 1, 2; got ${JSON.stringify(shuffle)}`,
  );
}

/**
 * The blosc `typesize`: the configured one (Zarr v3). Without one (Zarr v2), the item size of the buffer
 * numcodecs' Blosc receives, which is what it compresses with: the chunk's item size, as changed by the
 * v2 filters before it (delta's `astype`; shuffle hands on plain bytes).
 */
function bloscTypesize(config: Record<string, unknown>, meta: ZarritaChunkMetadata): number {
  const { typesize } = config;
  if (typesize === undefined || typesize === null) {
    let size = itemSizeOf(meta.dataType);
    for (const codec of meta.codecs) {
      if (codec.name === "blosc" || codec.name === "numcodecs.blosc") break;
      const c = codec.configuration ?? {};
      if (codec.name === "numcodecs.shuffle") size = 1;
      else if (codec.name === "numcodecs.delta") {
        size = parseNumpyNumericType(c.astype ?? c.dtype ?? meta.dataType, "delta filter astype").size;
      }
    }
    return size;
  }
  if (!Number.isSafeInteger(typesize) || (typesize as number) < 1) {
    throw new Error(`blosc typesize must be an integer ≥ 1, got ${JSON.stringify(typesize)}`);
  }
  return typesize as number;
}

async function loadBloscEntry(): Promise<RegistryEntry> {
  // Loaded on first use only: the modules embed large WebAssembly binaries.
  const [{ default: Blosc }, { default: LZ4 }, { default: Zstd }] = await Promise.all([
    import("numcodecs/blosc"),
    import("numcodecs/lz4"),
    import("numcodecs/zstd"),
  ]);
  const lz4 = LZ4.fromConfig({ id: "lz4", acceleration: 1 });
  return bytesEntry((config, meta) => {
    const typesize = bloscTypesize(config, meta);
    const shuffle = bloscShuffle(config.shuffle, typesize);
    const cname = (config.cname as string | undefined) ?? "lz4";
    const clevel = (config.clevel as number | undefined) ?? 5;
    // numcodecs.js validates cname and clevel here, and decodes every frame (c-blosc reads them all).
    const wasm = Blosc.fromConfig({
      id: "blosc",
      cname,
      clevel,
      blocksize: config.blocksize as number | undefined,
      // Its frames always say typesize 4 and shuffle in 4-byte groups. A byte shuffle of one-byte items
      // is the identity, so for those it must not shuffle at all (4-byte groups compress ~3x worse).
      shuffle: shuffle === 1 && typesize === 1 ? 0 : shuffle,
    });
    const options: BloscFrameOptions = {
      cname,
      clevel,
      shuffle,
      typesize,
      blocksize: (config.blocksize as number | undefined) ?? 0,
    };
    const compressBlock = blockCompressor(cname, clevel, lz4, Zstd);
    // numcodecs.js's frames are right, and its shuffle is faster, when the typesize is 4 anyway; other
    // typesizes get frames written by ./blosc.ts where it can (lz4, lz4hc, zstd, zlib), and numcodecs.js's
    // frames (typesize 4) for blosclz and snappy.
    const native = typesize !== 4;
    return {
      encode: (bytes: Uint8Array) =>
        native && writesNatively(options, bytes.length)
          ? writeBloscFrame(bytes, options, compressBlock)
          : wasm.encode(bytes),
      decode: (bytes: Uint8Array) => wasm.decode(bytes),
    };
  });
}

type NumcodecsCodec = { encode(data: Uint8Array): Uint8Array | Promise<Uint8Array> };

/** Compresses one blosc block as c-blosc's compressors do: a raw LZ4 block, a zstd frame, a zlib stream. */
function blockCompressor(
  cname: string,
  clevel: number,
  lz4: NumcodecsCodec,
  Zstd: { fromConfig(config: { id: string; level?: number }): NumcodecsCodec },
): BlockCompressor {
  if (cname === "lz4" || cname === "lz4hc") {
    // numcodecs' LZ4 prefixes the block with its uncompressed size (4 bytes); blosc stores the bare block.
    // lz4hc frames hold the same block format, so the fast compressor writes them too.
    return async (block) => (await lz4.encode(block)).subarray(4);
  }
  if (cname === "zstd") {
    // Blosc levels 1–9 spread over zstd's 1–22, the strongest at 9.
    const zstd = Zstd.fromConfig({ id: "zstd", level: clevel < 9 ? Math.max(1, clevel * 2 - 1) : 22 });
    return (block) => zstd.encode(block);
  }
  const zlib = Zlib.fromConfig({ id: "zlib", level: clevel });
  return (block) => zlib.encode(block);
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
 * `blosc`, `numcodecs.blosc`, `numcodecs.delta`, `numcodecs.shuffle` and `bytes` with codecs that both
 * encode and decode as zarr-python and numcodecs do, so that plain zarrita and {@link loadCodecPipeline}
 * can write arrays that use them:
 * - gzip and zlib: numcodecs.js (fflate), honouring `level` (numcodecs' default 1 when absent);
 * - crc32c: CRC32C appended as 4 little-endian bytes (Zarr v3 spec); decode verifies it and throws
 *   `CodecError` `ERR_CODEC` on a mismatch;
 * - blosc: accepts the Zarr v3 shuffle names (`"shuffle"`...), which numcodecs.js would otherwise
 *   silently treat as no shuffle, and resolves AUTOSHUFFLE (-1) as numcodecs does. numcodecs.js can only
 *   write typesize 4, so frames of other typesizes (the configured one in v3, the item size numcodecs
 *   would see in v2) are written by ./blosc.ts for lz4, lz4hc, zstd and zlib: shuffled 2- and 8-byte
 *   data then compress as well as with zarr-python (up to 1.9x smaller than numcodecs.js's frames).
 *   blosclz and snappy stay with numcodecs.js's typesize-4 frames, which decode exactly everywhere but
 *   compress shuffled non-4-byte data less well. Decoding is numcodecs.js (c-blosc) for every frame;
 * - numcodecs.delta and numcodecs.shuffle (Zarr v2 filters): byte-exact numcodecs semantics, as
 *   bytes-to-bytes codecs on the stored bytes, honouring `dtype`, `astype` and `elementsize`
 *   ({@link DeltaFilter}, {@link ShuffleFilter});
 * - bytes: zarrita's codec, except that one-byte types (bool, int8, uint8, byte strings) ignore
 *   `endian`, which zarrita would otherwise apply to bools in groups of four bytes.
 *
 * zstd and lz4 stay zarrita's (numcodecs.js), which encode and decode; the Zarr v3 zstd `checksum` flag
 * is not written (frames are valid and decode everywhere, without the content checksum).
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
    .set("numcodecs.blosc", bloscFactory)
    .set("numcodecs.delta", async () => deltaEntry)
    .set("numcodecs.shuffle", async () => shuffleEntry);
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
    // Our own codecs already say precisely what is wrong (ERR_UNSUPPORTED for a valid but unsupported
    // configuration); keep their code.
    if (isZarrTxError(cause)) throw cause;
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
