/**
 * A throw-away S3-compatible server for tests and benchmarks: fauxqs 1.9.2 (an in-memory S3 emulator
 * from npm, started in this process on a free port) behind a small HTTP proxy on 127.0.0.1 that
 *
 * - emulates what fauxqs lacks, following AWS's documented semantics (docs/s3.md lists them exactly):
 *   conditional writes (`If-Match`, `If-None-Match: *` on PutObject and on CopyObject's destination:
 *   412 PreconditionFailed, 404 NoSuchKey for `If-Match` on a missing key, 409 ConditionalRequestConflict
 *   when another write of the key is in flight), and ListObjectsV2 in UTF-8 byte order with pagination
 *   (fauxqs sorts with localeCompare but pages by code units, which loses keys);
 * - checks the access key id of every request (403 InvalidAccessKeyId for another one, echoing it like
 *   AWS does, so tests can check that no credential leaks into errors);
 * - counts requests by operation (every attempt, retries included);
 * - injects faults: an error reply (500 InternalError, 503 SlowDown, 403 AccessDenied…), a hang (no
 *   reply until the client gives up), a lost reply (the request is applied, then answered with a 500 or
 *   a reset connection).
 *
 *   const s3 = await startS3Server();           // afterAll: await s3.stop()
 *   const bucket = s3.createBucket();
 *   new S3Store({ bucket, prefix: "p", config: s3.clientConfig() });
 */
import { randomBytes, randomUUID } from "node:crypto";
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { startFauxqs } from "fauxqs";

/** The S3 operations the proxy tells apart (path-style requests only). */
export type S3Operation =
  | "GetObject"
  | "HeadObject"
  | "PutObject"
  | "CopyObject"
  | "DeleteObject"
  | "DeleteObjects"
  | "ListObjectsV2"
  | "ListObjects"
  | "HeadBucket"
  | "CreateBucket"
  | "DeleteBucket"
  | "ListBuckets"
  | "Other";

/** What an injected fault does to a matching request. */
export type S3Fault =
  /** Answer with this error at once; the request never reaches the server. */
  | { readonly kind: "error"; readonly status: number; readonly code: string; readonly message?: string }
  /** Never answer; the connection stays open until the client gives up (its request timeout). */
  | { readonly kind: "hang" }
  /** Apply the request, then answer with an error (default 500 InternalError) instead of the reply. */
  | { readonly kind: "lost-reply"; readonly status?: number; readonly code?: string }
  /** Apply the request, then reset the connection instead of replying. */
  | { readonly kind: "reset" };

/** Which requests a fault hits, and how many times. */
export interface FaultRule {
  /** Only these operations (default: every operation). */
  readonly op?: S3Operation | readonly S3Operation[];
  /** Only object keys (full keys, prefix included) that match. */
  readonly key?: string | RegExp;
  /** How many matching requests it hits (default 1; Infinity for all). */
  readonly times?: number;
  readonly fault: S3Fault;
}

/** A running server. */
export interface S3TestServer {
  /** The proxy's endpoint, `http://127.0.0.1:<port>`: point clients here. */
  readonly endpoint: string;
  /** fauxqs itself, bypassing the proxy (no emulation, no counting, no faults). */
  readonly backendEndpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** SDK options for the proxy: endpoint, path style, region, credentials, plus `overrides`. */
  clientConfig(overrides?: Partial<S3ClientConfig>): S3ClientConfig;
  /** A client straight to fauxqs, for ground truth that bypasses the store and the proxy. */
  readonly rawClient: S3Client;
  /** Creates a bucket (a fresh random name when none is given) and returns its name. */
  createBucket(name?: string): string;
  /** Requests received by the proxy since the last reset, by operation (every attempt counts). */
  counts(): Record<string, number>;
  /** Sum of `counts()`. */
  total(): number;
  resetCounts(): void;
  /** Adds a fault rule; returns a function that removes it. */
  inject(rule: FaultRule): () => void;
  clearFaults(): void;
  /** How many requests injected faults hit so far. */
  readonly faultsHit: number;
  /** Conditional writes the emulation refused so far (412, 409, or 404 for If-Match on a missing key). */
  readonly conditionFailures: number;
  /** Stops the proxy (ending hung requests) and fauxqs. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startS3Server}. */
export interface S3ServerOptions {
  /** Buckets to create at start. */
  readonly buckets?: readonly string[];
}

interface Rule extends FaultRule {
  left: number;
}

interface Parsed {
  readonly op: S3Operation;
  readonly bucket: string;
  /** The object key, decoded (empty for bucket-level operations). */
  readonly key: string;
  readonly query: URLSearchParams;
}

const XML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

function unescapeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, entity: string) => {
    switch (entity) {
      case "amp":
        return "&";
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
      default:
        return String.fromCodePoint(
          entity.startsWith("#x")
            ? Number.parseInt(entity.slice(2), 16)
            : Number.parseInt(entity.slice(1), 10),
        );
    }
  });
}

