/**
 * Throw-away `redis-server` processes for tests and benchmarks: each on a free loopback port, with no
 * persistence (`--save "" --appendonly no`), in its own temporary directory. Never touches the system
 * Redis on 6379. Servers can be killed, paused (SIGSTOP), resumed and restarted empty on the same port,
 * which is what the Redlock fault tests need. Every server still running is killed when the process exits.
 *
 * Reusable by any test that needs Redis (the S3 + Redis tests, too):
 *   const masters = await startRedisServers(3);   // afterAll: await stopRedisServers(masters)
 *   new RedisSynchronizer({ masters: masters.map((m) => m.url) });
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The redis-server binary: `$REDIS_SERVER`, else `redis-server` on the PATH (Debian: /usr/bin/redis-server). */
export const REDIS_SERVER_BIN = process.env.REDIS_SERVER ?? "redis-server";

/** One throw-away Redis server. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** The pid of the current server process, or undefined while it is down. */
  readonly pid: number | undefined;
  /** True while a server process is up (possibly paused). */
  readonly running: boolean;
  /** SIGKILL: the server dies at once, with all its data (no persistence). Resolves when it has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing until `resume`. */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Starts a new, empty server on the same port (after `kill`, or kills the running one first). */
  restart(): Promise<void>;
  /** Stops the server for good and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test run that dies or forgets to clean up must not leave servers behind.
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/** A port that was free a moment ago (the server may still lose a race for it; `startRedisServer` retries). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Spawns redis-server on `port` and resolves once it accepts connections; rejects if it exits first. */
function spawnServer(port: number, dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      REDIS_SERVER_BIN,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--daemonize",
        "no",
        "--loglevel",
        "notice",
        "--logfile",
        "",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`redis-server on port ${port} did not start within 10 s:\n${output}`));
    }, 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        // Keep draining, or a chatty server would block on a full pipe.
        child.stdout?.resume();
        resolve(child);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(
        new Error(
          `could not run ${REDIS_SERVER_BIN} (${error.message}); install it (Debian: apt-get install redis-server) or set REDIS_SERVER`,
        ),
      );
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`redis-server on port ${port} exited (${code ?? signal}) before it was ready:\n${output}`),
      );
    });
    live.add(child);
    child.once("exit", () => live.delete(child));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Starts one empty redis-server on a free loopback port. */
export async function startRedisServer(): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "zarr-tx-redis-"));
  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      child = await spawnServer(port, dir);
      break;
    } catch (error) {
      // Another process took the port between freePort() and the bind: pick another one.
      if (attempt >= 4 || !String(error).includes("Address already in use")) throw error;
    }
  }
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined;
    },
    async kill() {
      const current = child;
      if (current === undefined) return;
      child = undefined;
      current.kill("SIGKILL");
      await exited(current);
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    async restart() {
      await server.kill();
      // The old socket is gone with its process, and redis-server sets SO_REUSEADDR: the port is free.
      child = await spawnServer(port, dir);
    },
    async stop() {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Starts `count` independent servers (a Redlock quorum) in parallel. */
export function startRedisServers(count: number): Promise<RedisServer[]> {
  return Promise.all(Array.from({ length: count }, () => startRedisServer()));
}

/** Stops every server given. */
export async function stopRedisServers(servers: readonly RedisServer[]): Promise<void> {
  await Promise.all(servers.map((server) => server.stop()));
}
