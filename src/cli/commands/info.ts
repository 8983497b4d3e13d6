/** `zarr-tx info`: metadata, stored chunks and bytes, lock file, pending journal entries, temp files. */
import { existsSync } from "node:fs";
import { normalizePath, open, type ZarrTxArray } from "../../array/array.js";
import { arrayObjects, chunkGrid, findNodes, journalKeys } from "../../array/inspect.js";
import { listEntries, ownerOf } from "../../array/journal.js";
import { mapLimit } from "../../concurrency.js";
import { isZarrTxError } from "../../errors.js";
import { FileSynchronizer } from "../../index.js";
import type { AbsolutePath, Store } from "../../store/types.js";
import { lockScope } from "../../sync/keys.js";
import { EXIT, stringOption } from "../args.js";
import { type Command, STORE_OPTIONS } from "../command.js";
import { findTempFiles, objectSize } from "../inspect.js";
import { formatBytes, type Output, table, toJson } from "../output.js";
import { openStore, s3OptionsOf } from "../stores.js";

/** What `info` reports about one array. */
interface ArrayInfo {
  readonly path: string;
  readonly zarrFormat: 2 | 3;
  readonly shape: readonly number[];
  readonly chunks: readonly number[];
  readonly innerChunks?: readonly number[];
  readonly dtype: string;
  readonly fillValue: unknown;
  readonly codecs: readonly unknown[];
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly grid: readonly number[];
  readonly gridObjects: number;
  readonly storedObjects: number;
  readonly storedBytes: number;
  readonly unexpectedKeys: readonly string[];
  readonly lockFile: { readonly path: string; readonly exists: boolean } | null;
}

/** The file synchronizer's lock file of an array, or null where that synchronizer cannot run. */
function lockFileOf(array: ZarrTxArray, lockDir: string | undefined): ArrayInfo["lockFile"] {
  try {
    const sync = new FileSynchronizer(lockDir === undefined ? {} : { lockDirectory: lockDir });
    const path = sync.lockFileOf(lockScope(array.store.id, array.path));
    return { path, exists: existsSync(path) };
  } catch {
    // Not Linux/macOS, or a store the file synchronizer cannot place without --lock-dir.
    return null;
  }
}

async function describeArray(
  store: Store,
  path: AbsolutePath,
  keys: readonly AbsolutePath[],
  nodePaths: readonly string[],
  lockDir: string | undefined,
  out: Output,
): Promise<ArrayInfo> {
  const array = await open(store, { path });
  const meta = array.metadata;
  const objects = arrayObjects(path, meta, keys, nodePaths);
  let sized = 0;
  const sizes = await mapLimit(objects.chunks, 16, async (chunk) => {
    const size = await objectSize(store, chunk.key);
    out.progress(`info ${path}: ${++sized}/${objects.chunks.length} objects sized`);
    return size;
  });
  const grid = chunkGrid(meta);
  const sharding = meta.codecs[0]?.name === "sharding_indexed" ? meta.codecs[0].configuration : undefined;
  return {
    path,
    zarrFormat: meta.zarrFormat,
    shape: meta.shape,
    chunks: meta.chunkShape,
    ...(sharding ? { innerChunks: sharding.chunk_shape as number[] } : {}),
    dtype: meta.dtype,
    fillValue: array.fillValue,
    codecs: meta.codecs,
    attributes: meta.attributes,
    grid,
    gridObjects: grid.reduce((a, b) => a * b, 1),
    storedObjects: objects.chunks.length,
    storedBytes: sizes.reduce((a, b) => a + b, 0),
    unexpectedKeys: objects.unexpected,
    lockFile: lockFileOf(array, lockDir),
  };
}

function humanArray(info: ArrayInfo): string[] {
  const codecs = info.codecs
    .map((c) => {
      const { name, configuration } = c as { name: string; configuration?: Record<string, unknown> };
      const config =
        configuration && Object.keys(configuration).length > 0 ? ` ${toJson(configuration)}` : "";
      return name + config;
    })
    .join(" → ");
  const rows: [string, string][] = [
    ["format", `Zarr v${info.zarrFormat}`],
    ["shape", `[${info.shape.join(", ")}]`],
    [info.innerChunks ? "shards" : "chunks", `[${info.chunks.join(", ")}]`],
    ...(info.innerChunks
      ? ([["inner chunks", `[${info.innerChunks.join(", ")}]`]] as [string, string][])
      : []),
    ["dtype", info.dtype],
    ["fill value", toJson(info.fillValue)],
    ["codecs", codecs],
    ["grid", `[${info.grid.join(", ")}] = ${info.gridObjects} ${info.innerChunks ? "shards" : "chunks"}`],
    ["stored", `${info.storedObjects} objects, ${formatBytes(info.storedBytes)} (${info.storedBytes} bytes)`],
    [
      "lock file",
      info.lockFile === null
        ? "(file synchronizer unavailable here)"
        : `${info.lockFile.path}${info.lockFile.exists ? "" : " (not created yet: no --sync file transaction has run)"}`,
    ],
  ];
  if (Object.keys(info.attributes).length > 0) rows.push(["attributes", toJson(info.attributes)]);
  if (info.unexpectedKeys.length > 0) {
    rows.push([
      "other keys",
      `${info.unexpectedKeys.length} (not chunks of the grid): ${info.unexpectedKeys.slice(0, 5).join(", ")}`,
    ]);
  }
  return [`array ${info.path}`, ...table(rows, "  ")];
}