function classify(
  method: string,
  path: string,
  query: URLSearchParams,
  headers: IncomingMessage["headers"],
): Parsed {
  const slash = path.indexOf("/", 1);
  const bucket = decodeURIComponent(slash === -1 ? path.slice(1) : path.slice(1, slash));
  const key = slash === -1 ? "" : decodeURIComponent(path.slice(slash + 1));
  let op: S3Operation = "Other";
  if (bucket === "") op = method === "GET" ? "ListBuckets" : "Other";
  else if (key === "") {
    if (method === "GET") op = query.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects";
    else if (method === "HEAD") op = "HeadBucket";
    else if (method === "PUT") op = "CreateBucket";
    else if (method === "DELETE") op = "DeleteBucket";
    else if (method === "POST" && query.has("delete")) op = "DeleteObjects";
  } else if (method === "GET") op = "GetObject";
  else if (method === "HEAD") op = "HeadObject";
  else if (method === "PUT") op = headers["x-amz-copy-source"] !== undefined ? "CopyObject" : "PutObject";
  else if (method === "DELETE") op = "DeleteObject";
  return { op, bucket, key, query };
}

function errorXml(code: string, message: string, extra: Record<string, string> = {}): string {
  const fields = Object.entries(extra)
    .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
    .join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message>` +
    `${fields}<RequestId>${randomUUID()}</RequestId></Error>`
  );
}

const DEFAULT_MESSAGES: Record<string, string> = {
  InternalError: "We encountered an internal error. Please try again.",
  SlowDown: "Please reduce your request rate.",
  ServiceUnavailable: "Service is unable to handle request.",
  AccessDenied: "Access Denied",
  PreconditionFailed: "At least one of the pre-conditions you specified did not hold",
  ConditionalRequestConflict:
    "A conflicting conditional operation is currently in progress against this resource. Please try again.",
  NoSuchKey: "The specified key does not exist.",
};

function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message?: string,
  extra?: Record<string, string>,
): void {
  if (res.headersSent || res.destroyed) return;
  const body = errorXml(code, message ?? DEFAULT_MESSAGES[code] ?? code, extra);
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": Buffer.byteLength(body),
    "x-amz-request-id": randomUUID(),
  });
  res.end(body);
}

/** The normalized form of an ETag for comparison (quotes and a weak prefix dropped). */
function bareEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

interface ListedObject {
  readonly key: string;
  readonly xml: string;
}

/**
 * Starts fauxqs on a free loopback port and the proxy in front of it. Stop both with `stop()`.
 */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  // The SDK warns once per process that its 2027 releases will need Node 22; tests run on Node 20 on
  // purpose, and the warning would only clutter the output of every test and child process.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  // Tests pass credentials explicitly; should one ever fall through to the SDK's default chain, it must
  // not probe the instance metadata address (traffic off this machine).
  process.env.AWS_EC2_METADATA_DISABLED ??= "true";
  const fauxqs = await startFauxqs({ port: 0, logger: false, defaultRegion: "us-east-1" });
  const backendPort = fauxqs.port;
  const backendEndpoint = `http://127.0.0.1:${backendPort}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const credentials = {
    accessKeyId: `ZTXTEST${randomBytes(6).toString("hex").toUpperCase()}`,
    secretAccessKey: `zarr-tx-test-secret-${randomBytes(12).toString("hex")}`,
  };
  const region = "us-east-1";
  const counts = new Map<string, number>();
  const rules: Rule[] = [];
  let faultsHit = 0;
  let conditionFailures = 0;
  /** Writes in flight per bucket/key: the tail of each key's queue. */
  const writing = new Map<string, Promise<void>>();
  const hung = new Set<ServerResponse>();

  /** A request straight to fauxqs; resolves with status, headers and body. */
  function backend(
    method: string,
    path: string,
    headers: IncomingMessage["headers"],
    body?: Buffer,
  ): Promise<{ status: number; headers: IncomingMessage["headers"]; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: backendPort, method, path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  function objectPath(bucket: string, key: string): string {
    return `/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  /** The current ETag of an object, or undefined when it is missing. */
  async function currentEtag(bucket: string, key: string): Promise<string | undefined> {
    const head = await backend("HEAD", objectPath(bucket, key), { host: `127.0.0.1:${backendPort}` });
    if (head.status === 404) return undefined;
    const etag = head.headers.etag;
    if (head.status !== 200 || typeof etag !== "string") throw new Error(`HEAD answered ${head.status}`);
    return etag;
  }

  function takeFault(parsed: Parsed): S3Fault | undefined {
    for (const rule of rules) {
      if (rule.left <= 0) continue;
      if (rule.op !== undefined) {
        const ops: readonly S3Operation[] = typeof rule.op === "string" ? [rule.op] : rule.op;
        if (!ops.includes(parsed.op)) continue;
      }
      if (rule.key !== undefined) {
        if (typeof rule.key === "string" ? parsed.key !== rule.key : !rule.key.test(parsed.key)) continue;
      }
      rule.left -= 1;
      faultsHit += 1;
      return rule.fault;
    }
    return undefined;
  }

  /** Forwards the request to fauxqs and relays the reply (or applies a lost-reply/reset fault). */
  async function forward(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    fault: S3Fault | undefined,
  ): Promise<void> {
    const reply = await backend(req.method ?? "GET", req.url ?? "/", req.headers, body);
    if (fault?.kind === "lost-reply") {
      sendError(res, fault.status ?? 500, fault.code ?? "InternalError");
      return;
    }
    if (fault?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    const headers = { ...reply.headers };
    delete headers["transfer-encoding"];
    headers["content-length"] = String(reply.body.length);
    res.writeHead(reply.status, headers);
    res.end(reply.body);
  }

  /**
   * Conditional PUT/copy emulation. AWS evaluates If-Match / If-None-Match atomically with the write; here
   * every write of a key is serialized in the proxy, so the check (a HEAD to fauxqs) and the write cannot
   * interleave with another write of that key through the proxy.
   */
  async function conditionalWrite(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    parsed: Parsed,
    fault: S3Fault | undefined,
  ): Promise<void> {
    const ifMatch = req.headers["if-match"];
    const ifNoneMatch = req.headers["if-none-match"];
    const conditional = typeof ifMatch === "string" || typeof ifNoneMatch === "string";
    const id = `${parsed.bucket}/${parsed.key}`;
    const busy = writing.get(id);
    if (conditional && busy !== undefined) {
      // AWS: "If a conflicting operation occurs during the upload, S3 returns 409 ConditionalRequestConflict."
      conditionFailures += 1;
      sendError(res, 409, "ConditionalRequestConflict");
      return;
    }
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = busy ?? Promise.resolve();
    const tail = previous.then(() => mine);
    writing.set(id, tail);
    try {
      await previous;
      if (conditional) {
        if (typeof ifNoneMatch === "string" && ifNoneMatch.trim() !== "*") {
          sendError(
            res,
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
            {
              Header: "If-None-Match",
            },
          );
          return;
        }
        const etag = await currentEtag(parsed.bucket, parsed.key);
        if (typeof ifNoneMatch === "string" && etag !== undefined) {
          conditionFailures += 1;
          sendError(res, 412, "PreconditionFailed", undefined, { Condition: "If-None-Match" });
          return;
        }
        if (typeof ifMatch === "string") {
          if (etag === undefined) {
            // AWS: If-Match on a key with no current object fails with 404 NoSuchKey.
            conditionFailures += 1;
            sendError(res, 404, "NoSuchKey", undefined, { Key: parsed.key });
            return;
          }
          if (bareEtag(ifMatch) !== bareEtag(etag) && ifMatch.trim() !== "*") {
            conditionFailures += 1;
            sendError(res, 412, "PreconditionFailed", undefined, { Condition: "If-Match" });
            return;
          }
        }
      }
      await forward(req, res, body, fault);
    } finally {
      release();
      if (writing.get(id) === tail) writing.delete(id);
    }
  }

  /** ListObjectsV2 in UTF-8 byte order, paginated here from one full fauxqs listing. */
  async function listV2(req: IncomingMessage, res: ServerResponse, parsed: Parsed): Promise<void> {
    const { query } = parsed;
    if (query.has("delimiter")) {
      // Not needed by zarr-tx: relay fauxqs's own answer.
      await forward(req, res, Buffer.alloc(0), undefined);
      return;
    }
    const prefix = query.get("prefix") ?? "";
    const maxKeys = Math.min(1000, Math.max(0, Number.parseInt(query.get("max-keys") ?? "1000", 10) || 0));
    const token = query.get("continuation-token");
    const startAfter = query.get("start-after") ?? "";
    const full = await backend(
      "GET",
      `/${encodeURIComponent(parsed.bucket)}?list-type=2&max-keys=2147483647&prefix=${encodeURIComponent(prefix)}`,
      { host: `127.0.0.1:${backendPort}` },
    );
    if (full.status !== 200) {
      res.writeHead(full.status, { "content-type": "application/xml", "content-length": full.body.length });
      res.end(full.body);
      return;
    }
    const objects: ListedObject[] = [];
    for (const match of full.body.toString("utf8").matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
      const xml = match[1] ?? "";
      const key = unescapeXml(/<Key>([\s\S]*?)<\/Key>/.exec(xml)?.[1] ?? "");
      objects.push({ key, xml });
    }
    const bytes = (s: string) => Buffer.from(s, "utf8");
    objects.sort((a, b) => Buffer.compare(bytes(a.key), bytes(b.key)));
    const after = token !== null ? Buffer.from(token, "base64url").toString("utf8") : startAfter;
    const rest =
      after === "" ? objects : objects.filter((o) => Buffer.compare(bytes(o.key), bytes(after)) > 0);
    const page = rest.slice(0, maxKeys);
    const truncated = rest.length > page.length;
    const last = page[page.length - 1];
    const parts = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
      `<Name>${escapeXml(parsed.bucket)}</Name>`,
      `<Prefix>${escapeXml(prefix)}</Prefix>`,
      `<KeyCount>${page.length}</KeyCount>`,
      `<MaxKeys>${maxKeys}</MaxKeys>`,
      `<IsTruncated>${truncated}</IsTruncated>`,
    ];
    if (token !== null) parts.push(`<ContinuationToken>${escapeXml(token)}</ContinuationToken>`);
    if (startAfter !== "") parts.push(`<StartAfter>${escapeXml(startAfter)}</StartAfter>`);
    if (truncated && last !== undefined) {
      parts.push(
        `<NextContinuationToken>${Buffer.from(last.key, "utf8").toString("base64url")}</NextContinuationToken>`,
      );
    }
    for (const object of page) parts.push(`<Contents>${object.xml}</Contents>`);
    parts.push("</ListBucketResult>");
    const body = parts.join("\n");
    res.writeHead(200, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", "http://proxy");
    const parsed = classify(req.method ?? "GET", url.pathname, url.searchParams, req.headers);
    counts.set(parsed.op, (counts.get(parsed.op) ?? 0) + 1);

    // Like AWS, an unknown access key id is refused, and the refusal names it.
    const auth = req.headers.authorization ?? "";
    const keyId = /Credential=([^/,\s]+)\//.exec(auth)?.[1];
    if (keyId !== credentials.accessKeyId) {
      if (keyId === undefined) sendError(res, 403, "AccessDenied");
      else
        sendError(
          res,
          403,
          "InvalidAccessKeyId",
          "The AWS Access Key Id you provided does not exist in our records.",
          {
            AWSAccessKeyId: keyId,
          },
        );
      return;
    }

    const fault = takeFault(parsed);
    if (fault?.kind === "error") {
      sendError(res, fault.status, fault.code, fault.message);
      return;
    }
    if (fault?.kind === "hang") {
      hung.add(res);
      res.on("close", () => hung.delete(res));
      return;
    }
    if (parsed.op === "PutObject" || parsed.op === "CopyObject" || parsed.op === "DeleteObject") {
      await conditionalWrite(req, res, body, parsed, fault);
      return;
    }
    if (parsed.op === "ListObjectsV2" && fault === undefined) {
      await listV2(req, res, parsed);
      return;
    }
    await forward(req, res, body, fault);
  }

  const proxy: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      sendError(res, 500, "InternalError", `test proxy: ${String(error)}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    proxy.once("error", reject);
    proxy.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (proxy.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}`;

  const rawClient = new S3Client({
    endpoint: backendEndpoint,
    forcePathStyle: true,
    region,
    credentials,
    maxAttempts: 1,
  });

  for (const bucket of options.buckets ?? []) fauxqs.createBucket(bucket);
  let stopped: Promise<void> | undefined;

  return {
    endpoint,
    backendEndpoint,
    region,
    credentials,
    rawClient,
    clientConfig(overrides = {}) {
      return {
        endpoint,
        forcePathStyle: true,
        region,
        credentials: { ...credentials },
        ...overrides,
      };
    },
    createBucket(name) {
      const bucket = name ?? `zarr-tx-${randomBytes(6).toString("hex")}`;
      fauxqs.createBucket(bucket);
      return bucket;
    },
    counts() {
      return Object.fromEntries([...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
    },
    total() {
      let sum = 0;
      for (const n of counts.values()) sum += n;
      return sum;
    },
    resetCounts() {
      counts.clear();
    },
    inject(rule) {
      const entry: Rule = { ...rule, left: rule.times ?? 1 };
      rules.push(entry);
      return () => {
        const i = rules.indexOf(entry);
        if (i >= 0) rules.splice(i, 1);
      };
    },
    clearFaults() {
      rules.length = 0;
    },
    get faultsHit() {
      return faultsHit;
    },
    get conditionFailures() {
      return conditionFailures;
    },
    stop() {
      stopped ??= (async () => {
        for (const res of hung) res.destroy();
        rawClient.destroy();
        await new Promise<void>((resolve) => {
          proxy.close(() => resolve());
          proxy.closeAllConnections();
        });
        agent.destroy();
        await fauxqs.stop();
      })();
      return stopped;
    },
  };
}
