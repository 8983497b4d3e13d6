/**
 * The `sharding_indexed` codec (Zarr v3 sharding), for reading and writing whole shards.
 *
 * A shard is one stored object holding a grid of inner chunks. Layout, per the v3 sharding spec:
 * 1. Each present inner chunk is encoded with the inner `codecs` and the results are concatenated.
 * 2. The index lists, for every inner chunk in C order of the inner grid, a (offset, nbytes) pair of
 *    little-endian uint64 values; a missing inner chunk is (2^64−1, 2^64−1). The index is encoded with
 *    `index_codecs` (usually bytes + crc32c) and placed at the start or the end of the shard.
 * 3. An inner chunk equal to the fill value everywhere is not stored (left missing), and a shard with no
 *    inner chunk at all is not stored either: `encode` returns undefined and the caller deletes the key.
 *
 * This module imports nothing from the store, sync or array layers.
 */
import { CodecError, MetadataError } from "../errors.js";
import { cStrides } from "../strides.js";
import { type CodecPipeline, loadCodecPipeline } from "./index.js";

/** The configuration of a `sharding_indexed` codec, as in `zarr.json`. */
export interface ShardingConfiguration {
  readonly chunk_shape: readonly number[];
  readonly codecs: readonly { name: string; configuration?: Record<string, unknown> }[];
  readonly index_codecs?: readonly { name: string; configuration?: Record<string, unknown> }[];
  readonly index_location?: "start" | "end";
}

type AnyTyped = {
  readonly length: number;
  [index: number]: number | bigint;
  subarray(begin: number, end: number): AnyTyped;
  set(source: ArrayLike<number | bigint>, offset?: number): void;
  fill(value: number | bigint, start?: number, end?: number): AnyTyped;
};

