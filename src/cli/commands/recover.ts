/** `zarr-tx recover`: pending journal entries (none in this version) and temp files of dead writers. */
import { unlink } from "node:fs/promises";
import { EXIT, flag, numberOption, stringOption } from "../args.js";
import { type Command, STORE_OPTIONS } from "../command.js";
import { findTempFiles, journalKeys, processAlive, type TempFile } from "../inspect.js";
import { openStore } from "../stores.js";

const DEFAULT_MIN_AGE_SECONDS = 60;

/** Why a temp file is kept, or undefined when it may go. */
function keepReason(temp: TempFile, minAgeSeconds: number): string | undefined {
  if (temp.pid === undefined) return "its name carries no writer pid";
  if (processAlive(temp.pid)) return `its writer (pid ${temp.pid}) is alive`;
  // A pid names a process of this host only; on a filesystem shared by several hosts a young file may
  // belong to a live writer elsewhere, so only files older than the threshold go.
  if (temp.ageSeconds < minAgeSeconds) return `younger than --min-age ${minAgeSeconds} s`;
  return undefined;
}

/** `zarr-tx recover`. */
export const command: Command = {
  name: "recover",
  summary: "Run recovery: pending journal entries, and temp files left by writers that died.",
  usage: ["recover STORE [--dry-run] [--min-age SECONDS] [options]"],
  description: [
    "Journal: a transaction that rewrites several chunks will first write a journal entry under " +
      ".zarr-tx/journal/ and recovery will roll it forward or discard it. This version writes no journal " +
      "(crash atomicity across chunks is not built yet): recover says so, and if it finds entries written " +
      "by a newer version, it leaves them alone and exits with code 1.",
    "Temp files: FileSystemStore writes each object to .zarr-tx-tmp-<pid>-<random> and renames it into " +
      "place; a writer killed in between leaves the temp file. Readers never see it. recover deletes those " +
      "whose writer pid is not a live process on this host and that are older than --min-age (default " +
      `${DEFAULT_MIN_AGE_SECONDS} s). On a filesystem shared by several hosts, a pid says nothing about other hosts: ` +
      "keep --min-age well above your longest write, or run recover while no writer runs.",
  ],
  options: {
    ...STORE_OPTIONS,
    "dry-run": { type: "boolean", short: "n", help: "only report what would be removed" },
    "min-age": {
      type: "string",
      value: "SECONDS",
      help: `remove only temp files older than this (default ${DEFAULT_MIN_AGE_SECONDS}); 0 removes every dead writer's file`,
    },
  },
  positionals: { min: 1, max: 1 },
  examples: ["zarr-tx recover data.zarr --dry-run", "zarr-tx recover data.zarr --min-age 0 --json"],
  async run({ args, out }) {
    const endpoint = stringOption(args, "endpoint");
    const dryRun = flag(args, "dry-run");
    const minAge = numberOption(args, "min-age", DEFAULT_MIN_AGE_SECONDS);
    // Read-only: recover deletes temp files directly, never through the store, and must not create a root.
    const store = await openStore(args.positionals[0]!, {
      readOnly: true,
      ...(endpoint !== undefined ? { endpoint } : {}),
    });
    const journal = journalKeys(await store.list("/"));
    const temps = await findTempFiles(store);
    const removed: TempFile[] = [];
    const kept: (TempFile & { reason: string })[] = [];
    for (const temp of temps) {
      const reason = keepReason(temp, minAge);
      if (reason !== undefined) {
        kept.push({ ...temp, reason });
        continue;
      }
      if (!dryRun) {
        try {
          await unlink(temp.file);
        } catch (error) {
          // Gone already (someone else cleaned it): that is the goal; anything else is reported.
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
            kept.push({ ...temp, reason: `cannot delete: ${(error as Error).message}` });
            continue;
          }
        }
      }
      removed.push(temp);
    }
    const verb = dryRun ? "would remove" : "removed";
    const lines = [
      `recover ${store.id}`,
      journal.length === 0
        ? "  journal: no pending entries (this version writes no journal: multi-chunk crash atomicity is not built yet)"
        : `  journal: ${journal.length} pending key(s) found, but this version cannot apply journal entries; left untouched`,
      `  temp files: ${verb} ${removed.length}, kept ${kept.length}`,
      ...removed.map(
        (t) => `    ${verb} ${t.file} (writer pid ${t.pid} is gone, ${Math.round(t.ageSeconds)} s old)`,
      ),
      ...kept.map((t) => `    kept ${t.file}: ${t.reason}`),
    ];
    const ok = journal.length === 0;
    out.result(
      lines,
      {
        store: store.id,
        dryRun,
        journal: { pending: journal.length, keys: journal, supported: false },
        tempFiles: {
          removed: removed.map((t) => ({
            file: t.file,
            pid: t.pid ?? null,
            ageSeconds: Math.round(t.ageSeconds),
          })),
          kept: kept.map((t) => ({ file: t.file, pid: t.pid ?? null, reason: t.reason })),
        },
      },
      ok,
    );
    return ok ? EXIT.ok : EXIT.failure;
  },
};
