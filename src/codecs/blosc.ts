/**
 * A Blosc 1 frame writer that records the real `typesize`.
 *
 * numcodecs.js compresses through c-blosc compiled to WebAssembly, but its binding has no `typesize`
 * parameter: every frame it writes says typesize 4 and shuffles in 4-byte groups. Those frames decode
 * exactly everywhere (decoders read the typesize from the frame), but shuffled 2- and 8-byte data
 * compress up to about 1.9× worse than zarr-python's (blosc lz4 + shuffle on float64 is zarr-python 2's
 * default compressor). This module writes the frame itself, following the Blosc 1 frame format
 * (c-blosc's README_CHUNK_FORMAT), with the typesize it is given: byte or bit shuffle per block in
 * JavaScript, and each block compressed by numcodecs.js's LZ4 or Zstd, or by zlib. Decoding stays with
 * numcodecs.js (c-blosc), which reads every Blosc 1 frame.
 *
 * Frame layout written here: a 16-byte header (format version 2, compressor format version 1, flags,
 * typesize, then little-endian uint32 nbytes, blocksize, cbytes), then, unless the frame is a plain copy,
 * one little-endian int32 offset per block, then each block as one stream (the "don't split" flag is
 * always set): an int32 compressed size followed by the compressed bytes, or the raw block when
 * compression does not make it smaller (its size then equals the block's).
 *
 * This module imports nothing from the store, sync or array layers.
 */

/** The compressors this writer handles itself; blosclz and snappy have no JavaScript encoder here. */
export const NATIVE_BLOSC_COMPRESSORS: ReadonlySet<string> = new Set(["lz4", "lz4hc", "zstd", "zlib"]);

/** What one Blosc frame is written with. */
export interface BloscFrameOptions {
  /** One of {@link NATIVE_BLOSC_COMPRESSORS}. */
  readonly cname: string;
  /** 0 (store only) to 9. */
  readonly clevel: number;
  /** 0 no shuffle, 1 byte shuffle, 2 bit shuffle. */
  readonly shuffle: 0 | 1 | 2;
  /** Bytes per element that the shuffle groups by (≥ 1; above 255 the frame says 1, as c-blosc does). */
  readonly typesize: number;
  /** Bytes per block; 0 picks one from the compressor, level and size. */
  readonly blocksize: number;
}

/** Compresses one block's bytes with the frame's compressor (may return a longer result). */
export type BlockCompressor = (block: Uint8Array) => Promise<Uint8Array> | Uint8Array;

/** Flag bits of byte 2 of the header. */
const DOSHUFFLE = 0x01;
const MEMCPYED = 0x02;
const DOBITSHUFFLE = 0x04;
const DONT_SPLIT = 0x10;

/** Compressor format codes (bits 5–7 of the flags); lz4hc writes the LZ4 block format. */
const FORMAT: Readonly<Record<string, number>> = { lz4: 1, lz4hc: 1, zlib: 3, zstd: 4 };

const HEADER = 16;
/** c-blosc stores buffers smaller than this as a plain copy. */
const MIN_BUFFERSIZE = 128;
/** Blocks larger than this gain little ratio and cost cache misses (c-blosc's level-1 cache size). */
const L1 = 32 * 1024;

/** The block size for `nbytes` of data: larger for higher levels and for the slower, stronger codecs. */
export function chooseBlocksize(options: BloscFrameOptions, nbytes: number): number {
  const typesize = Math.max(1, options.typesize);
  let size = options.blocksize > 0 ? options.blocksize : automaticBlocksize(options);
  if (size < MIN_BUFFERSIZE) size = MIN_BUFFERSIZE;
  if (size > nbytes) size = nbytes;
  // A block holds whole elements, in groups of 8 where it can (bit shuffle works on 8 elements at a
  // time, and leaves a block of any other count unshuffled).
  const unit = size >= 8 * typesize ? 8 * typesize : typesize;
  if (size > unit) size -= size % unit;
  return Math.max(1, size);
}

function automaticBlocksize(options: BloscFrameOptions): number {
  const strong = options.cname !== "lz4";
  const factor = [0.25, 0.5, 1, 2, 4, 4, 8, 8, 8, 16][Math.min(9, Math.max(0, options.clevel))] as number;
  return L1 * (strong ? 8 : 1) * factor;
}

