/**
 * Writer A of the S3 fencing test (test/s3-fencing.test.ts), forked with `--import tsx` and one JSON
 * argument. It opens the array on S3 through a RedisSynchronizer with a short TTL, starts a
 * read-modify-write transaction, reads the region under its lease, tells the parent ("inside") and waits
 * for "go" (the parent SIGSTOPs it meanwhile, past its TTL, and lets writer B commit). Then it tries to
 * write and commit, and reports what happened.
 */
import { isZarrTxError, open, slice, transaction } from "../src/index.js";
import { S3Store } from "../src/store/s3.js";
import { RedisSynchronizer } from "../src/sync/redis.js";

/** What the parent passes. */
export interface FencingChildConfig {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly bucket: string;
  readonly prefix: string;
  readonly path: string;
  readonly masters: readonly string[];
  readonly ttlMs: number;
  readonly rows: readonly [number, number];
  readonly value: number;
}

/** What it sends back. */
export type FencingChildMessage =
  | { readonly type: "inside"; readonly sum: number }
  | {
      readonly type: "result";
      readonly committed: boolean;
      readonly code?: string;
      readonly message?: string;
    };

const config = JSON.parse(process.argv[2] ?? "{}") as FencingChildConfig;

function send(message: FencingChildMessage): Promise<void> {
  return new Promise((resolve) => process.send?.(message, () => resolve()));
}

const go = new Promise<void>((resolve) => {
  process.on("message", (message: { type?: string }) => {
    if (message.type === "go") resolve();
  });
});

const store = new S3Store({
  bucket: config.bucket,
  prefix: config.prefix,
  config: {
    endpoint: config.endpoint,
    forcePathStyle: true,
    region: config.region,
    credentials: config.credentials,
  },
});
const synchronizer = new RedisSynchronizer({ masters: config.masters, ttlMs: config.ttlMs });
let result: FencingChildMessage;
try {
  const array = await open(store, { path: config.path, synchronizer });
  const region = [slice(config.rows[0], config.rows[1]), null];
  await transaction([{ array, selection: region, mode: "write" }], async (tx) => {
    const current = await tx.get(array, region);
    await send({ type: "inside", sum: (current.data as Int32Array).reduce((a, b) => a + b, 0) });
    await go;
    await tx.set(array, region, {
      data: (current.data as Int32Array).map(() => config.value),
      shape: current.shape,
    });
  });
  result = { type: "result", committed: true };
} catch (error) {
  result = {
    type: "result",
    committed: false,
    code: isZarrTxError(error) ? error.code : "unexpected",
    message: String(error),
  };
}
await synchronizer.close();
store.close();
await send(result);
process.exit(0);
