/**
 * `recover(store)`: runs recovery over a whole store, explicitly (transactions recover the entries that
 * name their keys by themselves; this is for a restarted job, a cron, or the CLI).
 *
 * 1. List the journal (`/.zarr-tx/journal/`) and read each entry's record.
 * 2. For an entry with a commit or abort record: lock every key it names exclusively through the given
 *    synchronizer (the one the writers use), re-read the record (a live writer may have finished it
 *    meanwhile), and roll it forward or discard it (`recoverEntry`). Without a synchronizer, an entry
 *    whose writer may still be running (its pid is alive on this host, or it is younger than
 *    `minAgeMs` and from another host) is left alone.
 * 3. For an entry without a record: if its writer is gone (its pid is dead on this host, or it is older
 *    than `minAgeMs`), write an abort record (created only if absent, so a slow writer cannot commit it
 *    later) and delete the entry. Otherwise leave it: its writer is still writing it.
 * 4. Filesystem stores: delete the temp files of writers that are gone (same rule).
 * Every step is idempotent: recovery may crash and run again.
 */
import { unlink } from "node:fs/promises";
import { StoreError } from "../errors.js";
import { findSubdirectories, findTempFiles, processAlive, tempFileKeepReason } from "../store/temp-files.js";
import type { Store } from "../store/types.js";
import type { AcquireOptions, Synchronizer } from "../sync/types.js";
import {
  type EntryOutcome,
  HOST_TAG,
  JOURNAL_PREFIX,
  listEntries,
  lockKeysOf,
  ownerOf,
  recoverEntry,
  rereadEntry,
} from "./journal.js";

/** Options of {@link recover}. */
export interface RecoverOptions extends AcquireOptions {
  /**
   * The synchronizer the store's writers use. Recovery then locks each entry's keys before touching it,
   * and may run while writers run. Without one, entries whose writer may be alive are left alone.
   */
  readonly synchronizer?: Synchronizer;
  /**
   * An entry without a commit record, or a temp file, whose writer ran on another host (or whose pid
   * cannot be checked) is treated as abandoned once it is this old. Default 10 minutes; keep it well
   * above your longest transaction.
   */
  readonly minAgeMs?: number;
  /** Only report what would be done. */
  readonly dryRun?: boolean;
}

/** What {@link recover} did (or, with `dryRun`, would do). Entries are named by txid. */
export interface RecoveryReport {
  /** Committed entries applied. */
  readonly rolledForward: string[];
  /** Entries that were never committed (or were torn before their commit point), deleted. */
  readonly discarded: string[];
  /** Committed entries whose targets newer writes replaced (a writer that lost its lease), deleted. */
  readonly superseded: string[];
  /** Entries left alone because their writer may still be running. */
  readonly inProgress: string[];
  /**
   * Entries whose record is whole but unreadable (damaged from outside, or written by a newer zarr-tx):
   * left alone. Transactions on this store fail with `ERR_CORRUPT_JOURNAL` until they are removed.
   */
  readonly damaged: { readonly txid: string; readonly message: string }[];
  /** Temp files of dead writers deleted, and their empty journal entry directories (filesystem stores). */
  readonly tempFilesRemoved: string[];
  /** Temp files kept, with the reason. */
  readonly tempFilesKept: { readonly file: string; readonly reason: string }[];
}

const DEFAULT_MIN_AGE_MS = 10 * 60 * 1000;

/**
 * Runs recovery over `store`: applies or discards every pending journal entry and removes the temp files
 * of dead writers (see the protocol at the top of this file). Idempotent; safe to run while writers run
 * when `synchronizer` is the one they use.
 *
 * Throws `StoreError` (`ERR_STORE_READ_ONLY` for a read-only store unless `dryRun`, `ERR_STORE_IO`,
 * `ERR_CORRUPT_JOURNAL` for a record damaged from outside) and `LockError` when locking an entry's keys
 * times out or is aborted.
 */
export async function recover(store: Store, options: RecoverOptions = {}): Promise<RecoveryReport> {
  const minAgeMs = options.minAgeMs ?? DEFAULT_MIN_AGE_MS;
  const dryRun = options.dryRun ?? false;
  if (store.readOnly && !dryRun) {
    // Checked up front: a half-done recovery of a read-only store would fail on its first delete.
    throw new StoreError(
      "ERR_STORE_READ_ONLY",
      `recovery writes to ${store.id}, which is read-only; open it writable or use dryRun to only look`,
    );
  }
  const report: RecoveryReport = {
    rolledForward: [],
    discarded: [],
    superseded: [],
    inProgress: [],
    damaged: [],
    tempFilesRemoved: [],
    tempFilesKept: [],
  };
  const record = (txid: string, outcome: EntryOutcome): void => {
    const list =
      outcome === "rolled-forward"
        ? report.rolledForward
        : outcome === "superseded"
          ? report.superseded
          : report.discarded;
    list.push(txid);
  };
  const entries = await listEntries(store, { tolerant: true });
  for (const entry of entries) {
    if (entry.damaged) {
      report.damaged.push({ txid: entry.txid, message: entry.damaged.message });
      continue;
    }
    const abandoned = writerGone(entry.txid, minAgeMs);
    const keys = lockKeysOf(entry);
    if (entry.record === undefined || (!options.synchronizer && !abandoned)) {
      // Without a record (or a lock to wait on), only a writer known to be gone lets us act.
      if (!abandoned) {
        report.inProgress.push(entry.txid);
        continue;
      }
    }
    if (dryRun) {
      record(entry.txid, entry.record?.state === "commit" ? "rolled-forward" : "discarded");
      continue;
    }
    if (options.synchronizer && keys.length > 0) {
      const lease = await options.synchronizer.acquire(keys, "exclusive", options);
      try {
        const fresh = await rereadEntry(store, entry);
        if (fresh) record(entry.txid, await recoverEntry(store, fresh));
      } finally {
        await lease.release();
      }
    } else {
      record(entry.txid, await recoverEntry(store, entry));
    }
  }
  // A writer killed between creating its entry's directory and its first object leaves the directory
  // empty, so no listing shows the entry: remove such directories once their writer is gone. (Listed
  // entries were settled above, their directories with them, or are still in progress.)
  const listed = new Set(entries.map((e) => e.txid));
  for (const name of await findSubdirectories(store, JOURNAL_PREFIX)) {
    if (listed.has(name) || !writerGone(name, minAgeMs) || !store.removeEmptyDirectory) continue;
    const prefix = `${JOURNAL_PREFIX}${name}/`;
    if (dryRun || (await store.removeEmptyDirectory(prefix))) report.tempFilesRemoved.push(prefix);
  }
  for (const temp of await findTempFiles(store)) {
    const reason = tempFileKeepReason(temp, minAgeMs / 1000);
    if (reason !== undefined) {
      report.tempFilesKept.push({ file: temp.file, reason });
      continue;
    }
    if (!dryRun) {
      try {
        await unlink(temp.file);
      } catch (error) {
        // Gone already (its writer or another recovery): that is the goal.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
          report.tempFilesKept.push({
            file: temp.file,
            reason: `cannot delete: ${(error as Error).message}`,
          });
          continue;
        }
      }
    }
    report.tempFilesRemoved.push(temp.file);
  }
  return report;
}

/** True when an entry's writer cannot be running any more (or is old enough to be treated so). */
function writerGone(txid: string, minAgeMs: number): boolean {
  const owner = ownerOf(txid);
  if (!owner) return false;
  if (owner.hostTag === HOST_TAG && owner.pid !== process.pid && !processAlive(owner.pid)) return true;
  return Date.now() - owner.createdAtMs >= minAgeMs;
}
