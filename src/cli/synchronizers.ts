/**
 * `--sync inprocess|file|redis` (with `--redis URL`, repeatable, and `--lock-dir DIR`): builds the
 * synchronizer a command's transactions go through. The Redis module (and so `ioredis`) is imported
 * only when `--sync redis` is asked for.
 */
import { ZarrTxError } from "../errors.js";
import { FileSynchronizer } from "../index.js";
import { InProcessSynchronizer } from "../sync/in-process.js";
import type { Synchronizer } from "../sync/types.js";
import {
  choiceOption,
  listOption,
  type OptionSpec,
  type ParsedArgs,
  stringOption,
  UsageError,
} from "./args.js";

/** The synchronizer kinds of `--sync`. */
export const SYNC_KINDS = ["inprocess", "file", "redis"] as const;
/** One of {@link SYNC_KINDS}. */
export type SyncKind = (typeof SYNC_KINDS)[number];

/** What a worker process needs to build the same synchronizer (structured-cloneable). */
export interface SyncConfig {
  readonly kind: SyncKind;
  /** Redis masters (redis:// or rediss:// URLs); only for "redis". */
  readonly redis: readonly string[];
  /** The file synchronizer's `lockDirectory`. */
  readonly lockDir?: string;
}

/** The synchronizer options of commands that run transactions. */
export const SYNC_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  sync: {
    type: "string",
    value: "KIND",
    help:
      "inprocess (default: locks of this one process), file (OS file locks: processes on one host or a " +
      "shared POSIX filesystem), or redis (Redlock over --redis masters)",
  },
  redis: {
    type: "string",
    multiple: true,
    value: "URL",
    help: "a Redis master, redis://[user:pass@]host:port (repeat for a quorum: 1, 3 or 5); implies --sync redis",
  },
  "lock-dir": {
    type: "string",
    value: "DIR",
    help: "with --sync file: keep the lock files in DIR instead of beside each array",
  },
  "lock-timeout": {
    type: "string",
    value: "MS",
    help: "give up waiting for locks after MS milliseconds (default: wait as long as it takes)",
  },
};

/**
 * Reads `--sync`, `--redis` and `--lock-dir`. Throws {@link UsageError} for an unknown kind, `--redis`
 * with another kind, `--sync redis` without masters, a URL that is not redis:// or rediss://, or
 * `--lock-dir` with a kind other than file.
 */
export function syncConfigOf(args: ParsedArgs): SyncConfig {
  const redis = listOption(args, "redis");
  const explicit = stringOption(args, "sync");
  const kind =
    explicit === undefined && redis.length > 0
      ? "redis"
      : choiceOption(args, "sync", SYNC_KINDS, "inprocess");
  if (kind !== "redis" && redis.length > 0)
    throw new UsageError(`--redis needs --sync redis (got --sync ${kind})`);
  if (kind === "redis") {
    if (redis.length === 0) throw new UsageError("--sync redis needs at least one --redis redis://host:port");
    for (const url of redis) {
      // Never echo the URL: it may carry a password.
      if (!/^rediss?:\/\/[^/\s]+/.test(url)) {
        throw new UsageError(
          `--redis takes redis://host:port or rediss://host:port URLs (argument ${redis.indexOf(url) + 1} is not one)`,
        );
      }
    }
  }
  const lockDir = stringOption(args, "lock-dir");
  if (lockDir !== undefined && kind !== "file")
    throw new UsageError("--lock-dir applies to --sync file only");
  return { kind, redis, ...(lockDir !== undefined ? { lockDir } : {}) };
}

/** Describes a config for reports, without URLs (they may carry passwords). */
export function describeSync(config: SyncConfig): string {
  if (config.kind === "redis")
    return `redis (${config.redis.length} master${config.redis.length === 1 ? "" : "s"})`;
  if (config.kind === "file")
    return config.lockDir === undefined ? "file" : `file (locks in ${config.lockDir})`;
  return "inprocess";
}

/**
 * Builds the synchronizer of `config`. The caller closes it.
 *
 * @throws {ZarrTxError} `ERR_UNSUPPORTED` when the Redis synchronizer's module cannot be loaded, or the
 *   file synchronizer does not run on this platform.
 * @throws {InvalidArgumentError} for options the synchronizer rejects.
 */
export async function createSynchronizer(config: SyncConfig): Promise<Synchronizer> {
  switch (config.kind) {
    case "inprocess":
      return new InProcessSynchronizer();
    case "file":
      return new FileSynchronizer(config.lockDir === undefined ? {} : { lockDirectory: config.lockDir });
    case "redis": {
      let module: typeof import("../sync/redis.js");
      try {
        // Lazy: only --sync redis loads ioredis.
        module = await import("../sync/redis.js");
      } catch (cause) {
        throw new ZarrTxError(
          "ERR_UNSUPPORTED",
          `the Redis synchronizer is not available in this installation (${(cause as Error).message}); ` +
            "use --sync file on one host, or install zarr-tx with its Redis dependency (ioredis)",
          { cause },
        );
      }
      return new module.RedisSynchronizer({ masters: [...config.redis] });
    }
  }
}

/** `--lock-timeout` in ms, or undefined. Throws {@link UsageError} for a malformed value. */
export function lockTimeoutOf(args: ParsedArgs): number | undefined {
  const text = stringOption(args, "lock-timeout");
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`--lock-timeout must be a number of milliseconds ≥ 0, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Runs `fn` with the synchronizer of `config`, and closes it afterwards, whatever happens. */
export async function withSynchronizer<T>(
  config: SyncConfig,
  fn: (synchronizer: Synchronizer) => Promise<T>,
): Promise<T> {
  const synchronizer = await createSynchronizer(config);
  try {
    return await fn(synchronizer);
  } finally {
    await synchronizer.close();
  }
}