/**
 * Byte shuffle of one block: byte b of element i goes to position b·n + i, for the n whole elements;
 * trailing bytes that do not fill an element are copied as they are.
 */
export function byteShuffle(block: Uint8Array, typesize: number): Uint8Array {
  if (typesize <= 1) return block.slice();
  const n = Math.floor(block.length / typesize);
  const out = new Uint8Array(block.length);
  out.set(block.subarray(n * typesize), n * typesize);
  for (let b = 0; b < typesize; b++) {
    const plane = b * n;
    for (let i = 0; i < n; i++) out[plane + i] = block[i * typesize + b] as number;
  }
  return out;
}

/**
 * Bit shuffle of one block: bit k of byte b of element i goes to bit (i mod 8) of byte (b·8 + k)·n/8 +
 * ⌊i/8⌋, for the n elements of the block. In format version 2 frames (the ones c-blosc 1 writes, and this
 * module), decoders bit-unshuffle only blocks whose element count is a multiple of 8 and copy the others
 * as they are, so such blocks are copied here too.
 */
export function bitShuffle(block: Uint8Array, typesize: number): Uint8Array {
  const n = block.length / typesize;
  if (!Number.isInteger(n) || n % 8 !== 0) return block.slice();
  // Byte planes first (byte b of every element together), so that each 8×8 bit matrix below is eight
  // consecutive bytes: two aligned 32-bit loads instead of eight strided ones (3× faster).
  const planes = byteShuffle(block, typesize);
  const words = LITTLE_ENDIAN_HOST ? new Uint32Array(planes.buffer, 0, planes.length >>> 2) : undefined;
  const out = new Uint8Array(block.length);
  const rowBytes = n / 8;
  for (let b = 0; b < typesize; b++) {
    const plane = b * n;
    const row0 = b * 8 * rowBytes;
    for (let g = 0; g < rowBytes; g++) {
      // Byte i of the eight (element 8g + i) is row i of the matrix; bit k of row i sits at bit 8i + k
      // of lo (rows 0–3) or hi (rows 4–7).
      let lo: number;
      let hi: number;
      if (words !== undefined) {
        lo = words[(plane >>> 2) + 2 * g] as number;
        hi = words[(plane >>> 2) + 2 * g + 1] as number;
      } else {
        const at = plane + 8 * g;
        lo = (planes[at] as number) | ((planes[at + 1] as number) << 8);
        lo |= ((planes[at + 2] as number) << 16) | ((planes[at + 3] as number) << 24);
        hi = (planes[at + 4] as number) | ((planes[at + 5] as number) << 8);
        hi |= ((planes[at + 6] as number) << 16) | ((planes[at + 7] as number) << 24);
      }
      // Transpose by masked swaps of 2×2, then 4×4, then 8×8 blocks: bit 8i + k trades with 8k + i.
      let t = (lo ^ (lo >>> 7)) & 0x00aa00aa;
      lo = lo ^ t ^ (t << 7);
      t = (hi ^ (hi >>> 7)) & 0x00aa00aa;
      hi = hi ^ t ^ (t << 7);
      t = (lo ^ (lo >>> 14)) & 0x0000cccc;
      lo = lo ^ t ^ (t << 14);
      t = (hi ^ (hi >>> 14)) & 0x0000cccc;
      hi = hi ^ t ^ (t << 14);
      t = (lo ^ (hi << 4)) & 0xf0f0f0f0;
      lo ^= t;
      hi ^= t >>> 4;
      // Byte k now holds bit plane k of the eight elements.
      const row = row0 + g;
      out[row] = lo;
      out[row + rowBytes] = lo >>> 8;
      out[row + 2 * rowBytes] = lo >>> 16;
      out[row + 3 * rowBytes] = lo >>> 24;
      out[row + 4 * rowBytes] = hi;
      out[row + 5 * rowBytes] = hi >>> 8;
      out[row + 6 * rowBytes] = hi >>> 16;
      out[row + 7 * rowBytes] = hi >>> 24;
    }
  }
  return out;
}

