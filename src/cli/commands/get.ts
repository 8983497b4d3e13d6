/** `zarr-tx get`: read a region under shared locks, to JSON on stdout or to a .npy or JSON file. */
import { writeFile } from "node:fs/promises";
import { open } from "../../array/array.js";
import { onTransaction, type TransactionMetrics } from "../../array/metrics.js";
import { sizeOf } from "../../array/ndarray.js";
import { get } from "../../array/transaction.js";
import { isZarrTxError } from "../../errors.js";
import { choiceOption, EXIT, intOption, stringOption, UsageError } from "../args.js";
import { arrayPathOf, type Command, STORE_OPTIONS } from "../command.js";
import { encodeNpy } from "../npy.js";
import { formatBytes, toJson } from "../output.js";
import { formatSelection, parseSelection } from "../selection.js";
import { openStore, s3OptionsOf } from "../stores.js";
import { lockTimeoutOf, SYNC_OPTIONS, syncConfigOf, withSynchronizer } from "../synchronizers.js";
import { cOrderData, formatNested, toNested } from "../values.js";

/** The selection option of get and set. */
export const SEL_OPTION = {
  sel: {
    type: "string",
    short: "s",
    value: "SEL",
    help: 'NumPy-like selection, one entry per dimension: "0:10,5", "::2,...", "-1" (default: everything)',
  },
} as const;

/** Runs `fn` and returns its result with the metrics of the transactions it ran (via onTransaction). */
export async function measured<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; metrics: TransactionMetrics[] }> {
  const metrics: TransactionMetrics[] = [];
  const stop = onTransaction((m) => {
    metrics.push(m);
  });
  try {
    return { result: await fn(), metrics };
  } finally {
    stop();
  }
}

/** One line about a transaction's cost, for human output. */
export function describeMetrics(m: TransactionMetrics | undefined): string {
  if (m === undefined) return "";
  const io =
    m.chunksWritten + m.chunksDeleted > 0
      ? `${m.chunksWritten} chunk(s) written (${formatBytes(m.bytesWritten)})`
      : `${m.chunksRead} chunk(s) read (${formatBytes(m.bytesRead)}), ${m.chunksMissing} missing`;
  return `${io}; lock wait ${m.lockWaitMs.toFixed(2)} ms, held ${m.lockHoldMs.toFixed(2)} ms`;
}

/** `zarr-tx get`. */
export const command: Command = {
  name: "get",
  summary: "Read a region (a consistent snapshot under shared locks) as JSON, or into a .npy or JSON file.",
  usage: ["get STORE [--path PATH] [--sel SEL] [--out FILE.npy|FILE.json] [options]"],
  description: [
    "The read takes shared locks on every chunk it touches (and on the array's metadata) through the " +
      "chosen synchronizer, so it never sees half of another zarr-tx transaction that uses the same one. " +
      "The default in-process synchronizer only orders transactions of this one command: use --sync file " +
      "or --sync redis to be isolated from other processes.",
    "JSON output: nested lists; bool as true/false, 64-bit integers as exact digits, NaN and infinities as " +
      'the strings "NaN", "Infinity", "-Infinity". With --out FILE.npy, NumPy .npy (format 1.0) in C order, ' +
      "or Fortran order with --order F.",
  ],
  options: {
    ...STORE_OPTIONS,
    ...SEL_OPTION,
    out: {
      type: "string",
      short: "o",
      value: "FILE",
      help: "write to FILE: .npy (NumPy) if it ends in .npy, else JSON",
    },
    order: { type: "string", value: "C|F", help: "memory order of a .npy file (default C)" },
    "max-elements": {
      type: "string",
      value: "N",
      help: "refuse JSON output of more than N elements (default 1000000); .npy has no limit",
    },
    ...SYNC_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  examples: [
    'zarr-tx get data.zarr -p temps --sel "0:3,0:4"',
    'zarr-tx get data.zarr -p temps --sel "10,..." --out row10.npy',
    "zarr-tx get data.zarr -p temps --sync file --json",
  ],
  async run({ args, out }) {
    const sync = syncConfigOf(args);
    const timeoutMs = lockTimeoutOf(args);
    const file = stringOption(args, "out");
    const npy = file?.toLowerCase().endsWith(".npy") === true;
    const order = choiceOption(args, "order", ["C", "F"], "C");
    if (stringOption(args, "order") !== undefined && !npy)
      throw new UsageError("--order applies to .npy output (--out FILE.npy)");
    const maxElements = intOption(args, "max-elements", { min: 0, max: Number.MAX_SAFE_INTEGER }, 1_000_000);
    const readOnlyStore = await openStore(args.positionals[0]!, {
      readOnly: true,
      ...s3OptionsOf(args),
    });
    return withSynchronizer(sync, async (synchronizer) => {
      const opened = await open(readOnlyStore, { path: arrayPathOf(args), synchronizer });
      const selection = parseSelection(stringOption(args, "sel") ?? "", opened.shape.length);
      const options = timeoutMs === undefined ? {} : { timeoutMs };
      let array = opened;
      let store = readOnlyStore;
      const { result, metrics } = await measured(async () => {
        try {
          return await get(array, selection, options);
        } catch (error) {
          // A dead writer's journal entry names these chunks: recover it, as every zarr-tx reader does,
          // through a writable handle (the read-only one cannot apply it).
          if (!isZarrTxError(error, "ERR_RECOVERY_NEEDED")) throw error;
          store = await openStore(args.positionals[0]!, { readOnly: false, ...s3OptionsOf(args) });
          array = await open(store, { path: arrayPathOf(args), synchronizer });
          return get(array, selection, options);
        }
      });
      const count = sizeOf(result.shape);
      if (!npy && count > maxElements) {
        throw new UsageError(
          `the selection has ${count} elements, more than --max-elements ${maxElements} for JSON; ` +
            "write it to a .npy file with --out FILE.npy, or raise --max-elements",
        );
      }
      const data = cOrderData(array.dtype, result);
      const where = {
        store: store.id,
        path: array.path,
        selection: formatSelection(selection),
        shape: result.shape,
        dtype: array.dtype,
      };
      const metric = metrics[metrics.length - 1];
      if (file !== undefined) {
        const bytes = npy
          ? encodeNpy(array.dtype, result.shape, data, { fortranOrder: order === "F" })
          : new TextEncoder().encode(`${toJson(toNested(array.dtype, result.shape, data))}\n`);
        await writeFile(file, bytes);
        out.result(
          `wrote ${array.path}[${where.selection}] (${array.dtype}, shape [${result.shape.join(", ")}]) to ${file}` +
            (npy ? ` as .npy, ${order} order` : " as JSON"),
          {
            ...where,
            file,
            format: npy ? "npy" : "json",
            ...(npy ? { order } : {}),
            metrics: metric ?? null,
          },
        );
        return EXIT.ok;
      }
      const nested = toNested(array.dtype, result.shape, data);
      out.result(formatNested(nested), { ...where, data: nested, metrics: metric ?? null });
      return EXIT.ok;
    });
  },
};
