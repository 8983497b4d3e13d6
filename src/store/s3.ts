/**
 * A store in an S3 bucket (AWS S3 or any S3-compatible service), built on `@aws-sdk/client-s3`. Import it
 * from `zarr-tx/s3`; this is the only module that loads the AWS SDK.
 *
 * Each store key `/a/b` is the object `<prefix>/a/b` of the bucket. A PUT replaces an object atomically
 * and is durable once S3 acknowledges it; ETags are the versions of conditional writes (`If-Match`,
 * `If-None-Match: *`), which is what fences a writer whose lease expired (see docs/s3.md).
 */
import {
  CopyObjectCommand,
  type CopyObjectCommandInput,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { ConflictError, InvalidArgumentError, isZarrTxError, StoreError } from "../errors.js";
import { assertBytes, assertValidKey, assertValidPrefix, copyBytes, resolveRange } from "./keys.js";
import type {
  AbsolutePath,
  KeyValue,
  RangeQuery,
  Store,
  StoreCapabilities,
  StoreGetOptions,
  VersionedValue,
  WriteCondition,
} from "./types.js";

export type { S3Client, S3ClientConfig };

/** Options of {@link S3Store}. */
export interface S3StoreOptions {
  /** The bucket. It must exist: the store never creates buckets. */
  readonly bucket: string;
  /**
   * Where the store lives inside the bucket: `"zarr/data.zarr"` keeps every object under
   * `zarr/data.zarr/`. Leading and trailing slashes are ignored; `""` (default) is the bucket's root.
   */
  readonly prefix?: string;
  /**
   * A client the caller made and owns (`close()` leaves it open). Give this or `config`, not both. With a
   * custom endpoint, also give {@link S3StoreOptions.endpoint}, so that the store's `id` names it.
   */
  readonly client?: S3Client;
  /**
   * SDK configuration for a client the store makes and owns (closed by `close()`): `endpoint` and
   * `forcePathStyle` for S3-compatible services, `region`, `credentials`, `maxAttempts`,
   * `retryStrategy`, `requestHandler`. Without `requestHandler`, each attempt times out after
   * {@link S3StoreOptions.requestTimeoutMs}.
   */
  readonly config?: S3ClientConfig;
  /**
   * The endpoint URL, used for the store's `id` only, when `client` has a custom endpoint (a client does
   * not reveal it synchronously). Ignored with `config`, whose `endpoint` is used.
   */
  readonly endpoint?: string;
  /** Refuse every write with `ERR_STORE_READ_ONLY`. Default false. */
  readonly readOnly?: boolean;
  /** How many PUTs `setMany` runs at once. Default 8. */
  readonly maxConcurrency?: number;
  /** `MaxKeys` of each LIST page (1..1000). Default 1000, S3's maximum. */
  readonly listPageSize?: number;
  /**
   * Per-attempt timeout of the client the store makes from `config` without a `requestHandler`, in ms:
   * the time from sending a request (its upload included) to the start of the reply. An attempt that
   * takes longer is abandoned and retried by the SDK's retry strategy. Default 30 000; raise it for
   * chunks of many MB on slow links.
   */
  readonly requestTimeoutMs?: number;
}

const CAPABILITIES: StoreCapabilities = Object.freeze({
  atomicReplace: true,
  durable: true,
  conditionalWrite: true,
  createIfAbsent: true,
  copy: true,
  rename: false,
  cheapList: false,
});

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Re-sends of a conditional write after 409 ConditionalRequestConflict whose condition still holds. */
const CONFLICT_RETRIES = 3;

/** What an S3 error says about itself, without anything secret (see {@link describeS3Error}). */
interface S3ErrorInfo {
  readonly name: string;
  readonly status: number | undefined;
  readonly attempts: number;
  readonly requestId: string | undefined;
  readonly networkCode: string | undefined;
  /** The message of an error raised in this process (no HTTP status: missing credentials or region). */
  readonly localMessage?: string;
}

/** Anything shaped like an AWS access key id or a long secret-looking token. */
const SECRET_LIKE = /\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b|[A-Za-z0-9/+=]{32,}/g;

/**
 * The parts of an SDK error that are safe to show. SDK errors can carry the access key id and the string
 * to sign (SignatureDoesNotMatch replies echo them), so nothing else of them is kept: not the message,
 * not the object itself as a `cause`.
 */
function describeS3Error(error: unknown): S3ErrorInfo {
  const e = (typeof error === "object" && error !== null ? error : {}) as {
    name?: unknown;
    code?: unknown;
    $metadata?: { httpStatusCode?: unknown; attempts?: unknown; requestId?: unknown };
    cause?: { code?: unknown };
    message?: unknown;
  };
  const meta = e.$metadata ?? {};
  const networkCode =
    typeof e.code === "string" ? e.code : typeof e.cause?.code === "string" ? e.cause.code : undefined;
  return {
    name: typeof e.name === "string" ? e.name.replace(/[^\w.-]/g, "").slice(0, 64) : "Error",
    status: typeof meta.httpStatusCode === "number" ? meta.httpStatusCode : undefined,
    attempts: typeof meta.attempts === "number" ? meta.attempts : 1,
    requestId:
      typeof meta.requestId === "string" ? meta.requestId.replace(/[^\w.-]/g, "").slice(0, 64) : undefined,
    networkCode: networkCode?.replace(/[^\w.-]/g, "").slice(0, 32),
    // A server's reply can echo credentials (SignatureDoesNotMatch), so only local errors keep their
    // message: "Could not load credentials from any providers", "Region is missing". Redacted anyway.
    ...(typeof meta.httpStatusCode !== "number" && networkCode === undefined && typeof e.message === "string"
      ? { localMessage: e.message.replace(SECRET_LIKE, "***").slice(0, 300) }
      : {}),
  };
}

const ACCESS_DENIED = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AllAccessDisabled",
  "AccountProblem",
]);