/** Whether typed arrays read memory little-endian here (true on every platform Node ships for). */
const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * True when {@link writeBloscFrame} writes `nbytes` with these options: a native compressor, and (for bit
 * shuffle) whole elements, since decoders treat a trailing partial element of a bit-shuffled frame
 * differently across versions.
 */
export function writesNatively(
  options: Pick<BloscFrameOptions, "cname" | "shuffle" | "typesize">,
  nbytes: number,
) {
  if (!NATIVE_BLOSC_COMPRESSORS.has(options.cname)) return false;
  return options.shuffle !== 2 || nbytes % Math.max(1, options.typesize > 255 ? 1 : options.typesize) === 0;
}

/**
 * Writes one Blosc 1 frame of `data`, compressing each block with `compress`. The result decodes with
 * any Blosc 1 or 2 decoder (c-blosc, numcodecs, numcodecs.js) to exactly `data`.
 *
 * @throws {Error} unless {@link writesNatively} holds, or when `data` is larger than a frame can
 *   describe (2 GiB), or when `compress` throws.
 */
export async function writeBloscFrame(
  data: Uint8Array,
  options: BloscFrameOptions,
  compress: BlockCompressor,
): Promise<Uint8Array> {
  const format = FORMAT[options.cname];
  const nbytes = data.length;
  if (format === undefined || !writesNatively(options, nbytes)) {
    throw new Error(`blosc: cannot write ${options.cname} with shuffle ${options.shuffle} natively`);
  }
  if (nbytes > 0x7fffffff - HEADER) throw new Error(`blosc: ${nbytes} bytes do not fit one frame`);
  const typesize = options.typesize > 255 ? 1 : Math.max(1, options.typesize);
  let flags = DONT_SPLIT | (format << 5);
  if (options.shuffle === 1) flags |= DOSHUFFLE;
  if (options.shuffle === 2) flags |= DOBITSHUFFLE;
  const blocksize = chooseBlocksize({ ...options, typesize }, nbytes);

  if (options.clevel > 0 && nbytes >= MIN_BUFFERSIZE) {
    const nblocks = Math.ceil(nbytes / blocksize);
    const parts: Uint8Array[] = [];
    const starts = new Int32Array(nblocks);
    let offset = HEADER + 4 * nblocks;
    let fits = true;
    for (let k = 0; k < nblocks && fits; k++) {
      const block = data.subarray(k * blocksize, Math.min(nbytes, (k + 1) * blocksize));
      const shuffled =
        options.shuffle === 1
          ? byteShuffle(block, typesize)
          : options.shuffle === 2
            ? bitShuffle(block, typesize)
            : block;
      const compressed = await compress(shuffled);
      // A block that does not shrink is stored raw: the decoder copies a stream whose size is the block's.
      const stream = compressed.length < shuffled.length ? compressed : shuffled;
      const size = new Uint8Array(4);
      new DataView(size.buffer).setInt32(0, stream.length, true);
      starts[k] = offset;
      parts.push(size, stream);
      offset += 4 + stream.length;
      // Larger than a plain copy: give up and write the copy below.
      fits = offset < nbytes + HEADER;
    }
    if (fits) {
      const frame = new Uint8Array(offset);
      writeHeader(frame, flags, typesize, nbytes, blocksize, offset);
      frame.set(new Uint8Array(starts.buffer), HEADER);
      let at = HEADER + 4 * nblocks;
      for (const part of parts) {
        frame.set(part, at);
        at += part.length;
      }
      return frame;
    }
  }
  // A plain copy: header, then the bytes unshuffled (decoders ignore the shuffle flags of a copy).
  const frame = new Uint8Array(HEADER + nbytes);
  writeHeader(frame, flags | MEMCPYED, typesize, nbytes, blocksize, frame.length);
  frame.set(data, HEADER);
  return frame;
}

function writeHeader(
  frame: Uint8Array,
  flags: number,
  typesize: number,
  nbytes: number,
  blocksize: number,
  cbytes: number,
): void {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  frame[0] = 2; // Blosc 1 frame format version
  frame[1] = 1; // version of the compressor's format (1 for lz4, zlib and zstd)
  frame[2] = flags;
  frame[3] = typesize;
  view.setUint32(4, nbytes, true);
  view.setUint32(8, blocksize, true);
  view.setUint32(12, cbytes, true);
}
