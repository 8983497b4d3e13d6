/**
 * Worker-thread entry of the encode pool (encode-pool.ts): builds each codec spec once and encodes the
 * chunks it is sent, transferring the bytes back.
 */
import { parentPort } from "node:worker_threads";
import { type ChunkCodec, type ChunkCodecSpec, loadChunkCodec, rawConstructor } from "./chunk-codec.js";

interface Request {
  readonly id: number;
  readonly spec: ChunkCodecSpec;
  readonly buffer: ArrayBuffer;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

const codecs = new Map<string, Promise<ChunkCodec>>();

async function handle(request: Request): Promise<void> {
  const port = parentPort!;
  try {
    const key = JSON.stringify(request.spec, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
    let codec = codecs.get(key);
    if (!codec) {
      codec = loadChunkCodec(request.spec);
      codecs.set(key, codec);
    }
    const Ctor = rawConstructor(request.spec.dataType);
    const bytes = await (await codec).encode({
      data: new Ctor(request.buffer),
      shape: request.shape,
      stride: request.stride,
    });
    if (!bytes) {
      port.postMessage({ id: request.id, bytes: null });
      return;
    }
    // Transfer only a buffer the bytes own exactly; otherwise copy once.
    const owned =
      bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    port.postMessage({ id: request.id, bytes: owned }, [owned.buffer as ArrayBuffer]);
  } catch (error) {
    port.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) });
  }
}

parentPort?.on("message", (request: Request) => {
  handle(request).catch(() => undefined);
});
