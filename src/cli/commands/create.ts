/** `zarr-tx create`: a new v3 or v2 array (codecs, compressor shorthands, sharding). */
import { type CreateOptions, create, normalizePath } from "../../array/array.js";
import { DATA_TYPES, type DataType, isDataType, toRawScalar } from "../../array/dtype.js";
import type { CodecMetadata, V2CodecConfig } from "../../array/metadata.js";
import { isZarrTxError, MetadataError } from "../../errors.js";
import {
  choiceOption,
  EXIT,
  flag,
  type ParsedArgs,
  parseIntList,
  stringOption,
  UsageError,
} from "../args.js";
import { COMPRESSOR_HELP, parseCompressor, v2Compressor, v3Codec } from "../codecs.js";
import { arrayPathOf, type Command, STORE_OPTIONS } from "../command.js";
import { openStore, s3OptionsOf } from "../stores.js";
import { SYNC_OPTIONS, syncConfigOf, withSynchronizer } from "../synchronizers.js";

function requiredString(args: ParsedArgs, name: string): string {
  const value = stringOption(args, name);
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

function parseJsonOption(args: ParsedArgs, name: string): unknown {
  const text = stringOption(args, name);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--${name} is not valid JSON: ${(error as Error).message}`);
  }
}

/** The fill value text as the data type wants it: true/false, NaN, big integers exactly. */
function parseFill(text: string, dtype: DataType): number | bigint | boolean {
  const t = text.trim();
  if (dtype === "bool") {
    if (t === "true" || t === "1") return true;
    if (t === "false" || t === "0") return false;
    throw new UsageError(`--fill of a bool array must be true or false, got ${JSON.stringify(text)}`);
  }
  if (dtype === "int64" || dtype === "uint64") {
    if (!/^-?\d+$/.test(t))
      throw new UsageError(`--fill of a ${dtype} array must be an integer, got ${JSON.stringify(text)}`);
    return BigInt(t);
  }
  const special: Record<string, number> = {
    nan: Number.NaN,
    inf: Infinity,
    infinity: Infinity,
    "-inf": -Infinity,
    "-infinity": -Infinity,
  };
  const value = special[t.toLowerCase()] ?? Number(t);
  if (t === "" || (Number.isNaN(value) && t.toLowerCase() !== "nan")) {
    throw new UsageError(`--fill must be a number, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** The fill value, range-checked against the dtype (a bad one is bad input: exit code 2). */
function checkedFill(text: string, dtype: DataType): number | bigint | boolean {
  const fill = parseFill(text, dtype);
  try {
    toRawScalar(dtype, fill);
  } catch (error) {
    throw new UsageError(`--fill ${text} does not fit ${dtype}: ${(error as Error).message}`);
  }
  return fill;
}

/** Builds the library's create options from the command line. Throws UsageError for bad combinations. */
export function createOptionsOf(args: ParsedArgs): CreateOptions {
  const shape = parseIntList(requiredString(args, "shape"), "--shape", 0);
  const chunks = parseIntList(requiredString(args, "chunks"), "--chunks", 1);
  const dtypeText = requiredString(args, "dtype");
  if (!isDataType(dtypeText))
    throw new UsageError(`--dtype must be one of ${DATA_TYPES.join(", ")}; got ${JSON.stringify(dtypeText)}`);
  const dtype: DataType = dtypeText;
  if (chunks.length !== shape.length) {
    throw new UsageError(`--chunks has ${chunks.length} dimensions but --shape has ${shape.length}`);
  }
  const zarrFormat = Number(choiceOption(args, "zarr-format", ["2", "3"], "3")) as 2 | 3;
  const compressorText = stringOption(args, "compressor");
  const compressor = compressorText === undefined ? undefined : parseCompressor(compressorText);
  const codecsJson = parseJsonOption(args, "codecs");
  const filtersJson = parseJsonOption(args, "filters");
  const attrs = parseJsonOption(args, "attrs");
  if (attrs !== undefined && (typeof attrs !== "object" || attrs === null || Array.isArray(attrs))) {
    throw new UsageError("--attrs must be a JSON object");
  }
  const shardText = stringOption(args, "shard");
  const fillText = stringOption(args, "fill");
  const endian = choiceOption(args, "endian", ["little", "big"], "little");
  const separatorText = stringOption(args, "dimension-separator");
  if (separatorText !== undefined && separatorText !== "/" && separatorText !== ".") {
    throw new UsageError('--dimension-separator must be "/" or "."');
  }
  const namesText = stringOption(args, "dimension-names");
  const base = {
    path: arrayPathOf(args),
    shape,
    dtype,
    overwrite: flag(args, "overwrite"),
    endian,
    ...(fillText !== undefined ? { fillValue: checkedFill(fillText, dtype) } : {}),
    ...(attrs !== undefined ? { attributes: attrs as Record<string, unknown> } : {}),
    ...(separatorText !== undefined ? { dimensionSeparator: separatorText as "/" | "." } : {}),
  };

  if (zarrFormat === 2) {
    for (const v3Only of ["codecs", "shard", "dimension-names", "crc32c"]) {
      if (args.values[v3Only] !== undefined)
        throw new UsageError(`--${v3Only} is a v3 option; drop it or use --zarr-format 3`);
    }
    if (filtersJson !== undefined && !Array.isArray(filtersJson)) {
      throw new UsageError('--filters must be a JSON list such as [{"id": "delta", "dtype": "<i4"}]');
    }
    return {
      ...base,
      zarrFormat: 2,
      chunkShape: chunks,
      compressor: compressor === undefined ? null : v2Compressor(compressor),
      ...(filtersJson !== undefined ? { filters: filtersJson as V2CodecConfig[] } : {}),
      order: choiceOption<"C" | "F">(args, "order", ["C", "F"], "C"),
    };
  }

  for (const v2Only of ["filters", "order"]) {
    if (args.values[v2Only] !== undefined)
      throw new UsageError(`--${v2Only} is a v2 option; use --zarr-format 2`);
  }
  let codecs: CodecMetadata[];
  if (codecsJson !== undefined) {
    if (compressor !== undefined || flag(args, "crc32c") || shardText !== undefined) {
      throw new UsageError(
        "--codecs gives the whole codec list; do not combine it with --compressor, --crc32c or --shard",
      );
    }
    if (!Array.isArray(codecsJson))
      throw new UsageError('--codecs must be a JSON list such as [{"name": "bytes"}]');
    codecs = codecsJson as CodecMetadata[];
  } else {
    codecs = [{ name: "bytes", configuration: { endian } }];
    if (compressor !== undefined) codecs.push(v3Codec(compressor, dtype));
    if (flag(args, "crc32c")) codecs.push({ name: "crc32c", configuration: {} });
  }
  let chunkShape = chunks;
  if (shardText !== undefined) {
    const shard = parseIntList(shardText, "--shard", 1);
    if (shard.length !== chunks.length)
      throw new UsageError(`--shard has ${shard.length} dimensions but --chunks has ${chunks.length}`);
    shard.forEach((n, axis) => {
      if (n % chunks[axis]! !== 0) {
        throw new UsageError(
          `--shard ${shard.join(",")} is not a whole multiple of --chunks ${chunks.join(",")} (dimension ${axis})`,
        );
      }
    });
    codecs = [
      {
        name: "sharding_indexed",
        configuration: {
          chunk_shape: chunks,
          codecs,
          index_codecs: [
            { name: "bytes", configuration: { endian: "little" } },
            { name: "crc32c", configuration: {} },
          ],
          index_location: "end",
        },
      },
    ];
    chunkShape = shard;
  }
  return {
    ...base,
    zarrFormat: 3,
    chunkShape,
    codecs,
    ...(namesText !== undefined ? { dimensionNames: namesText.split(",").map((s) => s.trim()) } : {}),
  };
}

/** `zarr-tx create`. */
export const command: Command = {
  name: "create",
  summary: "Create an array: shape, chunks, dtype, codecs or compressor, sharding, Zarr v3 or v2.",
  usage: ["create STORE --path PATH --shape N,… --chunks N,… --dtype TYPE [options]"],
  description: [
    "Writes the array's metadata under the array's metadata lock (exclusive), so a concurrent create " +
      "through the same synchronizer cannot interleave. An existing array is an error unless --overwrite " +
      "(its chunks are deleted). The codecs are tried on an empty chunk first: nothing is written when they cannot encode.",
    `Compressor shorthands: ${COMPRESSOR_HELP}. With --shard, --chunks is the inner chunk shape and each ` +
      "stored object is one shard (the lock unit); the shard index gets a crc32c checksum.",
  ],
  options: {
    ...STORE_OPTIONS,
    shape: { type: "string", value: "N,…", help: "the array's shape, e.g. 365,720 (required)" },
    chunks: {
      type: "string",
      value: "N,…",
      help: "the chunk shape (the inner chunk shape with --shard) (required)",
    },
    dtype: { type: "string", value: "TYPE", help: `${DATA_TYPES.join(", ")} (required)` },
    fill: {
      type: "string",
      value: "VALUE",
      help: "fill value of missing chunks (default 0 / false); NaN, inf allowed",
    },
    "zarr-format": { type: "string", value: "2|3", help: "Zarr format (default 3)" },
    compressor: {
      type: "string",
      value: "SPEC",
      help: "compressor shorthand, e.g. zstd:5 or blosc:lz4:5:shuffle",
    },
    crc32c: { type: "boolean", help: "v3: append a crc32c checksum codec" },
    codecs: {
      type: "string",
      value: "JSON",
      help: "v3: the whole codec list as JSON (instead of --compressor)",
    },
    shard: { type: "string", value: "N,…", help: "v3: shard shape (a multiple of --chunks): write sharded" },
    filters: {
      type: "string",
      value: "JSON",
      help: 'v2: filters as JSON, e.g. [{"id":"delta","dtype":"<i4"}]',
    },
    order: { type: "string", value: "C|F", help: "v2: memory order of chunks (default C)" },
    endian: { type: "string", value: "little|big", help: "byte order of stored elements (default little)" },
    "dimension-separator": {
      type: "string",
      value: "/|.",
      help: "chunk key separator (default / for v3, . for v2)",
    },
    "dimension-names": { type: "string", value: "A,…", help: "v3: names of the dimensions" },
    attrs: { type: "string", value: "JSON", help: "attributes as a JSON object" },
    overwrite: { type: "boolean", help: "replace an existing array at the path (its chunks are deleted)" },
    ...SYNC_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  examples: [
    "zarr-tx create data.zarr -p temps --shape 365,720 --chunks 30,90 --dtype float32 --compressor zstd:3",
    "zarr-tx create data.zarr -p legacy --zarr-format 2 --shape 100 --chunks 10 --dtype int16 --compressor blosc:lz4:5",
    "zarr-tx create data.zarr -p big --shape 1000,1000 --chunks 10,10 --shard 100,100 --dtype uint8 --crc32c",
  ],
  async run({ args, out }) {
    const options = createOptionsOf(args);
    const sync = syncConfigOf(args);
    const store = await openStore(args.positionals[0]!, {
      readOnly: false,
      ...s3OptionsOf(args),
    });
    const array = await withSynchronizer(sync, (synchronizer) =>
      create(store, { ...options, synchronizer }),
    ).catch((error: unknown) => {
      if (!isZarrTxError(error, "ERR_ARRAY_EXISTS")) throw error;
      // The library's message speaks of the API option; say the flag.
      throw new MetadataError(
        "ERR_ARRAY_EXISTS",
        `an array already exists at ${normalizePath(options.path)} in ${store.id}; pass --overwrite to replace it (its chunks are deleted)`,
        { cause: error },
      );
    });
    const meta = array.metadata;
    const inner =
      meta.codecs[0]?.name === "sharding_indexed"
        ? (meta.codecs[0].configuration?.chunk_shape as number[])
        : undefined;
    out.result(
      [
        `created ${array.path} in ${store.id}`,
        `  zarr v${meta.zarrFormat}, ${meta.dtype}, shape [${meta.shape.join(", ")}], ` +
          (inner
            ? `shards [${meta.chunkShape.join(", ")}] of chunks [${inner.join(", ")}]`
            : `chunks [${meta.chunkShape.join(", ")}]`),
        `  codecs ${meta.codecs.map((c) => c.name).join(" → ")}`,
      ],
      {
        store: store.id,
        path: array.path,
        zarrFormat: meta.zarrFormat,
        shape: meta.shape,
        chunks: meta.chunkShape,
        ...(inner ? { innerChunks: inner } : {}),
        dtype: meta.dtype,
        fillValue: array.fillValue,
        codecs: meta.codecs,
      },
    );
    return EXIT.ok;
  },
};