function isNotFoundKey(info: S3ErrorInfo): boolean {
  // HEAD has no body, so a missing key is a bare 404 "NotFound"; GET says NoSuchKey.
  return info.name === "NoSuchKey" || info.name === "NotFound";
}

/** Splits a user prefix into its canonical form ("" or "a/b"), rejecting what could escape or collide. */
function canonicalPrefix(prefix: unknown): string {
  if (prefix === undefined) return "";
  if (typeof prefix !== "string") {
    throw new InvalidArgumentError(
      `S3 prefix must be a string, got ${Object.prototype.toString.call(prefix)}`,
    );
  }
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "";
  try {
    assertValidKey(`/${trimmed}`);
  } catch (error) {
    throw new InvalidArgumentError(
      `S3 prefix ${JSON.stringify(prefix)} is not usable: ${(error as Error).message.replace(/^invalid store key [^:]*: /, "")}`,
    );
  }
  return trimmed;
}

/** Bucket names as S3 defines them (3–63 characters of lowercase letters, digits, dots and hyphens). */
function checkBucket(bucket: unknown): string {
  if (typeof bucket !== "string" || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new InvalidArgumentError(
      `S3 bucket must be a bucket name (3-63 lowercase letters, digits, "." or "-"), got ${JSON.stringify(bucket)}`,
    );
  }
  return bucket;
}

/** host[:port] of an endpoint given as a string, a URL or an SDK endpoint object; no user info, ever. */
function endpointHost(endpoint: unknown): string | undefined {
  if (typeof endpoint === "string" || endpoint instanceof URL) {
    try {
      return new URL(String(endpoint)).host.toLowerCase() || undefined;
    } catch {
      throw new InvalidArgumentError("S3 endpoint must be a URL such as http://127.0.0.1:9000");
    }
  }
  if (typeof endpoint === "object" && endpoint !== null && "hostname" in endpoint) {
    const { hostname, port } = endpoint as { hostname?: unknown; port?: unknown };
    if (typeof hostname !== "string") return undefined;
    return `${hostname.toLowerCase()}${port === undefined ? "" : `:${String(port)}`}`;
  }
  return undefined;
}

