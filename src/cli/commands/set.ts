/** `zarr-tx set`: write a region atomically (exclusive locks on every chunk it rewrites). */
import { readFile } from "node:fs/promises";
import { open } from "../../array/array.js";
import { toUser } from "../../array/dtype.js";
import { normalizeSelection } from "../../array/selection.js";
import { set, type WriteValue } from "../../array/transaction.js";
import { ValueError } from "../../errors.js";
import { EXIT, stringOption, UsageError } from "../args.js";
import { arrayPathOf, type Command, STORE_OPTIONS } from "../command.js";
import { decodeNpy } from "../npy.js";
import { formatSelection, parseSelection } from "../selection.js";
import { openStore, s3OptionsOf } from "../stores.js";
import { lockTimeoutOf, SYNC_OPTIONS, syncConfigOf, withSynchronizer } from "../synchronizers.js";
import { writeValueOf } from "../values.js";
import { describeMetrics, measured, SEL_OPTION } from "./get.js";

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseJsonValue(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
}

/** `zarr-tx set`. */
export const command: Command = {
  name: "set",
  summary: "Write a region atomically from a JSON value (a scalar is broadcast) or a .npy/JSON file.",
  usage: ["set STORE [--path PATH] [--sel SEL] (--value JSON | --value - | --in FILE) [options]"],
  description: [
    "One transaction: every chunk the selection touches is locked exclusively before the first byte is " +
      "read, partly covered chunks are read, merged and rewritten, each with an atomic replace. The value " +
      "is checked against the selection's shape and the array's dtype before any lock is taken.",
    "A JSON value is a scalar (written to every selected element) or nested lists of exactly the " +
      "selection's shape; write 64-bit integers beyond 2^53 as strings of digits. A .npy file must have " +
      "the array's dtype and the selection's shape (C or Fortran order, either byte order).",
    "The default in-process synchronizer does not exclude other processes: with concurrent writers, use " +
      "--sync file or --sync redis, like they do.",
  ],
  options: {
    ...STORE_OPTIONS,
    ...SEL_OPTION,
    value: {
      type: "string",
      short: "v",
      value: "JSON",
      help: "the value as JSON, or - to read JSON from stdin",
    },
    in: {
      type: "string",
      short: "i",
      value: "FILE",
      help: "read the value from a .npy file (by its magic) or a JSON file",
    },
    ...SYNC_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  examples: [
    'zarr-tx set data.zarr -p temps --sel "10:40,:" --value 21.5',
    'zarr-tx set data.zarr -p counts --sel "0,0:3" --value "[1, 2, 3]" --sync file',
    'zarr-tx set data.zarr -p temps --sel "0:3,0:4" --in block.npy',
  ],
  async run({ args, out }) {
    const sync = syncConfigOf(args);
    const timeoutMs = lockTimeoutOf(args);
    const valueText = stringOption(args, "value");
    const inFile = stringOption(args, "in");
    if ((valueText === undefined) === (inFile === undefined)) {
      throw new UsageError("give the value with exactly one of --value JSON, --value - (stdin) or --in FILE");
    }
    // Read the input before opening anything: a bad file fails without touching the store.
    let input: { json: unknown } | { npy: Uint8Array };
    if (inFile !== undefined) {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(inFile));
      } catch (error) {
        throw new UsageError(`cannot read --in ${inFile}: ${(error as Error).message}`);
      }
      input = NPY_MAGIC.every((b, i) => bytes[i] === b)
        ? { npy: bytes }
        : { json: parseJsonValue(new TextDecoder().decode(bytes), inFile) };
    } else {
      input = {
        json: parseJsonValue(
          valueText === "-" ? await readStdin() : valueText!,
          valueText === "-" ? "stdin" : "--value",
        ),
      };
    }
    const store = await openStore(args.positionals[0]!, {
      readOnly: false,
      ...s3OptionsOf(args),
    });
    return withSynchronizer(sync, async (synchronizer) => {
      const array = await open(store, { path: arrayPathOf(args), synchronizer });
      const selection = parseSelection(stringOption(args, "sel") ?? "", array.shape.length);
      const shape = normalizeSelection(selection, array.shape).shape;
      let value: WriteValue;
      if ("npy" in input) {
        const npy = decodeNpy(input.npy);
        if (npy.dtype !== array.dtype) {
          throw new ValueError(
            "ERR_VALUE_DTYPE",
            `the .npy file holds ${npy.dtype} but the array is ${array.dtype}; convert it first (numpy: a.astype("${array.dtype}"))`,
          );
        }
        value = { data: toUser(npy.dtype, npy.data), shape: npy.shape, stride: npy.stride };
      } else {
        value = writeValueOf(array.dtype, shape, input.json);
      }
      const { metrics } = await measured(() =>
        set(array, selection, value, timeoutMs === undefined ? {} : { timeoutMs }),
      );
      const metric = metrics[metrics.length - 1];
      const count = shape.reduce((a, b) => a * b, 1);
      const where = formatSelection(selection);
      out.result(
        `wrote ${count} element${count === 1 ? "" : "s"} to ${array.path}[${where}]: ${describeMetrics(metric)}`,
        {
          store: store.id,
          path: array.path,
          selection: where,
          shape,
          elements: count,
          metrics: metric ?? null,
        },
      );
      return EXIT.ok;
    });
  },
};
