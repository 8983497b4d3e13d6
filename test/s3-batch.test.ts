/**
 * The cloud batch job end to end (examples/cloud-batch.ts, run as a subprocess exactly as a user would):
 * 8 writer processes and 2 reader processes on an array in the test S3 server, coordinated only by
 * `RedisSynchronizer` over 3 Redis masters. The job checks itself (0 torn reads, 0 lost increments, every
 * row a committed value, plain zarrita agrees); this test checks its report, and reads the bucket once
 * more with plain zarrita through its own S3Store.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zarrita from "zarrita";
import { S3Store } from "../src/store/s3.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";
import { type S3TestServer, startS3Server } from "./s3-harness.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

let s3: S3TestServer;
let masters: RedisServer[] = [];

beforeAll(async () => {
  [s3, masters] = await Promise.all([startS3Server(), startRedisServers(3)]);
});

afterAll(async () => {
  await Promise.all([s3?.stop(), stopRedisServers(masters)]);
});

interface Report {
  readonly processes: number;
  readonly readers: number;
  readonly transactions: number;
  readonly reads: number;
  readonly tornReads: number;
  readonly lostIncrements: number;
  readonly badRows: number;
  readonly zarritaAgrees: boolean;
  readonly ok: boolean;
}

function runJob(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "examples/cloud-batch.ts", ...args],
      {
        cwd: ROOT,
        timeout: 180_000,
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
          AWS_EC2_METADATA_DISABLED: "true",
        },
      },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

describe("cloud batch job: S3 + Redis (3 masters)", () => {
  it("8 writers + 2 readers on overlapping slabs: 0 torn, 0 lost, every row a committed value; zarrita agrees", async () => {
    const bucket = s3.createBucket();
    const prefix = "batch/run.zarr";
    const args = ["--endpoint", s3.endpoint, "--bucket", bucket, "--prefix", prefix];
    for (const m of masters) args.push("--redis", m.url);
    args.push("--processes", "8", "--readers", "2", "--rounds", "3");
    const run = await runJob(args);
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    const report = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "{}") as Report;
    expect(report).toMatchObject({
      processes: 8,
      readers: 2,
      tornReads: 0,
      lostIncrements: 0,
      badRows: 0,
      zarritaAgrees: true,
      ok: true,
    });
    expect(report.reads).toBeGreaterThan(0);
    expect(run.stdout + run.stderr).not.toContain(s3.credentials.secretAccessKey);

    // Independently: plain zarrita over a fresh S3Store sees whole rows and the right total count.
    const store = new S3Store({ bucket, prefix, config: s3.clientConfig() });
    try {
      const root = zarrita.root(store);
      const slabs = await zarrita.get(
        (await zarrita.open(root.resolve("slabs"), { kind: "array" })) as zarrita.Array<"int32">,
      );
      expect(slabs.shape).toEqual([32, 64]);
      for (let r = 0; r < 32; r++) {
        const row = slabs.data.subarray(r * 64, (r + 1) * 64);
        expect(
          row.every((v) => v === row[0]),
          `row ${r}`,
        ).toBe(true);
      }
      const counts = await zarrita.get(
        (await zarrita.open(root.resolve("counts"), { kind: "array" })) as zarrita.Array<"int32">,
      );
      expect(counts.data.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      // Nothing of the journal is left behind once every transaction finished.
      expect(await store.list("/.zarr-tx/journal/")).toEqual([]);
    } finally {
      store.close();
    }
  }, 240_000);
});
