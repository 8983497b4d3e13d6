/**
 * The native addon `fs-native-extensions` (prebuilt; it ships no types), loaded once per process for
 * every layer that uses it: OFD byte-range locks (`FileSynchronizer`) and the atomic exchange of two
 * names (`FileSystemStore`). Importing zarr-tx never loads it; the first user does.
 */
import { createRequire } from "node:module";

/** The part of `fs-native-extensions` zarr-tx uses. */
export interface NativeExtensions {
  tryLock(fd: number, offset: number, length: number, options: { shared: boolean }): boolean;
  waitForLock(fd: number, offset: number, length: number, options: { shared: boolean }): Promise<void>;
  unlock(fd: number, offset: number, length: number): void;
  /** `renameat2(RENAME_EXCHANGE)` on Linux: swaps what the two names point to, atomically. */
  swapSync(from: string, to: string): void;
}

let loaded: NativeExtensions | undefined;

/**
 * The addon, loaded on the first call. Its first load resolves the prebuild through several packages
 * (10 ms in plain Node, ~100 ms under a loader such as tsx), so callers load it when they are made,
 * not inside their first operation. Throws when the addon cannot be loaded.
 */
export function nativeExtensions(): NativeExtensions {
  loaded ??= createRequire(import.meta.url)("fs-native-extensions") as NativeExtensions;
  return loaded;
}
