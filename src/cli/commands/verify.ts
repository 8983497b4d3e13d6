/** `zarr-tx verify`: decode every stored chunk of every array and report damage by key (library `verify()`). */
import { verify } from "../../array/verify.js";
import { EXIT, stringOption } from "../args.js";
import { type Command, STORE_OPTIONS } from "../command.js";
import { openStore, s3OptionsOf } from "../stores.js";

/** `zarr-tx verify`. */
export const command: Command = {
  name: "verify",
  summary: "Decode every chunk of every array (or of --path) and report damaged objects by key.",
  usage: ["verify STORE [--path PATH] [options]"],
  description: [
    "Reads every metadata document and every stored chunk (or shard) through the array's codecs, and " +
      "checks that each decodes to a whole chunk: a truncated or overwritten file, a checksum mismatch " +
      "(crc32c, shard index) or unparsable metadata is reported with its key and a stable code " +
      "(ERR_CORRUPT_CHUNK for chunks). Exit code 1 when anything is damaged, 0 otherwise.",
    "Verify reads without locks. Each object is replaced atomically, so a concurrent writer never makes " +
      "an object look damaged; it may make the counts move. Keys under an array that are not chunks of " +
      "its grid are listed as warnings, not damage. Pending journal entries (transactions a crash " +
      "interrupted) and temp files are reported as notes: zarr-tx recover deals with them.",
  ],
  options: {
    ...STORE_OPTIONS,
    concurrency: { type: "string", value: "N", help: "objects decoded at once (default 8)" },
  },
  positionals: { min: 1, max: 1 },
  examples: ["zarr-tx verify data.zarr", "zarr-tx verify data.zarr --path temps --json"],
  async run({ args, out, signal }) {
    const concurrencyText = stringOption(args, "concurrency");
    const concurrency =
      concurrencyText === undefined ? 8 : Math.max(1, Number.parseInt(concurrencyText, 10) || 8);
    const store = await openStore(args.positionals[0]!, {
      readOnly: true,
      ...s3OptionsOf(args),
    });
    const path = stringOption(args, "path");
    const report = await verify(store, {
      concurrency,
      signal,
      ...(path !== undefined ? { path } : {}),
      onProgress: (p) =>
        out.progress(`verify: ${p.done}/${p.total} objects, ${p.damaged} damaged (${p.array})`),
    });
    const { damage, unexpectedKeys: unexpected, pendingJournal, tempFiles } = report;
    const total = report.objects;
    const arrays = report.arrays.length;
    const lines = [
      `verify ${store.id}: ${arrays} array${arrays === 1 ? "" : "s"}, ${total} object${total === 1 ? "" : "s"} decoded, ` +
        (damage.length === 0 ? "no damage" : `${damage.length} DAMAGED`),
      ...damage.map((d) => `  damaged ${d.kind} ${d.key} (${d.code}): ${d.message}`),
      ...unexpected.slice(0, 20).map((k) => `  warning: ${k} is not a chunk of its array's grid`),
      ...(pendingJournal.length > 0
        ? [
            `  note: ${pendingJournal.length} pending journal entr${pendingJournal.length === 1 ? "y" : "ies"} ` +
              "(interrupted or running transactions); run zarr-tx recover",
          ]
        : []),
      ...(tempFiles.length > 0
        ? [`  note: ${tempFiles.length} temp file(s) of interrupted writes; run zarr-tx recover`]
        : []),
    ];
    const ok = damage.length === 0;
    out.result(
      lines,
      {
        store: store.id,
        arrays: report.arrays,
        objects: total,
        damage,
        unexpectedKeys: unexpected,
        journal: { pending: pendingJournal.length, txids: pendingJournal },
        tempFiles: tempFiles.length,
      },
      ok,
    );
    return ok ? EXIT.ok : EXIT.failure;
  },
};
