/** `zarr-tx verify`: decode every stored chunk of every array and report damage by key. */
import { normalizePath, open } from "../../array/array.js";
import { toRaw, type UserTypedArray } from "../../array/dtype.js";
import { sizeOf } from "../../array/ndarray.js";
import { mapLimit } from "../../array/transaction.js";
import { isZarrTxError } from "../../errors.js";
import { EXIT, stringOption } from "../args.js";
import { type Command, STORE_OPTIONS } from "../command.js";
import { arrayObjects, findNodes, findTempFiles, journalKeys } from "../inspect.js";
import { openStore } from "../stores.js";

/** One damaged object. */
interface Damage {
  readonly key: string;
  /** The array it belongs to (for metadata damage: the node's path). */
  readonly array: string;
  readonly kind: "metadata" | "chunk";
  readonly code: string | null;
  readonly error: string;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0] ?? text;
}

/** `zarr-tx verify`. */
export const command: Command = {
  name: "verify",
  summary: "Decode every chunk of every array (or of --path) and report damaged objects by key.",
  usage: ["verify STORE [--path PATH] [options]"],
  description: [
    "Reads every metadata document and every stored chunk (or shard) through the array's codecs, and " +
      "checks that each decodes to a whole chunk: a truncated or overwritten file, a checksum mismatch " +
      "(crc32c, shard index) or unparsable metadata is reported with its key. Exit code 1 when anything " +
      "is damaged, 0 otherwise.",
    "Verify reads without locks. Each object is replaced atomically, so a concurrent writer never makes " +
      "an object look damaged; it may make the counts move. Keys under an array that are not chunks of " +
      "its grid are listed as warnings, not damage.",
  ],
  options: {
    ...STORE_OPTIONS,
    concurrency: { type: "string", value: "N", help: "objects decoded at once (default 8)" },
  },
  positionals: { min: 1, max: 1 },
  examples: ["zarr-tx verify data.zarr", "zarr-tx verify data.zarr --path temps --json"],
  async run({ args, out, signal }) {
    const endpoint = stringOption(args, "endpoint");
    const concurrencyText = stringOption(args, "concurrency");
    const concurrency =
      concurrencyText === undefined ? 8 : Math.max(1, Number.parseInt(concurrencyText, 10) || 8);
    const store = await openStore(args.positionals[0]!, {
      readOnly: true,
      ...(endpoint !== undefined ? { endpoint } : {}),
    });
    const keys = await store.list("/");
    const { nodes, broken } = await findNodes(store, keys);
    const nodePaths = nodes.map((n) => n.path);
    const pathText = stringOption(args, "path");
    const only = pathText === undefined ? undefined : normalizePath(pathText);
    const damage: Damage[] = broken
      .filter((b) => only === undefined || b.key.startsWith(only))
      .map((b) => ({
        key: b.key,
        array: b.key.slice(0, b.key.lastIndexOf("/")) || "/",
        kind: "metadata" as const,
        code: null,
        error: b.error,
      }));
    const targets = nodes.filter((n) => n.kind === "array" && (only === undefined || n.path === only));
    if (only !== undefined && targets.length === 0 && damage.length === 0) {
      // Let open() say precisely what is missing (ERR_ARRAY_NOT_FOUND, or a group).
      await open(store, { path: only });
    }

    // Open every array first, so that progress can show a total.
    const plans: {
      path: string;
      array: Awaited<ReturnType<typeof open>>;
      chunks: { key: string }[];
      unexpected: string[];
    }[] = [];
    for (const node of targets) {
      try {
        const array = await open(store, { path: node.path });
        const objects = arrayObjects(node.path, array.metadata, keys, nodePaths);
        plans.push({ path: node.path, array, chunks: objects.chunks, unexpected: objects.unexpected });
      } catch (error) {
        damage.push({
          key: node.metadataKey,
          array: node.path,
          kind: "metadata",
          code: isZarrTxError(error) ? error.code : null,
          error: firstLine(error),
        });
      }
    }
    const total = plans.reduce((n, p) => n + p.chunks.length, 0);
    let done = 0;
    const perArray: { path: string; chunks: number; damaged: number }[] = [];
    for (const plan of plans) {
      const { state } = plan.array;
      const expected = sizeOf(state.meta.chunkShape);
      let damaged = 0;
      await mapLimit(plan.chunks, concurrency, async ({ key }) => {
        signal.throwIfAborted();
        const bytes = await store.get(key as `/${string}`);
        done++;
        out.progress(`verify: ${done}/${total} objects, ${damage.length} damaged (${plan.path})`);
        if (bytes === undefined) return; // deleted since the listing: nothing to check
        try {
          const decoded = await state.codec.decode(bytes);
          const length = toRaw(decoded.data as unknown as UserTypedArray).length;
          if (length !== expected) throw new Error(`decoded ${length} elements, a chunk has ${expected}`);
        } catch (error) {
          damaged++;
          damage.push({
            key,
            array: plan.path,
            kind: "chunk",
            code: isZarrTxError(error) ? error.code : null,
            error: `${bytes.length} bytes do not decode: ${firstLine(error)}`,
          });
        }
      });
      perArray.push({ path: plan.path, chunks: plan.chunks.length, damaged });
    }
    const unexpected = plans.flatMap((p) => p.unexpected);
    const journal = journalKeys(keys);
    const temps = await findTempFiles(store);

    damage.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const lines = [
      `verify ${store.id}: ${plans.length} array${plans.length === 1 ? "" : "s"}, ${total} object${total === 1 ? "" : "s"} decoded, ` +
        (damage.length === 0 ? "no damage" : `${damage.length} DAMAGED`),
      ...damage.map((d) => `  damaged ${d.kind} ${d.key}: ${d.error}`),
      ...unexpected.slice(0, 20).map((k) => `  warning: ${k} is not a chunk of its array's grid`),
      ...(journal.length > 0
        ? [`  note: ${journal.length} pending journal key(s); run zarr-tx recover`]
        : []),
      ...(temps.length > 0
        ? [`  note: ${temps.length} temp file(s) of interrupted writes; run zarr-tx recover`]
        : []),
    ];
    out.result(
      lines,
      {
        store: store.id,
        arrays: perArray,
        objects: total,
        damage,
        unexpectedKeys: unexpected,
        journal: { pending: journal.length },
        tempFiles: temps.length,
      },
      damage.length === 0,
    );
    return damage.length === 0 ? EXIT.ok : EXIT.failure;
  },
};
