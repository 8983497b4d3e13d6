/**
 * Temp files of interrupted `FileSystemStore` writes: finding them, and telling whether their writer
 * is gone. Readers never see these files (they are renamed into place, or never used); recovery
 * deletes those whose writer died.
 */
import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { FileSystemStore, prefixDirectory, TEMP_FILE_PREFIX } from "./filesystem.js";
import type { Store } from "./types.js";

/** A temp file of an unfinished `FileSystemStore.set` (or journal record creation). */
export interface TempFile {
  /** Absolute filesystem path. */
  readonly file: string;
  /** The writer's process id, from the name (`.zarr-tx-tmp-<pid>-<random>`), or undefined if unreadable. */
  readonly pid: number | undefined;
  /** Age in seconds (from its modification time). */
  readonly ageSeconds: number;
}

/**
 * Every temp file under a filesystem store's root (symbolic links are not followed). Empty for other
 * stores. Files that vanish during the walk (their writer finished) are skipped.
 */
export async function findTempFiles(store: Store): Promise<TempFile[]> {
  if (!(store instanceof FileSystemStore)) return [];
  const found: TempFile[] = [];
  const now = Date.now();
  const walk = async (dir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // removed meanwhile, or unreadable: nothing we could clean there anyway
    }
    for (const entry of entries) {
      const file = join(dir, entry.name);
      if (entry.isDirectory()) await walk(file);
      else if (entry.isFile() && entry.name.startsWith(TEMP_FILE_PREFIX)) {
        const pid = /^(\d+)-/.exec(entry.name.slice(TEMP_FILE_PREFIX.length))?.[1];
        try {
          const info = await stat(file);
          found.push({
            file,
            pid: pid === undefined ? undefined : Number(pid),
            ageSeconds: (now - info.mtimeMs) / 1000,
          });
        } catch {
          // Renamed into place by its writer while we looked.
        }
      }
    }
  };
  await walk(store.root);
  return found;
}

/**
 * The names of the directories directly under `prefix` ("/a/b/") of a filesystem store; empty for other
 * stores, or when the directory is missing. Symbolic links are not reported.
 */
export async function findSubdirectories(store: Store, prefix: string): Promise<string[]> {
  if (!(store instanceof FileSystemStore)) return [];
  try {
    const entries = await readdir(prefixDirectory(store.root, prefix), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * Whether a process with this pid exists on this host: signal 0 probes without signalling. EPERM means
 * it exists under another user. A pid from another host (shared filesystem) tells nothing: callers
 * add an age threshold.
 */
export function processAlive(pid: number): boolean {
  // kill(0 or negative) would probe a process group, not a process: such a name is not ours; keep it.
  if (pid === process.pid || !Number.isSafeInteger(pid) || pid < 1) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why a temp file must be kept, or undefined when its writer is gone and it may be deleted. */
export function tempFileKeepReason(temp: TempFile, minAgeSeconds: number): string | undefined {
  if (temp.pid === undefined) return "its name carries no writer pid";
  if (processAlive(temp.pid)) return `its writer (pid ${temp.pid}) is alive`;
  // A pid names a process of this host only; on a filesystem shared by several hosts a young file may
  // belong to a live writer elsewhere, so only files older than the threshold go.
  if (temp.ageSeconds < minAgeSeconds) return `younger than the minimum age of ${minAgeSeconds} s`;
  return undefined;
}
