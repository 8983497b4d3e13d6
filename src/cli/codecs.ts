/**
 * Compressor shorthands of `zarr-tx create --compressor`: `zstd`, `zstd:5`, `gzip:6`, `zlib:1`, `lz4`,
 * `blosc`, `blosc:zstd:5:bitshuffle`, `none`, turned into a v3 codec or a v2 compressor. Pure code.
 */
import { type DataType, itemSize } from "../array/dtype.js";
import type { CodecMetadata, V2CodecConfig } from "../array/metadata.js";
import { parseInteger, UsageError } from "./args.js";

/** A parsed compressor shorthand. */
export type Compressor =
  | { readonly id: "zstd" | "gzip" | "zlib"; readonly level: number }
  | { readonly id: "lz4"; readonly acceleration: number }
  | {
      readonly id: "blosc";
      readonly cname: string;
      readonly clevel: number;
      readonly shuffle: "noshuffle" | "shuffle" | "bitshuffle";
    };

const BLOSC_CNAMES = ["lz4", "lz4hc", "blosclz", "zstd", "zlib"];
const SHUFFLES = ["noshuffle", "shuffle", "bitshuffle"] as const;

/** The shorthand grammar, for help texts. */
export const COMPRESSOR_HELP =
  "none (default), zstd[:LEVEL], gzip[:LEVEL], zlib[:LEVEL], lz4[:ACCELERATION], or " +
  "blosc[:CNAME[:CLEVEL[:SHUFFLE]]] with CNAME lz4|lz4hc|blosclz|zstd|zlib and SHUFFLE noshuffle|shuffle|bitshuffle";

/**
 * Parses a shorthand; undefined for "none". Throws {@link UsageError} for unknown names, bad levels or
 * extra fields.
 */
export function parseCompressor(text: string): Compressor | undefined {
  const [name = "", ...rest] = text.trim().toLowerCase().split(":");
  const level = (index: number, fallback: number, range: { min: number; max: number }, what: string) => {
    const field = rest[index];
    return field === undefined || field === "" ? fallback : parseInteger(field, `${name} ${what}`, range);
  };
  const maxFields = (n: number) => {
    if (rest.length > n) throw new UsageError(`--compressor ${text}: too many fields (${COMPRESSOR_HELP})`);
  };
  switch (name) {
    case "none":
    case "":
      maxFields(0);
      return undefined;
    case "zstd":
      maxFields(1);
      return { id: "zstd", level: level(0, 3, { min: -131072, max: 22 }, "level") };
    case "gzip":
    case "zlib":
      maxFields(1);
      return { id: name, level: level(0, name === "gzip" ? 5 : 1, { min: 0, max: 9 }, "level") };
    case "lz4":
      maxFields(1);
      return { id: "lz4", acceleration: level(0, 1, { min: 1, max: 65537 }, "acceleration") };
    case "blosc": {
      maxFields(3);
      const cname = rest[0] === undefined || rest[0] === "" ? "lz4" : rest[0];
      if (!BLOSC_CNAMES.includes(cname)) {
        throw new UsageError(
          `blosc compressor ${JSON.stringify(cname)} is unknown; use one of ${BLOSC_CNAMES.join(", ")}`,
        );
      }
      const clevel = level(1, 5, { min: 0, max: 9 }, "clevel");
      const shuffleText = rest[2] === undefined || rest[2] === "" ? "shuffle" : rest[2];
      const byNumber = /^[0-2]$/.test(shuffleText) ? SHUFFLES[Number(shuffleText)] : undefined;
      const shuffle = byNumber ?? SHUFFLES.find((s) => s === shuffleText);
      if (shuffle === undefined)
        throw new UsageError(`blosc shuffle must be one of ${SHUFFLES.join(", ")} (or 0, 1, 2)`);
      return { id: "blosc", cname, clevel, shuffle };
    }
    default:
      throw new UsageError(`unknown compressor ${JSON.stringify(text)}; use ${COMPRESSOR_HELP}`);
  }
}

/** The Zarr v3 codec of a compressor (bytes-to-bytes). */
export function v3Codec(compressor: Compressor, dtype: DataType): CodecMetadata {
  switch (compressor.id) {
    case "zstd":
      return { name: "zstd", configuration: { level: compressor.level, checksum: false } };
    case "gzip":
    case "zlib":
      return { name: compressor.id, configuration: { level: compressor.level } };
    case "lz4":
      // No lz4 codec is in the v3 spec; zarr-python 3 names numcodecs' one like this.
      return { name: "numcodecs.lz4", configuration: { acceleration: compressor.acceleration } };
    case "blosc":
      return {
        name: "blosc",
        configuration: {
          cname: compressor.cname,
          clevel: compressor.clevel,
          shuffle: compressor.shuffle,
          typesize: itemSize(dtype),
          blocksize: 0,
        },
      };
  }
}

/** The Zarr v2 compressor of a compressor, as zarr-python 2 writes it. */
export function v2Compressor(compressor: Compressor): V2CodecConfig {
  switch (compressor.id) {
    case "zstd":
    case "gzip":
    case "zlib":
      return { id: compressor.id, level: compressor.level };
    case "lz4":
      return { id: "lz4", acceleration: compressor.acceleration };
    case "blosc":
      return {
        id: "blosc",
        cname: compressor.cname,
        clevel: compressor.clevel,
        shuffle: SHUFFLES.indexOf(compressor.shuffle),
        blocksize: 0,
      };
  }
}