function positiveInteger(
  value: unknown,
  name: string,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}, got ${String(value)}`);
  }
  return value;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** A plain, exact-size Uint8Array: the SDK's bytes may be a view into a larger pooled buffer. */
function exact(bytes: Uint8Array): Uint8Array {
  if (
    bytes.byteOffset === 0 &&
    bytes.buffer.byteLength === bytes.length &&
    Object.getPrototypeOf(bytes) === Uint8Array.prototype
  ) {
    return bytes;
  }
  return copyBytes(bytes);
}

/**
 * A {@link Store} in an S3 bucket under a prefix, for AWS S3 and S3-compatible services (MinIO, Ceph,
 * R2, fauxqs…: set `endpoint` and `forcePathStyle` in `config`).
 *
 * Guarantees:
 * - `set` is one PUT: atomic (readers see the old or the new object, never a mix) and durable once it
 *   resolves. `get`/`getRange`/`getVersioned` return fresh exact-size Uint8Arrays; `getRange` takes
 *   offsets and suffixes and clamps to the object like the other stores (a server that ignores a range
 *   or refuses a suffix longer than the object is handled too).
 * - `getVersioned` returns the ETag as the version. `setIf`/`createIfAbsent`/`copy` with a condition
 *   send `If-Match`/`If-None-Match: *` and throw `ConflictError` on 412 PreconditionFailed, on a 409
 *   ConditionalRequestConflict whose condition no longer holds (one that still holds is re-sent), and on
 *   404 for an `If-Match` on a deleted object. When the SDK had re-sent a conditional write (its first
 *   reply was lost), a 412 or 409 is checked before it is reported: if the object holds exactly the
 *   bytes written, the write is taken as done.
 * - `list` follows every page (`ListObjectsV2` with continuation tokens) and returns store keys sorted;
 *   objects under the prefix whose names are not valid store keys are skipped.
 * - Throttling, 5xx, timeouts and dropped connections are retried by the SDK's retry strategy
 *   (`maxAttempts`, `retryStrategy` in `config`).
 * - `id` is `s3://<endpoint host>/<bucket>/<prefix>` (`amazonaws.com` as host on AWS), the same in every
 *   process that opens the same bucket and prefix. No error message, `cause` or `id` contains
 *   credentials or endpoint user info.
 *
 * Throws `StoreError`: `ERR_INVALID_KEY` for invalid keys (before any request), `ERR_STORE_READ_ONLY`
 * from writes to a read-only store, `ERR_STORE_ACCESS_DENIED` on 403 (credentials or IAM policy),
 * `ERR_STORE_NOT_FOUND` when the bucket does not exist, `ERR_STORE_IO` for everything else once retries
 * are spent (a failed write leaves the object old or new, never partial); `ConflictError` as above;
 * `InvalidArgumentError` for bad options, values or ranges.
 */
export class S3Store implements Store {
  readonly id: string;
  readonly readOnly: boolean;
  readonly capabilities: StoreCapabilities = CAPABILITIES;
  /** The bucket. */
  readonly bucket: string;
  /** The canonical prefix inside the bucket: "" or segments joined by "/" (no leading or trailing "/"). */
  readonly prefix: string;
  /** The SDK client (the caller's, or the one made from `config`). */
  readonly client: S3Client;
  readonly #ownsClient: boolean;
  readonly #concurrency: number;
  readonly #pageSize: number;
  #closed = false;
  /** HeadBucket answered once: a bare 404 of a HEAD then means a missing key. */
  #bucketSeen = false;

