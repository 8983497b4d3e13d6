/**
 * A pool of worker threads that encode chunks in parallel. Compression (blosc, zstd, gzip…) is CPU
 * work on the main thread otherwise; with N cores a pool of N encodes up to N chunks at once.
 *
 * Protocol of one `encode` call:
 * 1. The chunk's data are copied into a fresh buffer only when they do not own an exact-size buffer,
 *    then the buffer is transferred (not copied) to the least busy worker with the codec spec.
 * 2. The worker builds the codec for the spec once (cached by its JSON) and encodes.
 * 3. The encoded bytes are transferred back. A codec error comes back as a message and is rethrown here
 *    as `CodecError`; a worker that dies rejects its pending calls and is replaced on the next call.
 * Workers are unref'd while idle, so an idle pool never keeps the process alive.
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { CodecError } from "../errors.js";
import type { ChunkCodecSpec, EncodableChunk } from "./chunk-codec.js";

interface Pending {
  readonly resolve: (bytes: Uint8Array | undefined) => void;
  readonly reject: (error: Error) => void;
}

interface PoolWorker {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

/** Message from a worker: the encoded bytes (null: nothing to store), or an error. */
type Reply = { id: number; bytes: Uint8Array | null } | { id: number; error: string };

function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./encode-worker.js", here));
  // Running from the TypeScript sources (tests, tsx): workers do not inherit the tsx loader, so a small
  // bootstrap registers it before importing the .ts worker.
  const tsxApi = pathToFileURL(createRequire(here).resolve("tsx/esm/api")).href.replace(/\.cjs$/, ".mjs");
  const worker = new URL("./encode-worker.ts", here).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(worker)}); });`;
  return new Worker(bootstrap, { eval: true });
}

/** Encodes chunks on `size` worker threads. Create one per process with {@link sharedEncodePool}. */
export class EncodePool {
  readonly size: number;
  readonly #workers: (PoolWorker | undefined)[];
  #nextId = 0;
  #closed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`encode pool size must be ≥ 1, got ${size}`);
    this.size = size;
    this.#workers = new Array(size).fill(undefined);
  }

  /**
   * Encodes one chunk with the codec described by `spec`. Takes ownership of `chunk.data`'s buffer when it
   * is exact-size (it is transferred and detached): do not use the chunk afterwards.
   *
   * @throws {CodecError} `ERR_CODEC` when the codec fails or the worker dies.
   */
  encode(spec: ChunkCodecSpec, chunk: EncodableChunk): Promise<Uint8Array | undefined> {
    if (this.#closed) return Promise.reject(new CodecError("ERR_CODEC", "the encode pool is closed"));
    const slot = this.#leastBusy();
    const target = this.#workers[slot] ?? this.#spawn(slot);
    const view = chunk.data;
    const owned =
      view.byteOffset === 0 &&
      view.byteLength === view.buffer.byteLength &&
      view.buffer instanceof ArrayBuffer;
    const buffer = owned
      ? (view.buffer as ArrayBuffer)
      : new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (target.pending.size === 0) target.worker.ref();
      target.pending.set(id, { resolve, reject });
      target.worker.postMessage({ id, spec, buffer, shape: chunk.shape, stride: chunk.stride }, [buffer]);
    });
  }

  /** Stops every worker; pending calls reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#workers.map(async (w, slot) => {
        if (!w) return;
        this.#workers[slot] = undefined;
        await w.worker.terminate();
      }),
    );
  }

  #leastBusy(): number {
    let best = 0;
    let bestLoad = Number.POSITIVE_INFINITY;
    this.#workers.forEach((w, slot) => {
      const load = w?.pending.size ?? 0;
      if (load < bestLoad) {
        best = slot;
        bestLoad = load;
      }
    });
    return best;
  }

  #spawn(slot: number): PoolWorker {
    const worker = startWorker();
    const entry: PoolWorker = { worker, pending: new Map() };
    worker.unref();
    worker.on("message", (reply: Reply) => {
      const call = entry.pending.get(reply.id);
      if (!call) return;
      entry.pending.delete(reply.id);
      if (entry.pending.size === 0) worker.unref();
      if ("error" in reply)
        call.reject(new CodecError("ERR_CODEC", `encoding in a worker failed: ${reply.error}`));
      else call.resolve(reply.bytes ?? undefined);
    });
    const fail = (error: Error): void => {
      if (this.#workers[slot] === entry) this.#workers[slot] = undefined;
      for (const call of entry.pending.values()) {
        call.reject(new CodecError("ERR_CODEC", `an encode worker died: ${error.message}`, { cause: error }));
      }
      entry.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`worker exited with code ${code}`)));
    this.#workers[slot] = entry;
    return entry;
  }
}

const pools = new Map<number, EncodePool>();

/** The process-wide pool of `size` workers, created on first use and shared by every array. */
export function sharedEncodePool(size: number): EncodePool {
  let pool = pools.get(size);
  if (!pool) {
    pool = new EncodePool(size);
    pools.set(size, pool);
  }
  return pool;
}