/** `zarr-tx info`. */
export const command: Command = {
  name: "info",
  summary: "Show arrays: metadata, chunk count and stored bytes, lock file, pending journal entries.",
  usage: ["info STORE [--path PATH] [options]"],
  description: [
    "Without --path, describes every array in the store (and lists its groups). Reads only; takes no " +
      "locks, so a concurrent writer may change the counts while they are taken.",
    "The lock file is where the file synchronizer (--sync file) keeps the array's locks: one byte per " +
      "chunk or shard. Journal entries (under .zarr-tx/journal/) are multi-chunk transactions being " +
      "applied now, or interrupted by a crash: committed ones are rolled forward and uncommitted ones " +
      "discarded by zarr-tx recover, or by the next transaction on their chunks. Temp files are " +
      "interrupted writes (see zarr-tx recover).",
  ],
  options: {
    ...STORE_OPTIONS,
    "lock-dir": {
      type: "string",
      value: "DIR",
      help: "the file synchronizer's --lock-dir, if the writers use one",
    },
  },
  positionals: { min: 1, max: 1 },
  examples: ["zarr-tx info data.zarr", "zarr-tx info data.zarr --path temps --json"],
  async run({ args, out }) {
    const store = await openStore(args.positionals[0]!, {
      readOnly: true,
      ...s3OptionsOf(args),
    });
    const keys = await store.list("/");
    const { nodes, broken } = await findNodes(store, keys);
    const nodePaths = nodes.map((n) => n.path);
    const pathText = stringOption(args, "path");
    const targets =
      pathText !== undefined
        ? [normalizePath(pathText)]
        : nodes.filter((n) => n.kind === "array").map((n) => n.path);
    const lockDir = stringOption(args, "lock-dir");
    const arrays: ArrayInfo[] = [];
    for (const path of targets) arrays.push(await describeArray(store, path, keys, nodePaths, lockDir, out));
    const journal = await describeJournal(store, keys);
    const temps = await findTempFiles(store);
    const groups = nodes.filter((n) => n.kind === "group").map((n) => n.path);

    const lines: string[] = [`store ${store.id}`];
    if (pathText === undefined) {
      lines.push(
        `  ${arrays.length} array${arrays.length === 1 ? "" : "s"}, ${groups.length} group${groups.length === 1 ? "" : "s"}${groups.length > 0 ? ` (${groups.join(", ")})` : ""}`,
      );
    }
    for (const info of arrays) lines.push("", ...humanArray(info));
    lines.push("");
    lines.push(
      journal.entries.length === 0 && journal.error === null
        ? "journal: no pending entries"
        : `journal: ${journal.entries.length} pending entr${journal.entries.length === 1 ? "y" : "ies"} under ` +
            ".zarr-tx/journal/ — zarr-tx recover applies or discards them",
      ...journal.entries.map(
        (e) =>
          `  ${e.txid}: ${e.state === "commit" ? `committed, ${e.targets.length} object(s) to apply` : e.state === "abort" ? "aborted, to discard" : "no commit record (being written, or to discard)"}` +
          (e.writerPid === null ? "" : `, writer pid ${e.writerPid}`) +
          (e.ageSeconds === null ? "" : `, ${e.ageSeconds} s old`),
      ),
      ...(journal.error === null ? [] : [`  damaged: ${journal.error}`]),
    );
    if (temps.length > 0)
      lines.push(
        `temp files: ${temps.length} left by interrupted writes — zarr-tx recover removes those of dead writers`,
      );
    for (const b of broken) lines.push(`broken metadata: ${b.key}: ${b.error}`);
    out.result(lines, {
      store: store.id,
      arrays,
      groups,
      brokenMetadata: broken,
      journal: {
        pending: journal.entries.length,
        entries: journal.entries,
        keys: journal.keys,
        error: journal.error,
      },
      tempFiles: temps.map((t) => ({
        file: t.file,
        pid: t.pid ?? null,
        ageSeconds: Math.round(t.ageSeconds),
      })),
    });
    return EXIT.ok;
  },
};

/** One pending journal entry, as `info` reports it. */
interface JournalInfo {
  readonly txid: string;
  /** "commit": to roll forward; "abort" or "none" (no record): to discard once its writer is gone. */
  readonly state: "commit" | "abort" | "none";
  /** The keys a committed entry rewrites. */
  readonly targets: readonly string[];
  /** The writer's pid and the entry's age, from its txid (null when the txid is not zarr-tx's). */
  readonly writerPid: number | null;
  readonly ageSeconds: number | null;
}

/** The store's pending journal entries, read with `listJournalEntries`; a damaged record is reported. */
async function describeJournal(
  store: Store,
  keys: readonly AbsolutePath[],
): Promise<{ entries: JournalInfo[]; keys: AbsolutePath[]; error: string | null }> {
  const journal = journalKeys(keys);
  if (journal.length === 0) return { entries: [], keys: journal, error: null };
  try {
    const entries = (await listEntries(store)).map((entry): JournalInfo => {
      const owner = ownerOf(entry.txid);
      return {
        txid: entry.txid,
        state: entry.record?.state ?? "none",
        targets: entry.record?.state === "commit" ? entry.record.targets.map((t) => t.key) : [],
        writerPid: owner?.pid ?? null,
        ageSeconds: owner === undefined ? null : Math.round((Date.now() - owner.createdAtMs) / 1000),
      };
    });
    return { entries, keys: journal, error: null };
  } catch (error) {
    if (!isZarrTxError(error, "ERR_CORRUPT_JOURNAL")) throw error;
    return { entries: [], keys: journal, error: error.message };
  }
}
