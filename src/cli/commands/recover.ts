/**
 * `zarr-tx recover`: the library's `recover()` from the command line. It rolls committed journal entries
 * forward, discards uncommitted ones, and deletes the temp files of writers that died.
 */
import { recover } from "../../array/recovery.js";
import type { Synchronizer } from "../../sync/types.js";
import { EXIT, flag, numberOption, stringOption } from "../args.js";
import { type Command, STORE_OPTIONS } from "../command.js";
import { openStore, s3OptionsOf } from "../stores.js";
import {
  createSynchronizer,
  describeSync,
  lockTimeoutOf,
  SYNC_OPTIONS,
  syncConfigOf,
} from "../synchronizers.js";

const DEFAULT_MIN_AGE_SECONDS = 60;

/** `zarr-tx recover`. */
export const command: Command = {
  name: "recover",
  summary: "Run recovery: apply or discard pending journal entries, delete temp files of dead writers.",
  usage: ["recover STORE [--sync KIND] [--dry-run] [--min-age SECONDS] [options]"],
  description: [
    "Journal: a transaction that rewrites several chunks first writes a journal entry under " +
      ".zarr-tx/journal/ (the new chunks, then a commit record), then applies it, then deletes it. A writer " +
      "killed in between leaves the entry behind. recover rolls each entry with a commit record forward " +
      "(every chunk it names gets its new bytes) and discards each entry without one (nothing of it was " +
      "applied), so every transaction ends up all-or-nothing. The next transaction that touches a chunk " +
      "such an entry names does the same by itself; recover is for a restarted job, a cron, or before " +
      "handing the data to readers that do not use zarr-tx.",
    "Which entries it may touch: with --sync (file, redis: the synchronizer your writers use), it locks " +
      "the chunks each committed entry names first, so it is safe while writers run. Without --sync, it " +
      "touches only entries whose writer is gone (its pid is dead on this host, or the entry is older " +
      "than --min-age), and reports the others as in progress. --sync inprocess excludes no other " +
      "process: use it only when no other process writes the store. An entry without a commit record is " +
      "removed only once its writer is gone, whatever --sync says.",
    "Temp files: FileSystemStore writes each object to .zarr-tx-tmp-<pid>-<random> and renames it into " +
      "place; a writer killed in between leaves the temp file. Readers never see it. recover deletes those " +
      "whose writer pid is not a live process on this host and that are older than --min-age (default " +
      `${DEFAULT_MIN_AGE_SECONDS} s). On a filesystem shared by several hosts, a pid says nothing about other hosts: ` +
      "keep --min-age well above your longest transaction, or run recover while no writer runs.",
    "Recovery is idempotent: if it is interrupted, run it again. Exit code 0 when it ran (entries of live " +
      "writers left in progress included), 1 when it failed.",
  ],
  options: {
    ...STORE_OPTIONS,
    ...SYNC_OPTIONS,
    "dry-run": { type: "boolean", short: "n", help: "only report what would be done; writes nothing" },
    "min-age": {
      type: "string",
      value: "SECONDS",
      help: `treat writers whose liveness cannot be checked as gone after this long (default ${DEFAULT_MIN_AGE_SECONDS}); 0: at once`,
    },
  },
  positionals: { min: 1, max: 1 },
  examples: [
    "zarr-tx recover data.zarr --dry-run",
    "zarr-tx recover data.zarr --sync file",
    "zarr-tx recover data.zarr --min-age 0 --json",
  ],
  async run({ args, out, signal }) {
    const dryRun = flag(args, "dry-run");
    const minAge = numberOption(args, "min-age", DEFAULT_MIN_AGE_SECONDS);
    const timeoutMs = lockTimeoutOf(args);
    // Only an explicit --sync (or --redis) names the writers' synchronizer; the default in-process one
    // would exclude nobody and let recovery race a live writer of another process.
    const explicitSync = stringOption(args, "sync") !== undefined || args.values.redis !== undefined;
    const syncConfig = syncConfigOf(args);
    const location = args.positionals[0]!;
    const storeOptions = s3OptionsOf(args);
    // Opened read-only first: a missing root is an error, not a new empty store.
    let store = await openStore(location, { readOnly: true, ...storeOptions });
    if (!dryRun) store = await openStore(location, { readOnly: false, ...storeOptions });
    const synchronizer: Synchronizer | undefined = explicitSync
      ? await createSynchronizer(syncConfig)
      : undefined;
    let report: Awaited<ReturnType<typeof recover>>;
    try {
      report = await recover(store, {
        minAgeMs: minAge * 1000,
        dryRun,
        signal,
        ...(synchronizer !== undefined ? { synchronizer } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
    } finally {
      await synchronizer?.close();
    }
    const sync = synchronizer === undefined ? "none" : describeSync(syncConfig);
    const would = dryRun ? "would be " : "";
    const journalCount =
      report.rolledForward.length +
      report.discarded.length +
      report.superseded.length +
      report.inProgress.length +
      report.damaged.length;
    const lines = [
      `recover ${store.id}${dryRun ? " (dry run)" : ""}, locks: ${sync}`,
      journalCount === 0
        ? "  journal: no pending entries"
        : `  journal: ${report.rolledForward.length} ${would}rolled forward, ${report.discarded.length} ${would}discarded, ` +
          `${report.superseded.length} ${would}dropped as superseded, ${report.inProgress.length} left in progress` +
          (report.damaged.length > 0 ? `, ${report.damaged.length} damaged` : ""),
      ...report.rolledForward.map(
        (t) => `    ${would}rolled forward ${t} (committed: every chunk gets its new bytes)`,
      ),
      ...report.discarded.map(
        (t) => `    ${would}discarded ${t} (never committed: nothing of it was applied)`,
      ),
      ...report.superseded.map(
        (t) => `    ${would}dropped ${t} (its writer lost its lease and newer data replaced its chunks)`,
      ),
      ...report.inProgress.map(
        (t) =>
          `    left ${t}: its writer may still be running` +
          (synchronizer === undefined ? " (give --sync to lock its chunks and recover it safely)" : ""),
      ),
      ...report.damaged.map((d) => `    left ${d.txid}: ${d.message}`),
      `  temp files: ${dryRun ? "would remove" : "removed"} ${report.tempFilesRemoved.length}, kept ${report.tempFilesKept.length}`,
      ...report.tempFilesRemoved.map(
        (file) => `    ${dryRun ? "would remove" : "removed"} ${file} (its writer is gone)`,
      ),
      ...report.tempFilesKept.map((t) => `    kept ${t.file}: ${t.reason}`),
    ];
    out.result(
      lines,
      {
        store: store.id,
        dryRun,
        sync,
        journal: {
          rolledForward: report.rolledForward,
          discarded: report.discarded,
          superseded: report.superseded,
          inProgress: report.inProgress,
          damaged: report.damaged,
        },
        tempFiles: {
          removed: report.tempFilesRemoved.map((file) => ({ file })),
          kept: report.tempFilesKept.map((t) => ({ file: t.file, reason: t.reason })),
        },
      },
      report.damaged.length === 0,
    );
    // A damaged record blocks every transaction on the store: that is a failure to report, not success.
    return report.damaged.length === 0 ? EXIT.ok : EXIT.failure;
  },
};
