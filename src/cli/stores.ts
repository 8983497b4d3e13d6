/**
 * Store URLs on the command line: a filesystem path, a `file://` URL, or `s3://bucket/prefix` (with
 * `--endpoint` for S3-compatible services). Each scheme has one opener in {@link OPENERS}; adding a
 * backend is adding one function there.
 */
import { fileURLToPath } from "node:url";
import { StoreError } from "../errors.js";
import { FileSystemStore } from "../store/filesystem.js";
import type { Store } from "../store/types.js";
import { UsageError } from "./args.js";

/** How a command wants its store. */
export interface StoreOptions {
  /** Refuse writes, and never create a missing root (info, get, verify). */
  readonly readOnly: boolean;
  /** `--endpoint` of an S3-compatible service; only for `s3://` URLs. */
  readonly endpoint?: string;
}

/** Opens the store a URL names. */
type StoreOpener = (url: URL, options: StoreOptions) => Promise<Store>;

const OPENERS: Readonly<Record<string, StoreOpener>> = {
  "file:": async (url, options) => openFileStore(fileUrlPath(url), options),
  "s3:": openS3Store,
};

/** The schemes {@link openStore} accepts besides plain paths. */
export const STORE_SCHEMES = Object.keys(OPENERS).map((scheme) => `${scheme}//`);

/**
 * Opens the store named by `location`: a path (`data.zarr`, `/mnt/x.zarr`), `file:///abs/path`, or
 * `s3://bucket/prefix`.
 *
 * @throws {UsageError} for an empty location, an unknown scheme, a malformed URL, or `--endpoint` with
 *   a store that is not S3.
 * @throws {StoreError} `ERR_UNSUPPORTED` for `s3://` (the S3 store is not built yet), `ERR_STORE_IO`
 *   when a filesystem root cannot be opened (missing, with a read-only command).
 */
export async function openStore(location: string, options: StoreOptions): Promise<Store> {
  if (location.trim() === "") throw new UsageError("the STORE argument is empty; give a path or a URL");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*:)\/\//.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (options.endpoint !== undefined) throw endpointMisused();
    return openFileStore(location, options);
  }
  const opener = OPENERS[scheme];
  if (opener === undefined) {
    throw new UsageError(
      `unsupported store URL scheme ${JSON.stringify(scheme)}; use a filesystem path, ${STORE_SCHEMES.join(" or ")}`,
    );
  }
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new UsageError(`malformed store URL ${JSON.stringify(location)}`);
  }
  if (scheme !== "s3:" && options.endpoint !== undefined) throw endpointMisused();
  return opener(url, options);
}

function endpointMisused(): UsageError {
  return new UsageError("--endpoint applies to s3:// stores only");
}

function fileUrlPath(url: URL): string {
  try {
    return fileURLToPath(url);
  } catch (error) {
    throw new UsageError(
      `${url.href} is not a usable file URL (${(error as Error).message}); use file:///absolute/path or a plain path`,
    );
  }
}

async function openFileStore(path: string, options: StoreOptions): Promise<Store> {
  return new FileSystemStore(path, { readOnly: options.readOnly });
}

/**
 * `s3://bucket/prefix`. The S3 store is not built yet: this validates the URL and fails with
 * `ERR_UNSUPPORTED`. When it lands, this function constructs it (bucket, prefix, endpoint), loading the
 * SDK lazily so that filesystem users never load it.
 */
async function openS3Store(url: URL, options: StoreOptions): Promise<Store> {
  if (url.hostname === "") throw new UsageError(`${url.href} names no bucket; use s3://bucket/prefix`);
  if (options.endpoint !== undefined) {
    try {
      new URL(options.endpoint);
    } catch {
      throw new UsageError(
        `--endpoint must be a URL such as http://127.0.0.1:9000, got ${JSON.stringify(options.endpoint)}`,
      );
    }
  }
  throw new StoreError(
    "ERR_UNSUPPORTED",
    "s3:// stores are not available in this version of zarr-tx yet (the S3 store is still being built); " +
      "use a filesystem path or a file:// URL",
  );
}
