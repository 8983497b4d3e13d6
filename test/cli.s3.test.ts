/**
 * The `zarr-tx` CLI on `s3://bucket/prefix` stores, run as subprocesses from source against the test S3
 * server (test/s3-harness.ts): create, set, get, info, verify, and a short `stress` with Redis locks;
 * credentials only through the environment; typed failures for a wrong bucket and bad S3 options.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, open } from "../src/index.js";
import { S3Store } from "../src/store/s3.js";
import { cliInProcess, type Run } from "./cli-harness.js";
import { type RedisServer, startRedisServers, stopRedisServers } from "./redis-harness.js";
import { type S3TestServer, startS3Server } from "./s3-harness.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

let s3: S3TestServer;
let bucket: string;
let redis: RedisServer[] = [];

beforeAll(async () => {
  [s3, redis] = await Promise.all([startS3Server(), startRedisServers(1)]);
  bucket = s3.createBucket();
});

afterAll(async () => {
  await Promise.all([s3?.stop(), stopRedisServers(redis)]);
});

/** Runs the CLI from source with the test server's credentials in the environment (never in argv). */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
          AWS_EC2_METADATA_DISABLED: "true",
          ...env,
        },
      },
      (error, stdout, stderr) => {
        if (child.exitCode === null)
          reject(new Error(`zarr-tx ${args.join(" ")} did not exit: ${error?.message}`));
        else resolve({ code: child.exitCode, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

describe("zarr-tx on s3:// stores", () => {
  it("create, set, get, info and verify through s3://bucket/prefix --endpoint; plain reads agree", async () => {
    const url = `s3://${bucket}/cli/data.zarr`;
    const endpoint = ["--endpoint", s3.endpoint];
    const created = await cli([
      "create",
      url,
      ...endpoint,
      "-p",
      "temps",
      "--shape",
      "6,8",
      "--chunks",
      "4,4",
      "--dtype",
      "int32",
      "--compressor",
      "zstd:3",
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(`s3://${new URL(s3.endpoint).host}/${bucket}/cli/data.zarr`);

    const wrote = await cli([
      "set",
      url,
      ...endpoint,
      "-p",
      "temps",
      "--sel",
      "2:6,3:7",
      "--value",
      "5",
      "--json",
    ]);
    expect(wrote.code, wrote.stderr).toBe(0);
    expect(JSON.parse(wrote.stdout)).toMatchObject({
      ok: true,
      metrics: { outcome: "committed", chunksWritten: 4 },
    });

    // Reads in parallel: get, info (with --region) and verify (with --path-style).
    const [read, info, verify] = await Promise.all([
      cli(["get", url, ...endpoint, "-p", "temps", "--sel", "1:3,2:5", "--json"]),
      cli(["info", url, ...endpoint, "--region", "us-east-1", "--json"]),
      cli(["verify", url, ...endpoint, "--path-style"]),
    ]);
    expect(read.code, read.stderr).toBe(0);
    expect(JSON.parse(read.stdout)).toMatchObject({
      data: [
        [0, 0, 0],
        [0, 5, 5],
      ],
    });
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain("/temps");
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);

    // The same bytes through the library, and the region/path-style flags are accepted by every command.
    const store = new S3Store({ bucket, prefix: "cli/data.zarr", config: s3.clientConfig() });
    try {
      const array = await open(store, { path: "temps" });
      const { data } = await get(array, null);
      expect(Array.from(data as Int32Array).filter((v) => v === 5)).toHaveLength(16);
    } finally {
      store.close();
    }
    // Nothing leaked: neither the key id nor the secret appears in any output.
    for (const run of [created, wrote, read, info, verify]) {
      expect(run.stdout + run.stderr).not.toContain(s3.credentials.secretAccessKey);
      expect(run.stdout + run.stderr).not.toContain(s3.credentials.accessKeyId);
    }
  });

  it("a short stress run on S3 with Redis locks: 0 torn, 0 lost", async () => {
    const run = await cli([
      "stress",
      `s3://${bucket}/cli/stress`,
      "--endpoint",
      s3.endpoint,
      "--sync",
      "redis",
      "--redis",
      redis[0]!.url,
      "--procs",
      "2",
      "--seconds",
      "2",
      "--json",
    ]);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const report = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      ok: true,
      verdict: "ok",
      errors: 0,
      diagonal: { tornReads: 0, tornAtEnd: 0 },
      counter: { lost: 0, extra: 0 },
    });
    expect((report.diagonal as { writes: number }).writes).toBeGreaterThan(0);
    expect((report.counter as { increments: number }).increments).toBeGreaterThan(0);
  });

  it("fails typed: a missing bucket (exit 1, ERR_STORE_NOT_FOUND), a wrong key id (ERR_STORE_ACCESS_DENIED), bad options (exit 2)", async () => {
    // Through the executable, in parallel: exit codes and stderr plumbing, credentials from the environment.
    const [missing, denied] = await Promise.all([
      cli(["info", "s3://no-such-bucket-cli/x", "--endpoint", s3.endpoint]),
      cli(["info", `s3://${bucket}/x`, "--endpoint", s3.endpoint], {
        AWS_ACCESS_KEY_ID: "AKIAWRONGWRONGWRONG1",
        AWS_SECRET_ACCESS_KEY: "wrong-secret-value",
      }),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ERR_STORE_NOT_FOUND/);
    expect(missing.stderr).toMatch(/Create it first/);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/ERR_STORE_ACCESS_DENIED/);
    expect(denied.stderr).not.toMatch(/AKIAWRONG|wrong-secret-value/);

    // Bad S3 options fail before any request: in-process (the same code as the executable).
    for (const [args, pattern] of [
      [["info", "s3://user:pw@bucket/x"], /take no credentials/],
      [["info", `s3://${bucket}/x`, "--endpoint", "ftp://host"], /http:\/\/ or https:\/\//],
      [["info", `s3://${bucket}/x`, "--endpoint", "not a url"], /--endpoint must be a URL/],
      [["info", "s3://Bad_Bucket/x", "--endpoint", s3.endpoint], /bucket must be a bucket name/],
      [["info", "/tmp/x.zarr", "--region", "eu-west-1"], /--region applies to s3:\/\/ stores only/],
    ] as const) {
      const run = await cliInProcess(args);
      expect(run.code, `${args.join(" ")}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toMatch(pattern);
    }
  });
});