  /**
   * @throws {InvalidArgumentError} for a bad bucket name or prefix, both or neither of `client` and
   *   `config`, a client with a custom endpoint but no `endpoint` option, or bad numbers.
   */
  constructor(options: S3StoreOptions) {
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError("S3Store needs options: { bucket, prefix?, client | config }");
    }
    this.bucket = checkBucket(options.bucket);
    this.prefix = canonicalPrefix(options.prefix);
    this.readOnly = options.readOnly ?? false;
    this.#concurrency = positiveInteger(options.maxConcurrency, "maxConcurrency", DEFAULT_CONCURRENCY, 1000);
    this.#pageSize = positiveInteger(options.listPageSize, "listPageSize", 1000, 1000);
    const timeoutMs = positiveInteger(
      options.requestTimeoutMs,
      "requestTimeoutMs",
      DEFAULT_REQUEST_TIMEOUT_MS,
    );
    if ((options.client === undefined) === (options.config === undefined)) {
      throw new InvalidArgumentError(
        "give S3Store exactly one of `client` (an S3Client) and `config` (its options)",
      );
    }
    let host: string | undefined;
    if (options.client !== undefined) {
      if (!(options.client instanceof S3Client)) {
        throw new InvalidArgumentError("`client` must be an S3Client from @aws-sdk/client-s3");
      }
      this.client = options.client;
      this.#ownsClient = false;
      host = endpointHost(options.endpoint);
      const custom = (this.client.config as { isCustomEndpoint?: boolean }).isCustomEndpoint === true;
      if (custom && host === undefined) {
        throw new InvalidArgumentError(
          "this S3Client has a custom endpoint: pass it as the `endpoint` option too, so that the store's id " +
            "(and hence its lock keys) names the service",
        );
      }
    } else {
      const config = options.config as S3ClientConfig;
      host = endpointHost(config.endpoint);
      if (config.endpoint !== undefined && host === undefined) {
        throw new InvalidArgumentError(
          "config.endpoint must be a URL string (or URL) so that the store's id names the service",
        );
      }
      this.client = new S3Client({
        ...config,
        // A hung connection must not hang a transaction forever: each attempt gives up and is retried.
        // (throwOnRequestTimeout: without it this SDK only logs a warning when the time is up.)
        requestHandler: config.requestHandler ?? {
          requestTimeout: timeoutMs,
          connectionTimeout: Math.min(timeoutMs, 10_000),
          throwOnRequestTimeout: true,
        },
      });
      this.#ownsClient = true;
    }
    // Bucket names are unique per AWS partition, so the host is only needed to tell services apart.
    this.id = `s3://${host ?? "amazonaws.com"}/${this.bucket}${this.prefix === "" ? "" : `/${this.prefix}`}`;
  }

  /** The bytes stored at `key` (a fresh, exact-size copy), or undefined when missing. */
  async get(key: AbsolutePath, options?: StoreGetOptions): Promise<Uint8Array | undefined> {
    assertValidKey(key);
    const result = await this.#getObject(key, undefined, options?.signal);
    return result?.value;
  }

  /**
   * A byte range of the object at `key`, clamped to the object like the other stores; undefined when the
   * object is missing. Throws `InvalidArgumentError` for a negative or fractional range.
   */
  async getRange(
    key: AbsolutePath,
    range: RangeQuery,
    options?: StoreGetOptions,
  ): Promise<Uint8Array | undefined> {
    assertValidKey(key);
    // Validate before any request, so a bad range fails the same way whether or not the key exists.
    resolveRange(range, 0);
    let header: string;
    if ("suffixLength" in range) {
      // "bytes=-0" is unsatisfiable everywhere; ask for one byte to learn whether the object exists.
      header = range.suffixLength === 0 ? "bytes=0-0" : `bytes=-${range.suffixLength}`;
    } else {
      const last = range.length === 0 ? range.offset : range.offset + range.length - 1;
      header = `bytes=${range.offset}-${last}`;
    }
    const result = await this.#getObject(key, header, options?.signal);
    if (result === undefined) return undefined;
    if (result.unsatisfiable) {
      // 416: the object exists but no byte is in range, except that some servers also refuse a suffix
      // longer than the object (RFC 9110 says: the whole object). Read it whole then, and cut.
      if (!("suffixLength" in range) || range.suffixLength === 0) return new Uint8Array(0);
      const whole = await this.#getObject(key, undefined, options?.signal);
      if (whole === undefined) return undefined;
      const { start, end } = resolveRange(range, whole.value.length);
      return whole.value.slice(start, end);
    }
    if (result.partial === undefined) {
      // A server that ignored the Range header sent the whole object (200): cut it here.
      const { start, end } = resolveRange(range, result.value.length);
      return result.value.slice(start, end);
    }
    const empty = "suffixLength" in range ? range.suffixLength === 0 : range.length === 0;
    if (empty) return new Uint8Array(0);
    return result.value;
  }

  /** Replaces the object at `key` with a copy of `value` (one PUT: atomic, durable when it resolves). */
  async set(key: AbsolutePath, value: Uint8Array): Promise<void> {
    this.#checkWrite(key);
    assertBytes(value, key);
    // Copy first: the SDK reads the body later, and the caller may change its array meanwhile.
    await this.#put(key, copyBytes(value), undefined);
  }

  /** Deletes the object at `key`; a missing key is a no-op (S3 answers 204 either way). */
  async delete(key: AbsolutePath): Promise<void> {
    this.#checkWrite(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#objectKey(key) }));
    } catch (error) {
      throw this.#error("delete", key, error);
    }
  }

  /**
   * Deletes every key (missing ones are no-ops) with DeleteObjects, up to 1,000 keys per request, instead
   * of one request each. Throws `StoreError` naming the first key S3 could not delete.
   */
  async deleteMany(keys: readonly AbsolutePath[]): Promise<void> {
    for (const key of keys) this.#checkWrite(key);
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000);
      let failed: { Key?: string; Code?: string; Message?: string } | undefined;
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.#objectKey(key) })), Quiet: true },
          }),
        );
        failed = out.Errors?.[0];
      } catch (error) {
        throw this.#error("delete", batch[0]!, error);
      }
      if (failed) {
        throw new StoreError(
          "ERR_STORE_IO",
          `delete of ${failed.Key ?? "?"} in ${this.id} failed: ${failed.Code ?? "error"} ${failed.Message ?? ""}`.trim(),
        );
      }
    }
  }

  /**
   * Every key under `prefix` ("" for all), sorted by UTF-16 code units like the other stores, following
   * every LIST page. Objects whose names are not valid store keys (written by other tools) are skipped.
   */
  async list(prefix: string): Promise<AbsolutePath[]> {
    assertValidPrefix(prefix);
    const base = this.prefix === "" ? "" : `${this.prefix}`;
    // "" and "/" both mean the whole store; otherwise the store prefix maps one to one.
    const s3Prefix =
      base === "" ? (prefix === "" ? "" : prefix.slice(1)) : prefix === "" ? `${base}/` : `${base}${prefix}`;
    const strip = base.length;
    const keys: AbsolutePath[] = [];
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: s3Prefix,
            MaxKeys: this.#pageSize,
            ContinuationToken: token,
          }),
        );
      } catch (error) {
        throw this.#error("list", prefix === "" ? "/" : prefix, error);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        const key = base === "" ? `/${object.Key}` : object.Key.slice(strip);
        if (!key.startsWith(prefix === "" ? "/" : prefix)) continue;
        try {
          assertValidKey(key);
        } catch {
          continue;
        }
        keys.push(key);
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  }

  /** The bytes at `key` (a fresh copy) with their ETag as the version, or undefined when missing. */
  async getVersioned(key: AbsolutePath): Promise<VersionedValue | undefined> {
    assertValidKey(key);
    const result = await this.#getObject(key, undefined, undefined);
    if (result === undefined) return undefined;
    return { value: result.value, version: result.etag };
  }

  /** The ETag of `key` without its bytes (a HEAD), or undefined when missing. */
  async version(key: AbsolutePath): Promise<string | undefined> {
    assertValidKey(key);
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.#objectKey(key) }),
      );
      return this.#etagOf(head.ETag, "HEAD", key);
    } catch (error) {
      const info = describeS3Error(error);
      if (isNotFoundKey(info)) {
        // A HEAD's 404 has no body: it may mean the bucket is missing. Ask the bucket, not the key.
        await this.#assertBucket(key);
        return undefined;
      }
      throw this.#error("head", key, error);
    }
  }

  /**
   * Writes a copy of `value` only if the object is still at `condition.ifVersion` (`If-Match`) or does not
   * exist (`ifAbsent`: `If-None-Match: *`), and returns the new ETag.
   *
   * @throws {ConflictError} when the condition does not hold; nothing was written then.
   */
  async setIf(key: AbsolutePath, value: Uint8Array, condition: WriteCondition): Promise<string> {
    this.#checkWrite(key);
    assertBytes(value, key);
    checkCondition(condition);
    return this.#put(key, copyBytes(value), condition);
  }

  /**
   * Creates `key` with a copy of `value` only if no object is there (`If-None-Match: *`): of racing
   * creators exactly one wins. Durable when it resolves.
   *
   * @throws {ConflictError} when the key exists; nothing was written then.
   */
  async createIfAbsent(key: AbsolutePath, value: Uint8Array): Promise<void> {
    this.#checkWrite(key);
    assertBytes(value, key);
    await this.#put(key, copyBytes(value), { ifAbsent: true });
  }

  /**
   * Writes every entry, up to `maxConcurrency` PUTs at once (entries with `ifAbsent` as
   * `createIfAbsent`). Every key and value is checked before the first request. After a failure the
   * other writes still finish (each object is whole, old or new); then the first `ConflictError`, or else
   * the first other error, is thrown.
   */
  async setMany(entries: readonly KeyValue[]): Promise<void> {
    if (!Array.isArray(entries)) throw new InvalidArgumentError("setMany takes an array of { key, value }");
    for (const entry of entries) {
      this.#checkWrite(entry.key);
      assertBytes(entry.value, entry.key);
    }
    const copies = entries.map((e) => ({
      key: e.key,
      value: copyBytes(e.value),
      ifAbsent: e.ifAbsent === true,
    }));
    const errors: unknown[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const entry = copies[next++];
        if (entry === undefined) return;
        try {
          await this.#put(entry.key, entry.value, entry.ifAbsent ? { ifAbsent: true } : undefined);
        } catch (error) {
          errors.push(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, copies.length) }, worker));
    if (errors.length > 0) throw errors.find((e) => isZarrTxError(e, "ERR_CONFLICT")) ?? errors[0];
  }

  /**
   * Copies the object at `from` to `to` inside the bucket (server-side CopyObject: no download), under an
   * optional condition on the target (`If-Match` / `If-None-Match: *` on the destination, which S3
   * evaluates atomically with the copy), and returns the target's new ETag; undefined when `from` is
   * missing (nothing copied). Objects over 5 GiB cannot be copied in one request (never a chunk).
   *
   * @throws {ConflictError} when the condition does not hold; nothing was copied then.
   */
  async copy(from: AbsolutePath, to: AbsolutePath, condition?: WriteCondition): Promise<string | undefined> {
    assertValidKey(from);
    this.#checkWrite(to);
    if (condition !== undefined) checkCondition(condition);
    const source = `${this.bucket}/${this.#objectKey(from).split("/").map(encodeURIComponent).join("/")}`;
    for (let retry = 0; ; retry++) {
      const input: CopyObjectCommandInput = {
        Bucket: this.bucket,
        Key: this.#objectKey(to),
        CopySource: source,
        ...conditionHeaders(condition),
      };
      try {
        const out = await this.client.send(new CopyObjectCommand(input));
        return this.#etagOf(out.CopyObjectResult?.ETag, "copy", to);
      } catch (error) {
        const info = describeS3Error(error);
        if (info.name === "NoSuchBucket") throw this.#error("copy", to, error);
        if (info.status === 404 || info.name === "NoSuchKey") {
          // 404 names either a missing source or (If-Match) a missing target: tell them apart.
          const sourceThere = (await this.#getObject(from, undefined, undefined)) !== undefined;
          if (!sourceThere) return undefined;
          if (condition !== undefined && "ifVersion" in condition) throw new ConflictError(to);
          throw this.#error("copy", to, error);
        }
        if (condition === undefined || !isConditionFailure(info)) throw this.#error("copy", to, error);
        let outcome: string;
        try {
          outcome = await this.#afterConditionFailure(to, condition, info, retry, async () => {
            const copied = await this.#getObject(from, undefined, undefined);
            return copied?.value;
          });
        } catch (conflict) {
          // A missing source wins over a failed condition, whichever the service checked first.
          if (isZarrTxError(conflict, "ERR_CONFLICT") && (await this.version(from)) === undefined)
            return undefined;
          throw conflict;
        }
        // "retry": the condition still holds after a 409; send again.
        if (outcome !== "retry") return outcome;
      }
    }
  }

  /**
   * Closes the client the store made from `config` (a client passed in stays open). Later calls fail
   * with `ERR_STORE_IO`. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsClient) this.client.destroy();
  }

  // -------------------------------------------------------------------------------------------------

  #objectKey(key: AbsolutePath): string {
    return this.prefix === "" ? key.slice(1) : `${this.prefix}${key}`;
  }

  #checkWrite(key: AbsolutePath): void {
    assertValidKey(key);
    if (this.readOnly) {
      throw new StoreError("ERR_STORE_READ_ONLY", `cannot write ${key}: the store ${this.id} is read-only`);
    }
  }

  #etagOf(etag: string | undefined, what: string, key: string): string {
    if (etag === undefined || etag === "") {
      throw new StoreError(
        "ERR_STORE_IO",
        `the S3 service returned no ETag for the ${what} of ${key} in ${this.id}; conditional writes need ` +
          "an S3-compatible service that returns ETags",
      );
    }
    return etag;
  }

  /** One GET (optionally ranged). Undefined when the key is missing; `unsatisfiable` on 416. */
  async #getObject(
    key: AbsolutePath,
    range: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<
    | { value: Uint8Array; etag: string; partial: string | undefined; unsatisfiable?: false }
    | { value: Uint8Array; etag: string; partial: undefined; unsatisfiable: true }
    | undefined
  > {
    signal?.throwIfAborted();
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.#objectKey(key), Range: range }),
        signal === undefined ? undefined : { abortSignal: signal },
      );
    } catch (error) {
      const info = describeS3Error(error);
      if (info.name === "NoSuchKey" || (info.status === 404 && info.name !== "NoSuchBucket"))
        return undefined;
      if (info.status === 416 || info.name === "InvalidRange") {
        return { value: new Uint8Array(0), etag: "", partial: undefined, unsatisfiable: true };
      }
      if (signal?.aborted) throw signal.reason;
      throw this.#error("get", key, error);
    }
    let bytes: Uint8Array;
    try {
      bytes = out.Body === undefined ? new Uint8Array(0) : await out.Body.transformToByteArray();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw this.#error("get", key, error);
    }
    return { value: exact(bytes), etag: out.ETag ?? "", partial: out.ContentRange };
  }

  /** One PUT, conditional or not; returns the new ETag. */
  async #put(key: AbsolutePath, body: Uint8Array, condition: WriteCondition | undefined): Promise<string> {
    for (let retry = 0; ; retry++) {
      const input: PutObjectCommandInput = {
        Bucket: this.bucket,
        Key: this.#objectKey(key),
        Body: body,
        ContentLength: body.length,
        ContentType: "application/octet-stream",
        ...conditionHeaders(condition),
      };
      try {
        const out = await this.client.send(new PutObjectCommand(input));
        return this.#etagOf(out.ETag, "PUT", key);
      } catch (error) {
        const info = describeS3Error(error);
        if (condition === undefined) throw this.#error("put", key, error);
        const missingTarget = "ifVersion" in condition && (info.name === "NoSuchKey" || info.status === 404);
        if (!isConditionFailure(info) && !(missingTarget && info.name !== "NoSuchBucket")) {
          throw this.#error("put", key, error);
        }
        const outcome = await this.#afterConditionFailure(key, condition, info, retry, async () => body);
        if (outcome !== "retry") return outcome;
      }
    }
  }

  /**
   * Decides what a refused conditional write means. Returns the ETag when the write did happen after all
   * (the SDK re-sent it after a lost reply, and the object holds exactly our bytes), "retry" when a 409
   * came but the condition still holds, and throws `ConflictError` otherwise.
   */
  async #afterConditionFailure(
    key: AbsolutePath,
    condition: WriteCondition,
    info: S3ErrorInfo,
    retry: number,
    expected: () => Promise<Uint8Array | undefined>,
  ): Promise<string | "retry"> {
    const resent = info.attempts > 1;
    const conflict409 = info.status === 409;
    if (!resent && !conflict409) throw new ConflictError(key, conflictMessage(key, condition));
    const current = await this.#getObject(key, undefined, undefined);
    if (resent && current !== undefined) {
      const wanted = await expected();
      if (wanted !== undefined && equalBytes(current.value, wanted)) return current.etag;
    }
    if (conflict409 && retry < CONFLICT_RETRIES) {
      const holds = "ifAbsent" in condition ? current === undefined : current?.etag === condition.ifVersion;
      if (holds) {
        // A concurrent operation on the key made S3 refuse; back off a little and send again.
        await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** retry + Math.random() * 10));
        return "retry";
      }
    }
    throw new ConflictError(key, conflictMessage(key, condition));
  }

  /**
   * Throws `ERR_STORE_NOT_FOUND` when the bucket is missing; used to read a bare 404. Asked once per
   * store: a bucket that existed is taken to exist (were it deleted, the next GET or PUT would say so).
   */
  async #assertBucket(key: string): Promise<void> {
    if (this.#bucketSeen) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.#bucketSeen = true;
    } catch (error) {
      const info = describeS3Error(error);
      if (info.status === 404) throw this.#error("head", key, error, { ...info, name: "NoSuchBucket" });
      throw this.#error("head", key, error);
    }
  }

  /** A typed, credential-free error for a failed request. */
  #error(operation: string, key: string, error: unknown, info = describeS3Error(error)): StoreError {
    if (isZarrTxError(error)) return error as StoreError;
    const where = `${operation} of ${key} in ${this.id}`;
    const detail =
      `${info.name}${info.status === undefined ? "" : ` (HTTP ${info.status})`}` +
      `${info.networkCode === undefined ? "" : ` [${info.networkCode}]`}, after ${info.attempts} attempt(s)` +
      `${info.requestId === undefined ? "" : `, request id ${info.requestId}`}` +
      `${info.localMessage === undefined ? "" : `: ${info.localMessage}`}`;
    // The cause is the safe summary, never the SDK error itself (see describeS3Error).
    const cause = { cause: { ...info } };
    if (this.#closed) {
      return new StoreError("ERR_STORE_IO", `S3 ${where} failed: the store was closed (${detail})`, cause);
    }
    if (info.status === 403 || ACCESS_DENIED.has(info.name)) {
      return new StoreError(
        "ERR_STORE_ACCESS_DENIED",
        `S3 refused the ${where}: ${detail}. Check the credentials (environment, profile or config) and ` +
          "that the IAM policy allows s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on " +
          "this bucket and prefix (docs/s3.md lists them).",
        cause,
      );
    }
    if (info.name === "NoSuchBucket") {
      return new StoreError(
        "ERR_STORE_NOT_FOUND",
        `the bucket ${JSON.stringify(this.bucket)} does not exist at this endpoint (${where}: ${detail}). ` +
          "Create it first, or fix the bucket name, endpoint or region.",
        cause,
      );
    }
    if (
      info.status === 301 ||
      info.name === "PermanentRedirect" ||
      info.name === "AuthorizationHeaderMalformed"
    ) {
      return new StoreError(
        "ERR_STORE_IO",
        `S3 ${where} failed: ${detail}. The bucket is in another region: set \`region\` to the bucket's region.`,
        cause,
      );
    }
    const hint =
      info.name === "TimeoutError" || info.networkCode === "ETIMEDOUT"
        ? " The service did not answer in time on any attempt; the write, if it was one, may or may not have happened."
        : info.status !== undefined && info.status >= 500
          ? " The service kept failing; retry later (the SDK already retried)."
          : info.networkCode !== undefined
            ? " The endpoint could not be reached; check the endpoint URL and the network."
            : "";
    return new StoreError("ERR_STORE_IO", `S3 ${where} failed: ${detail}.${hint}`, cause);
  }
}

