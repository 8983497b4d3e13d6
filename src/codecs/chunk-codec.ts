/**
 * The codec of one stored object of an array, built from a plain description (so that a worker thread
 * can build the same codec): the codec pipeline, or the shard codec when the array is sharded.
 */
import { loadCodecPipeline } from "./index.js";
import { loadShardCodec, type ShardingConfiguration } from "./sharding.js";

/** One codec of a list, as in `zarr.json` (v2 filters and compressors named `numcodecs.<id>`). */
export interface CodecDescription {
  readonly name: string;
  readonly configuration?: Record<string, unknown>;
}

/** Everything needed to build a chunk codec; structured-cloneable, so it can cross to a worker. */
export interface ChunkCodecSpec {
  /** A zarr-tx data type: bool, int8…uint64, float32, float64. */
  readonly dataType: string;
  /** The shape of one stored object (a chunk, or a whole shard). */
  readonly chunkShape: readonly number[];
  /** The raw fill element (0/1 for bool, bigint for 64-bit integers). */
  readonly fillValue: number | bigint;
  readonly codecs: readonly CodecDescription[];
}

/** A chunk as codecs see it: typed data (bool as Uint8Array) with shape and element strides. */
export interface EncodableChunk {
  readonly data: ArrayBufferView;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/**
 * Encodes and decodes one stored object. `encode` returns undefined when the object need not be stored
 * (an all-fill shard); the caller then deletes the key.
 */
export interface ChunkCodec {
  encode(chunk: EncodableChunk): Promise<Uint8Array | undefined>;
  decode(bytes: Uint8Array): Promise<EncodableChunk>;
}

/** A typed array constructor: by length, or as a view on a buffer. */
export interface RawTypedArrayConstructor {
  new (length: number): ArrayBufferView;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): ArrayBufferView;
}

const CONSTRUCTORS: Record<string, RawTypedArrayConstructor> = {
  bool: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** The typed array constructor of a data type's raw elements (bool → Uint8Array). */
export function rawConstructor(dataType: string): RawTypedArrayConstructor {
  const ctor = CONSTRUCTORS[dataType];
  if (!ctor) throw new TypeError(`no typed array for data type ${dataType}`);
  return ctor;
}

/**
 * Builds the codec of one stored object. Every codec is resolved now, so an unknown codec fails here.
 *
 * @throws {CodecError} `ERR_UNKNOWN_CODEC` for an unregistered codec.
 * @throws {MetadataError} `ERR_INVALID_METADATA` for a codec configuration it rejects.
 */
export async function loadChunkCodec(spec: ChunkCodecSpec): Promise<ChunkCodec> {
  const sharding = spec.codecs[0]?.name === "sharding_indexed" ? spec.codecs[0] : undefined;
  if (sharding) {
    const Ctor = rawConstructor(spec.dataType);
    return (await loadShardCodec({
      dataType: spec.dataType,
      shardShape: spec.chunkShape,
      fillValue: spec.fillValue,
      config: sharding.configuration as unknown as ShardingConfiguration,
      allocate: (n) => new Ctor(n),
    })) as unknown as ChunkCodec;
  }
  return (await loadCodecPipeline({
    dataType: spec.dataType as never,
    shape: [...spec.chunkShape],
    codecs: spec.codecs.map((c) => ({ name: c.name, configuration: c.configuration ?? {} })),
    fillValue: spec.fillValue,
  })) as unknown as ChunkCodec;
}