/** A whole decoded shard in C order. */
export interface ShardChunk<T> {
  readonly data: T;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

const MISSING = 0xffffffffffffffffn;

/** Encodes and decodes whole shards of one array. */
export interface ShardCodec<T> {
  /** Decodes a stored shard into a C-order array of the shard's shape (missing inner chunks = fill). */
  decode(bytes: Uint8Array): Promise<ShardChunk<T>>;
  /** Encodes a shard; undefined when every inner chunk equals the fill value (nothing to store). */
  encode(chunk: ShardChunk<T>): Promise<Uint8Array | undefined>;
}

/**
 * Builds the shard codec of an array whose chunk grid has `shardShape` and whose single codec is
 * `sharding_indexed` with `config`. `allocate(n)` makes a zeroed typed array of the array's element type
 * (bool as Uint8Array), and `fillValue` is the raw fill element.
 *
 * @throws {MetadataError} `ERR_INVALID_METADATA` when the inner chunk shape does not divide the shard
 *   shape or the index pipeline has a data-dependent size; `CodecError` `ERR_UNKNOWN_CODEC` for an unknown
 *   inner or index codec.
 */
export async function loadShardCodec<T>(options: {
  readonly dataType: string;
  readonly shardShape: readonly number[];
  readonly fillValue: number | bigint;
  readonly config: ShardingConfiguration;
  readonly allocate: (length: number) => T;
}): Promise<ShardCodec<T>> {
  const { shardShape, config, fillValue } = options;
  const inner = [...(config.chunk_shape ?? [])];
  if (inner.length !== shardShape.length || inner.some((n, i) => !(n >= 1) || shardShape[i]! % n !== 0)) {
    throw new MetadataError(
      "ERR_INVALID_METADATA",
      `sharding_indexed chunk_shape [${inner}] must have one entry per dimension and divide the shard shape [${shardShape}]`,
    );
  }
  const indexLocation = config.index_location ?? "end";
  if (indexLocation !== "start" && indexLocation !== "end") {
    throw new MetadataError(
      "ERR_INVALID_METADATA",
      `sharding_indexed index_location must be "start" or "end"`,
    );
  }
  const innerPipeline = (await loadCodecPipeline({
    dataType: options.dataType as never,
    shape: inner,
    codecs: config.codecs.map((c) => ({ name: c.name, configuration: c.configuration ?? {} })),
    fillValue: fillValue as never,
  })) as unknown as CodecPipeline;
  const grid = shardShape.map((n, i) => n / inner[i]!);
  const innerCount = grid.reduce((a, b) => a * b, 1);
  const indexPipeline = (await loadCodecPipeline({
    dataType: "uint64",
    shape: [...grid, 2],
    codecs: (
      config.index_codecs ?? [{ name: "bytes", configuration: { endian: "little" } }, { name: "crc32c" }]
    ).map((c) => ({ name: c.name, configuration: c.configuration ?? {} })),
    fillValue: 0n as never,
  })) as unknown as CodecPipeline;
  let indexSize: number;
  try {
    indexSize = indexPipeline.computeEncodedSize(innerCount * 16);
  } catch (cause) {
    throw new MetadataError(
      "ERR_INVALID_METADATA",
      "sharding_indexed index_codecs must have a fixed encoded size",
      {
        cause,
      },
    );
  }
  const shardStrides = cStrides(shardShape);
  const innerStrides = cStrides(inner);
  const innerSize = inner.reduce((a, b) => a * b, 1);
  const shardSize = shardShape.reduce((a, b) => a * b, 1);

  /** Calls `fn(innerIndex, shardOffset)` for every inner chunk, with the shard offset of its first element. */
  const forEachInner = (fn: (innerIndex: number, shardOffset: number) => void): void => {
    const pos = new Array<number>(grid.length).fill(0);
    for (let n = 0; n < innerCount; n++) {
      let offset = 0;
      for (let axis = 0; axis < grid.length; axis++)
        offset += pos[axis]! * inner[axis]! * shardStrides[axis]!;
      fn(n, offset);
      for (let axis = grid.length - 1; axis >= 0; axis--) {
        if (++pos[axis]! < grid[axis]!) break;
        pos[axis] = 0;
      }
    }
  };

  /** Copies between an inner chunk (C order, inner shape) and its place in the shard, either way. */
  const transfer = (shard: AnyTyped, shardOffset: number, chunk: AnyTyped, intoShard: boolean): void => {
    const rank = inner.length;
    if (rank === 0) {
      if (intoShard) shard[shardOffset] = chunk[0]!;
      else chunk[0] = shard[shardOffset]!;
      return;
    }
    const rowLength = inner[rank - 1]!;
    const rows = innerSize / rowLength;
    const pos = new Array<number>(rank - 1).fill(0);
    for (let row = 0; row < rows; row++) {
      let s = shardOffset;
      for (let axis = 0; axis < rank - 1; axis++) s += pos[axis]! * shardStrides[axis]!;
      const c = row * rowLength;
      if (intoShard) shard.set(chunk.subarray(c, c + rowLength), s);
      else chunk.set(shard.subarray(s, s + rowLength), c);
      for (let axis = rank - 2; axis >= 0; axis--) {
        if (++pos[axis]! < inner[axis]!) break;
        pos[axis] = 0;
      }
    }
  };

  const isFill = (chunk: AnyTyped): boolean => {
    if (typeof fillValue === "number" && Number.isNaN(fillValue)) {
      for (let i = 0; i < chunk.length; i++) if (!Number.isNaN(chunk[i] as number)) return false;
      return true;
    }
    for (let i = 0; i < chunk.length; i++) if (chunk[i] !== fillValue) return false;
    return true;
  };

  return {
    async decode(bytes) {
      if (bytes.length < indexSize) throw new CodecError("ERR_CODEC", "shard is shorter than its index");
      const indexBytes =
        indexLocation === "start" ? bytes.slice(0, indexSize) : bytes.slice(bytes.length - indexSize);
      const index = (await indexPipeline.decode(indexBytes)).data as unknown as BigUint64Array;
      const shard = options.allocate(shardSize) as unknown as AnyTyped;
      if (fillValue !== 0 && fillValue !== 0n) shard.fill(fillValue);
      const pending: Promise<void>[] = [];
      forEachInner((n, shardOffset) => {
        const offset = index[2 * n]!;
        const nbytes = index[2 * n + 1]!;
        if (offset === MISSING && nbytes === MISSING) return;
        if (offset + nbytes > BigInt(bytes.length)) {
          throw new CodecError("ERR_CODEC", `shard index entry ${n} points past the end of the shard`);
        }
        const start = Number(offset);
        pending.push(
          innerPipeline.decode(bytes.slice(start, start + Number(nbytes))).then((decoded) => {
            const data = toC(
              decoded as unknown as ShardChunk<AnyTyped>,
              inner,
              innerStrides,
              options.allocate,
            );
            transfer(shard, shardOffset, data, true);
          }),
        );
      });
      await Promise.all(pending);
      return { data: shard as unknown as T, shape: [...shardShape], stride: shardStrides };
    },

    async encode(chunk) {
      const shard = chunk.data as unknown as AnyTyped;
      const parts: (Uint8Array | undefined)[] = new Array(innerCount);
      const pending: Promise<void>[] = [];
      forEachInner((n, shardOffset) => {
        const data = options.allocate(innerSize) as unknown as AnyTyped;
        transfer(shard, shardOffset, data, false);
        if (isFill(data)) return;
        pending.push(
          innerPipeline.encode({ data, shape: inner, stride: innerStrides } as never).then((encoded) => {
            parts[n] = encoded as Uint8Array;
          }),
        );
      });
      await Promise.all(pending);
      if (pending.length === 0) return undefined;
      const index = new BigUint64Array(innerCount * 2);
      let offset = indexLocation === "start" ? indexSize : 0;
      let total = 0;
      for (let n = 0; n < innerCount; n++) {
        const part = parts[n];
        if (!part) {
          index[2 * n] = MISSING;
          index[2 * n + 1] = MISSING;
          continue;
        }
        index[2 * n] = BigInt(offset);
        index[2 * n + 1] = BigInt(part.length);
        offset += part.length;
        total += part.length;
      }
      const indexBytes = await indexPipeline.encode({
        data: index,
        shape: [...grid, 2],
        stride: cStrides([...grid, 2]),
      } as never);
      const out = new Uint8Array(total + indexBytes.length);
      let at = indexLocation === "start" ? indexBytes.length : 0;
      for (const part of parts) {
        if (!part) continue;
        out.set(part, at);
        at += part.length;
      }
      out.set(indexBytes, indexLocation === "start" ? 0 : total);
      return out;
    },
  };
}

/** A decoded inner chunk in C order (it may come back in another memory order after a transpose codec). */
function toC<T>(
  decoded: ShardChunk<AnyTyped>,
  shape: readonly number[],
  strides: readonly number[],
  allocate: (length: number) => T,
): AnyTyped {
  const data = toRawData(decoded.data);
  if (decoded.stride.every((s, axis) => s === strides[axis] || shape[axis] === 1)) return data;
  const out = allocate(data.length) as unknown as AnyTyped;
  const size = data.length;
  const pos = new Array<number>(shape.length).fill(0);
  for (let n = 0; n < size; n++) {
    let src = 0;
    for (let axis = 0; axis < shape.length; axis++) src += pos[axis]! * decoded.stride[axis]!;
    out[n] = data[src]!;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      if (++pos[axis]! < shape[axis]!) break;
      pos[axis] = 0;
    }
  }
  return out;
}

/** zarrita decodes bool chunks to a BoolArray; the shard works on its bytes. */
function toRawData(data: unknown): AnyTyped {
  if (data instanceof Uint8Array || ArrayBuffer.isView(data)) return data as unknown as AnyTyped;
  const bool = data as { buffer: ArrayBuffer; byteOffset: number; length: number };
  return new Uint8Array(bool.buffer, bool.byteOffset, bool.length) as unknown as AnyTyped;
}
