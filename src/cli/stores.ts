/**
 * Store URLs on the command line: a filesystem path, a `file://` URL, or `s3://bucket/prefix` (with
 * `--endpoint`, `--region` and `--path-style` for S3-compatible services). Each scheme has one opener in
 * {@link OPENERS}; adding a backend is adding one function there.
 */
import { fileURLToPath } from "node:url";
import { FileSystemStore } from "../store/filesystem.js";
import type { Store } from "../store/types.js";
import { flag, type ParsedArgs, stringOption, UsageError } from "./args.js";

/** The S3 settings of the command line (`--endpoint`, `--region`, `--path-style`). */
export interface S3CliOptions {
  /** `--endpoint` of an S3-compatible service; only for `s3://` URLs. */
  readonly endpoint?: string;
  /** `--region` of the bucket; else the SDK's own (AWS_REGION, profile), else us-east-1 with an endpoint. */
  readonly region?: string;
  /** `--path-style`: address the bucket in the path (on by default with `--endpoint`). */
  readonly pathStyle?: boolean;
}

/** How a command wants its store. */
export interface StoreOptions extends S3CliOptions {
  /** Refuse writes, and never create a missing root (info, get, verify). */
  readonly readOnly: boolean;
}

/** The S3 options a command line gave (only those given), to spread into {@link StoreOptions}. */
export function s3OptionsOf(args: ParsedArgs): S3CliOptions {
  const endpoint = stringOption(args, "endpoint");
  const region = stringOption(args, "region");
  const pathStyle = flag(args, "path-style");
  return {
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(region !== undefined ? { region } : {}),
    ...(pathStyle ? { pathStyle } : {}),
  };
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
 * @throws {UsageError} for an empty location, an unknown scheme, a malformed URL, or S3 options with a
 *   store that is not S3.
 * @throws {StoreError} `ERR_STORE_IO` when a filesystem root cannot be opened (missing, with a read-only
 *   command); `ERR_INVALID_ARGUMENT` for a bad bucket name or prefix.
 */
export async function openStore(location: string, options: StoreOptions): Promise<Store> {
  if (location.trim() === "") throw new UsageError("the STORE argument is empty; give a path or a URL");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*:)\/\//.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (hasS3Options(options)) throw endpointMisused(options);
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
  if (scheme !== "s3:" && hasS3Options(options)) throw endpointMisused(options);
  return opener(url, options);
}

function hasS3Options(options: StoreOptions): boolean {
  return options.endpoint !== undefined || options.region !== undefined || options.pathStyle === true;
}

function endpointMisused(options: StoreOptions): UsageError {
  const name =
    options.endpoint !== undefined
      ? "--endpoint"
      : options.region !== undefined
        ? "--region"
        : "--path-style";
  return new UsageError(`${name} applies to s3:// stores only`);
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
 * `s3://bucket/prefix` as an {@link S3Store} (zarr-tx/s3, loaded only here, so that filesystem users
 * never load the AWS SDK). Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance or container roles), never from the command line.
 */
async function openS3Store(url: URL, options: StoreOptions): Promise<Store> {
  if (url.hostname === "") throw new UsageError(`${url.href} names no bucket; use s3://bucket/prefix`);
  if (url.username !== "" || url.password !== "") {
    throw new UsageError(
      "s3:// URLs take no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead",
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw new UsageError(`${url.href}: an s3:// URL is s3://bucket/prefix, with no query or fragment`);
  }
  let endpoint: string | undefined;
  if (options.endpoint !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(options.endpoint);
    } catch {
      throw new UsageError(
        `--endpoint must be a URL such as http://127.0.0.1:9000, got ${JSON.stringify(options.endpoint)}`,
      );
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new UsageError(`--endpoint must be an http:// or https:// URL, got ${parsed.protocol}`);
    }
    if (parsed.username !== "" || parsed.password !== "") {
      throw new UsageError(
        "--endpoint takes no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead",
      );
    }
    endpoint = parsed.href;
  }
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  // The SDK warns on Node 20 that its 2027 releases need Node 22: noise on every command's stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const { S3Store } = await import("../store/s3.js");
  return new S3Store({
    bucket: url.hostname,
    // URL parsing percent-encodes; the prefix is the decoded path.
    prefix: decodeURIComponent(url.pathname),
    readOnly: options.readOnly,
    config: {
      ...(endpoint !== undefined ? { endpoint } : {}),
      // S3-compatible services rarely resolve <bucket>.<host>, so an endpoint implies path style.
      forcePathStyle: options.pathStyle === true || endpoint !== undefined,
      // Without a region the SDK cannot sign; an S3-compatible service ignores it, AWS needs the right one.
      ...(region !== undefined ? { region } : endpoint !== undefined ? { region: "us-east-1" } : {}),
    },
  });
}