function checkCondition(condition: unknown): asserts condition is WriteCondition {
  const c = condition as { ifVersion?: unknown; ifAbsent?: unknown } | null;
  const ok =
    typeof c === "object" &&
    c !== null &&
    ((typeof c.ifVersion === "string" && c.ifVersion !== "" && !("ifAbsent" in c)) ||
      (c.ifAbsent === true && !("ifVersion" in c)));
  if (!ok) {
    throw new InvalidArgumentError(
      'a write condition is { ifVersion: "<etag>" } or { ifAbsent: true }, got ' + JSON.stringify(condition),
    );
  }
}

function conditionHeaders(condition: WriteCondition | undefined): { IfMatch?: string; IfNoneMatch?: string } {
  if (condition === undefined) return {};
  return "ifAbsent" in condition ? { IfNoneMatch: "*" } : { IfMatch: condition.ifVersion };
}

function isConditionFailure(info: S3ErrorInfo): boolean {
  return (
    info.status === 412 ||
    info.status === 409 ||
    info.name === "PreconditionFailed" ||
    info.name === "ConditionalRequestConflict"
  );
}

function conflictMessage(key: string, condition: WriteCondition): string {
  return "ifAbsent" in condition
    ? `${key} already exists; the write was refused and nothing was written`
    : `${key} changed since it was read (its ETag is no longer ${condition.ifVersion}); the write was refused and nothing was written`;
}
