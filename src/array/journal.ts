/**
 * The crash journal: a transaction that rewrites several stored objects is all-or-nothing across crashes,
 * while the data stay plain Zarr (the journal lives under `/.zarr-tx/journal/`, which Zarr readers ignore).
 *
 * Commit of several objects (`commitObjects`), under a lease that holds every target exclusively:
 * 1. Mark the lease (`Lease.markJournal`) where the synchronizer offers it, so that the next holder of
 *    these keys knows to look for an entry even where listing the store is costly (S3).
 * 2. Check the lease is still held.
 * 3. Write the entry: each new object at `<txid>.<i>`, and the commit record `<txid>.commit`, created
 *    only if absent, naming every target key, its lock key, size and CRC32C (a deletion names none).
 *    On stores that rename (files) objects and record go out in one batch made durable by one directory
 *    fsync; elsewhere the objects first, then the record. The record is the commit point.
 *    An entry of more than NEST_MIN_OBJECTS objects keeps them in a directory of its own, `<txid>/<i>`
 *    (format 2), removed with the entry: a filesystem directory never shrinks, so one huge entry in the
 *    journal directory itself would slow down every later listing of it.
 *    With `applyInPlace` (files, opt-in) and at most INLINE_MAX_BYTES of new bytes, the objects are not
 *    files of their own: their bytes follow the record's JSON inside the record (format 2), so the entry
 *    is one file.
 * 4. Apply: rename each object onto its target (files), or copy it inside the store under the condition
 *    read under the lease (S3), or read and write it, or (inline entries) write its bytes into the
 *    target in place; delete the targets to delete.
 * 5. Delete the entry (objects left, then the record) and clear the mark.
 *
 * Recovery of an entry (`recoverEntry`), by a process holding every target exclusively (or by
 * `recover()` when no writer runs):
 * - No record, or an abort record: nothing was applied; delete the entry. Who finds an entry without a
 *   record first writes an abort record (created only if absent), so a writer that was merely slow
 *   cannot commit it afterwards: its record write fails, and it aborts.
 * - A commit record: for each target, the target already holds the object's bytes (CRC32C and size
 *   match, or absent for a deletion): applied. Otherwise the object must be present and intact: apply it.
 *   An object missing or damaged while its target does not match can only mean the entry never became
 *   durable (the batch of step 3 was cut by a crash; nothing is applied before it is durable): discard.
 *   Under a conditional store, a target whose version differs from the one the writer read means newer
 *   data superseded a writer whose lease was lost: the entry is discarded, and the report says so.
 * Every step is idempotent, so recovery itself may crash and run again.
 */
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { crc32c } from "../codecs/index.js";
import { forEachLimit } from "../concurrency.js";
import { isZarrTxError, LeaseLostError, StoreError, TransactionError } from "../errors.js";
import type { AbsolutePath, KeyValue, Store, WriteCondition } from "../store/types.js";
import type { Lease } from "../sync/types.js";

/** Where journal entries live, relative to the store's root. Zarr readers ignore `.zarr-tx`. */
export const JOURNAL_PREFIX = "/.zarr-tx/journal/";

const RECORD_SUFFIX = ".commit";
/** Records whose objects are separate files. */
const FORMAT_VERSION = 1;
/** Records with what format 1 lacks (`inline` bytes, `nested` objects): older zarr-tx refuses them. */
const FORMAT_VERSION_2 = 2;
/**
 * Entries with more objects than this keep them in a directory of their own (see the protocol, step 3).
 * `ZARR_TX_JOURNAL_NEST_MIN_OBJECTS` overrides it (tests: nested entries under SIGKILL with few chunks).
 */
const NEST_MIN_OBJECTS = Number(process.env.ZARR_TX_JOURNAL_NEST_MIN_OBJECTS) || 64;
/**
 * The most new bytes a transaction keeps inside its record (with `applyInPlace`). Every transaction that
 * finds another's live entry reads its record, so records stay small; larger transactions write one
 * journal file per object and rename them into place, as without the option (for large objects the
 * data, not the extra file, is the cost).
 */
export const INLINE_MAX_BYTES = 64 * 1024;

/** One object a transaction rewrites. */
export interface ObjectWrite {
  /** The store key of the object. */
  readonly key: AbsolutePath;
  /** The lock key that guards it (recorded, so recovery knows what to lock without opening arrays). */
  readonly lockKey: string;
  /** The new bytes, or undefined to delete the object. */
  readonly bytes: Uint8Array | undefined;
  /**
   * On a store with conditional writes: the version read under the lease (null: it did not exist);
   * undefined when unknown. The write is conditioned on it (fencing).
   */
  readonly expected?: string | null;
}

interface TargetRecord {
  readonly key: AbsolutePath;
  readonly lock: string;
  /** Index of the journal object, or null for a deletion. */
  readonly object: number | null;
  readonly size: number;
  readonly crc32c: number;
  readonly expected?: string | null;
}

/** A journal entry's record: the commit point, or the mark that it was abandoned. */
export type JournalRecord =
  | {
      readonly zarrTxJournal: number;
      readonly state: "commit";
      readonly txid: string;
      readonly targets: readonly TargetRecord[];
      /** Format 2: the objects' bytes follow the JSON, in object order (not part of the JSON). */
      readonly inline?: true;
      /** Format 2: the objects are `<txid>/<i>`, in a directory of the entry's own. */
      readonly nested?: true;
      /** The bytes after the JSON of an inline record, once read (never serialized into the JSON). */
      readonly payload?: Uint8Array;
    }
  | {
      readonly zarrTxJournal: number;
      readonly state: "abort";
      readonly txid: string;
      readonly reason: string;
    };

/** A pending journal entry found in a store. */
export interface JournalEntry {
  readonly txid: string;
  /** Keys of the entry's objects (and of its record when it has one). */
  readonly keys: readonly AbsolutePath[];
  /** The record, or undefined when the writer never wrote it (or was killed while writing it). */
  readonly record: JournalRecord | undefined;
  /** True when a record exists but is incomplete (its writer was killed while writing it). */
  readonly tornRecord?: boolean;
  /**
   * With `listEntries(store, { tolerant: true })`: the record is whole but unreadable (damaged from
   * outside, or written by a newer zarr-tx). Such an entry is left alone and reported.
   */
  readonly damaged?: StoreError;
}

/** Who wrote an entry, from its txid: the writer's host (a hash of its name), pid and start time. */
export interface JournalOwner {
  readonly hostTag: string;
  readonly pid: number;
  readonly createdAtMs: number;
}

/** A short, stable tag of this host's name: txids say where their writer ran without naming the host. */
export const HOST_TAG = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);

/** A new, unique transaction id: `<ms base36>-<host tag>-<pid>-<random>`. */
export function newTxid(): string {
  return `${Date.now().toString(36)}-${HOST_TAG}-${process.pid}-${randomBytes(6).toString("hex")}`;
}

/** The writer of a txid, or undefined when it is not one of ours. */
export function ownerOf(txid: string): JournalOwner | undefined {
  const m = /^([0-9a-z]+)-([0-9a-f]{8})-(\d+)-[0-9a-f]+$/.exec(txid);
  if (!m) return undefined;
  return { createdAtMs: Number.parseInt(m[1]!, 36), hostTag: m[2]!, pid: Number(m[3]) };
}

/** Where an entry's objects are: `<txid>.<i>`, or `<txid>/<i>` when `nested`. */
interface EntryRef {
  readonly txid: string;
  readonly nested: boolean;
}

function objectKeyOf(ref: EntryRef, index: number): AbsolutePath {
  return `${JOURNAL_PREFIX}${ref.txid}${ref.nested ? "/" : "."}${index}` as AbsolutePath;
}

/**
 * Removes a nested entry's directory once its objects are gone (stores without directories: no-op). A
 * writer killed between creating the directory and its first object leaves it empty and unlisted:
 * `recover()` sweeps those.
 */
async function removeEntryDirectory(store: Store, ref: EntryRef): Promise<void> {
  if (ref.nested && store.removeEmptyDirectory)
    await store.removeEmptyDirectory(`${JOURNAL_PREFIX}${ref.txid}/`);
}

function recordKeyOf(txid: string): AbsolutePath {
  return `${JOURNAL_PREFIX}${txid}${RECORD_SUFFIX}` as AbsolutePath;
}

// ---------------------------------------------------------------------------------------------------
// Test-only crash injection. `ZARR_TX_CRASH_AT=<point>[@<n>]` SIGKILLs this process the n-th time (default
// the first) it reaches <point>. Points: "journal-written", "apply-partial", "applied", "cleanup-partial"
// (stores that apply by copy only: after a rename no object is left to clean up), "recovery-apply-partial",
// "recovery-applied", "recovery-cleanup-partial". Read once: a process cannot arm it for itself later.
const CRASH = parseCrashSpec(process.env.ZARR_TX_CRASH_AT);
let crashHits = 0;

function parseCrashSpec(spec: string | undefined): { point: string; nth: number } | undefined {
  if (!spec) return undefined;
  const [point, nth] = spec.split("@");
  return { point: point!, nth: nth === undefined ? 1 : Math.max(1, Number(nth) || 1) };
}

/** SIGKILLs this process at `point` when the test-only injection asks for it. */
export function crashPoint(point: string): void {
  if (CRASH?.point !== point) return;
  crashHits += 1;
  if (crashHits === CRASH.nth) process.kill(process.pid, "SIGKILL");
}

/** True when a crash is armed for `point` (the apply then goes one object first, then the rest). */
function crashArmed(point: string): boolean {
  return CRASH?.point === point;
}

// ---------------------------------------------------------------------------------------------------

/** Counts of one commit, for metrics and benchmarks. */
export interface CommitStats {
  readonly journaled: boolean;
  readonly bytesWritten: number;
}

/**
 * Writes `writes` (all guarded by `lease`, exclusively) so that a crash at any point leaves all of them or
 * none: one object is replaced directly; several go through a journal entry (see the file's header).
 * With `journal` false, every object is replaced directly (each atomic, the set not crash-atomic).
 *
 * Throws `LeaseLostError` when the lease was lost before the commit point (nothing written), or when a
 * conditional write found newer data (a lease lost while this commit ran: the message says what was
 * applied); `StoreError` on I/O failure before the commit point (nothing applied, the entry removed);
 * `TransactionError` `ERR_APPLY_PENDING` on a failure after it (the entry stays, committed, and the next
 * holder of these keys rolls it forward: do not retry).
 */
export async function commitObjects(
  store: Store,
  writes: readonly ObjectWrite[],
  lease: Lease,
  concurrency: number,
  journal = true,
): Promise<CommitStats> {
  if (writes.length === 0) return { journaled: false, bytesWritten: 0 };
  const newBytes = writes.reduce((n, w) => n + (w.bytes?.length ?? 0), 0);
  const inline = journal && keepsInline(store, newBytes);
  // One object is replaced atomically without a journal, except in place (`applyInPlace`), where the
  // journal is what makes an in-place write crash-safe, and a one-file entry costs less than a rename.
  if (!journal || (writes.length === 1 && !inline)) {
    assertLeaseHeld(lease);
    await forEachLimit(writes, concurrency, (w) =>
      applyOne(store, w.key, w.bytes, conditionOf(store, w.expected), undefined),
    );
    return { journaled: false, bytesWritten: newBytes };
  }
  const txid = newTxid();
  const objectCount = writes.filter((w) => w.bytes !== undefined).length;
  const ref: EntryRef = { txid, nested: !inline && objectCount > NEST_MIN_OBJECTS };
  const objects: KeyValue[] = [];
  const payload: Uint8Array[] = [];
  const targets: TargetRecord[] = writes.map((w) => {
    let object: number | null = null;
    if (w.bytes) {
      object = inline ? payload.length : objects.length;
      if (inline) payload.push(w.bytes);
      else objects.push({ key: objectKeyOf(ref, object), value: w.bytes });
    }
    return {
      key: w.key,
      lock: w.lockKey,
      object,
      size: w.bytes?.length ?? 0,
      crc32c: w.bytes ? crc32c(w.bytes) : 0,
      ...(w.expected !== undefined ? { expected: w.expected } : {}),
    };
  });
  const record: JournalRecord = inline
    ? { zarrTxJournal: FORMAT_VERSION_2, state: "commit", txid, targets, inline: true }
    : ref.nested
      ? { zarrTxJournal: FORMAT_VERSION_2, state: "commit", txid, targets, nested: true }
      : { zarrTxJournal: FORMAT_VERSION, state: "commit", txid, targets };
  const recordEntry: KeyValue = {
    key: recordKeyOf(txid),
    value: encodeRecord(record, payload),
    ifAbsent: true,
  };
  const bytesOf = inline ? (t: TargetRecord) => payload[t.object!]! : undefined;

  if (lease.markJournal) await lease.markJournal();
  assertLeaseHeld(lease);
  try {
    if (store.capabilities.rename && store.setMany) {
      // Objects and record in one batch: a crash inside it can leave a record whose objects are not all
      // durable, which recovery detects (CRC32C) and discards; nothing is applied before the batch ends.
      await store.setMany([...objects, recordEntry]);
    } else {
      await writeAll(store, objects, concurrency);
      assertLeaseHeld(lease);
      await createRecord(store, recordEntry.key, recordEntry.value);
    }
  } catch (error) {
    // Before the commit point: undo it. The record goes first (durably): once it is gone nothing of
    // this entry can be applied, and the objects are garbage (best effort; recovery removes the rest).
    if (!isConflict(error)) {
      try {
        await store.delete(recordEntry.key);
      } catch (cleanup) {
        throw new TransactionError(
          "ERR_APPLY_PENDING",
          `writing the journal entry ${txid} failed (${String(error)}), and so did removing its commit ` +
            `record (${String(cleanup)}): if the record reached the store whole, the next transaction on ` +
            "these chunks applies it. Do not retry blindly: read the data, or run `zarr-tx recover`.",
          { cause: error },
        );
      }
    }
    await deleteKeys(
      store,
      objects.map((o) => o.key),
    );
    await removeEntryDirectory(store, ref).catch(() => undefined);
    if (isConflict(error)) {
      throw new LeaseLostError(
        "a recovery abandoned this transaction's journal entry while it was being written (its lease must " +
          "have expired); nothing was written. Retry the transaction.",
        { cause: error },
      );
    }
    throw error;
  }
  crashPoint("journal-written");
  try {
    await applyEntry(store, ref, targets, concurrency, "apply", /* fenced */ true, undefined, bytesOf);
    crashPoint("applied");
    await deleteEntry(store, ref, targets, "cleanup", inline);
  } catch (error) {
    if (isZarrTxError(error, "ERR_LEASE_LOST")) throw error;
    // Committed: retrying would apply the transaction twice (a read-modify-write would count twice).
    throw new TransactionError(
      "ERR_APPLY_PENDING",
      `the transaction committed (journal entry ${txid}) but applying it failed: ${String(error)}. Do not ` +
        "retry it: the next transaction on these chunks, or `zarr-tx recover`, applies it.",
      { cause: error },
    );
  }
  if (lease.clearJournal) await lease.clearJournal();
  const bytesWritten = objects.reduce((n, o) => n + o.value.length, 0) + recordEntry.value.length;
  return { journaled: true, bytesWritten };
}

/**
 * Whether a transaction writing `newBytes` keeps them inside its record and applies them in place. Not on
 * stores with conditional writes: an in-place write takes no condition, and conditions are their fencing.
 */
function keepsInline(store: Store, newBytes: number): boolean {
  return (
    store.capabilities.applyInPlace === true &&
    store.overwrite !== undefined &&
    !store.capabilities.conditionalWrite &&
    newBytes <= INLINE_MAX_BYTES
  );
}

/**
 * This writer's own entry vanished while it applied it: its lease was lost after the commit point (or a
 * recovery took it for dead), and another process settled the entry, normally by applying it whole.
 */
function settledByOthers(txid: string, cause: unknown): LeaseLostError {
  return new LeaseLostError(
    `this transaction committed (journal entry ${txid}), but its lease was lost while it applied it and ` +
      "another process settled the entry meanwhile (normally by applying it; it is discarded only if newer " +
      "data had already replaced its chunks, or if recover() took this writer for dead: keep recover's " +
      "minAgeMs above your longest transaction). Do not retry blindly: read the data to see what landed.",
    cause === undefined ? undefined : { cause },
  );
}

function assertLeaseHeld(lease: Lease): void {
  if (lease.signal.aborted) {
    throw new LeaseLostError(
      "the transaction's lease was lost before commit (expired or revoked); nothing was written. Retry the transaction.",
      { cause: lease.signal.reason },
    );
  }
}

function isConflict(error: unknown): boolean {
  return isZarrTxError(error, "ERR_CONFLICT");
}

function conditionOf(store: Store, expected: string | null | undefined): WriteCondition | undefined {
  if (!store.capabilities.conditionalWrite || expected === undefined) return undefined;
  return expected === null ? { ifAbsent: true } : { ifVersion: expected };
}

/** Writes one object in place (or deletes it), conditioned where the store can. */
async function applyOne(
  store: Store,
  key: AbsolutePath,
  bytes: Uint8Array | undefined,
  condition: WriteCondition | undefined,
  from: AbsolutePath | undefined,
): Promise<void> {
  try {
    if (bytes === undefined && from === undefined) {
      await store.delete(key);
    } else if (from !== undefined && store.copy) {
      if ((await store.copy(from, key, condition)) === undefined) {
        throw new StoreError(
          "ERR_STORE_IO",
          `journal object ${from} vanished while it was applied to ${key}`,
        );
      }
    } else if (condition && store.setIf) {
      await store.setIf(key, bytes!, condition);
    } else {
      await store.set(key, bytes!);
    }
  } catch (error) {
    if (!isConflict(error)) throw error;
    throw new LeaseLostError(
      `another writer changed ${key} after this transaction read it, so this transaction's lease must have ` +
        "expired; its write to that object was refused.",
      { cause: error },
    );
  }
}

async function writeAll(store: Store, objects: readonly KeyValue[], concurrency: number): Promise<void> {
  if (store.setMany) return store.setMany(objects);
  await forEachLimit(objects, concurrency, (o) => store.set(o.key, o.value));
}

async function createRecord(store: Store, key: AbsolutePath, value: Uint8Array): Promise<void> {
  if (store.createIfAbsent) return store.createIfAbsent(key, value);
  if (store.setIf && store.capabilities.conditionalWrite) {
    await store.setIf(key, value, { ifAbsent: true });
    return;
  }
  // No atomic create: a racing abort record could be overwritten. Only recovery of entries older than
  // its minimum age writes abort records, so the race needs a writer stalled for that long.
  await store.set(key, value);
}

/**
 * Applies a committed entry's targets. `fenced`: the writer itself, whose conditions are the versions it
 * read; recovery instead checks each target first (see `recoverEntry`).
 */
async function applyEntry(
  store: Store,
  ref: EntryRef,
  targets: readonly TargetRecord[],
  concurrency: number,
  phase: "apply" | "recovery-apply",
  fenced: boolean,
  conditions?: ReadonlyMap<AbsolutePath, WriteCondition | undefined>,
  bytesOf?: (t: TargetRecord) => Uint8Array,
): Promise<void> {
  const moves = targets.filter((t) => t.object !== null);
  const deletions = targets.filter((t) => t.object === null);
  const partial = crashArmed(`${phase}-partial`);
  const conditionFor = (t: TargetRecord): WriteCondition | undefined =>
    fenced ? conditionOf(store, t.expected) : conditions?.get(t.key);
  const apply = async (batch: readonly TargetRecord[]): Promise<void> => {
    if (batch.length === 0) return;
    if (bytesOf !== undefined) {
      // Inline entry: the bytes are in hand. In place where the store was opened for it (a recovery run by
      // a store opened without it replaces each target atomically instead).
      if (store.capabilities.applyInPlace && store.overwrite) {
        return store.overwrite(batch.map((t) => ({ key: t.key, value: bytesOf(t) })));
      }
      await forEachLimit(batch, concurrency, (t) =>
        applyOne(store, t.key, bytesOf(t), conditionFor(t), undefined),
      );
      return;
    }
    if (appliesByRename(store)) {
      const moved = await store.rename!(batch.map((t) => ({ from: objectKeyOf(ref, t.object!), to: t.key })));
      // An object already gone: a recovery applied it (the target holds its bytes), or discarded the
      // entry of a writer it took for dead (it does not).
      const lost = batch.filter((_, i) => !moved[i]);
      const mismatched = await Promise.all(lost.map(async (t) => !matchesObject(await store.get(t.key), t)));
      if (mismatched.some(Boolean)) throw settledByOthers(ref.txid, undefined);
      return;
    }
    await forEachLimit(batch, concurrency, async (t) => {
      const from = objectKeyOf(ref, t.object!);
      try {
        if (store.copy) return await applyOne(store, t.key, undefined, conditionFor(t), from);
      } catch (error) {
        if (phase === "apply" && isZarrTxError(error, "ERR_STORE_IO") && !(await store.get(from))) {
          throw settledByOthers(ref.txid, error);
        }
        throw error;
      }
      const bytes = await store.get(from);
      if (!bytes)
        throw new StoreError("ERR_STORE_IO", `journal object ${from} vanished before it was applied`);
      return applyOne(store, t.key, bytes, conditionFor(t), undefined);
    });
  };
  if (partial && moves.length > 1) {
    await apply(moves.slice(0, 1));
    crashPoint(`${phase}-partial`);
    await apply(moves.slice(1));
  } else {
    await apply(moves);
  }
  await forEachLimit(deletions, concurrency, (t) => applyOne(store, t.key, undefined, undefined, undefined));
}

/** Deletes an entry: its objects first, the record last (a record without objects reads as applied). */
async function deleteEntry(
  store: Store,
  ref: EntryRef,
  targets: readonly TargetRecord[],
  phase: "cleanup" | "recovery-cleanup",
  inline: boolean,
): Promise<void> {
  // After renames no object is left; elsewhere (copies) each object is still there. Inline: none exist.
  if (!inline && !appliesByRename(store)) {
    const keys = targets.filter((t) => t.object !== null).map((t) => objectKeyOf(ref, t.object!));
    if (store.deleteMany && !crashArmed(`${phase}-partial`)) {
      await store.deleteMany(keys);
    } else {
      await deleteKeys(store, keys.slice(0, 1));
      crashPoint(`${phase}-partial`);
      await deleteKeys(store, keys.slice(1));
    }
  }
  await removeEntryDirectory(store, ref);
  // Lazily: a record that comes back after a crash finds every target applied (or since superseded,
  // which reads as never durable): either way recovery applies nothing and deletes it again.
  await store.delete(recordKeyOf(ref.txid), { lazy: true });
}

/**
 * Whether entries are applied by rename (files) rather than by copy. A store with conditional writes and
 * copy applies by conditional copy even if it can rename: the condition is the fencing that stops a
 * writer whose lease expired from overwriting newer data, and rename(2) takes no condition.
 */
function appliesByRename(store: Store): boolean {
  if (store.capabilities.conditionalWrite && store.capabilities.copy && store.copy) return false;
  return store.capabilities.rename === true && store.rename !== undefined;
}

async function deleteKeys(store: Store, keys: readonly AbsolutePath[]): Promise<void> {
  await forEachLimit(keys, 16, (key) => store.delete(key).catch(() => undefined));
}

// A record is its JSON, then (format 2, inline) a line `#payload=<bytes>` and the objects' bytes, then a
// line with the CRC32C of everything before it. On files the record is written in place with O_EXCL, so a
// crash while writing it leaves a partial file: the checksum tells it from a complete one, and a partial
// record is no commit. JSON.stringify never emits a raw newline, so the first one ends the JSON.
const CHECKSUM_LINE = "\n#crc32c=";
const PAYLOAD_LINE = "\n#payload=";
const NEWLINE = 0x0a;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function encodeRecord(record: JournalRecord, payload: readonly Uint8Array[] = []): Uint8Array {
  // The payload of a record read back is not part of its JSON.
  const { payload: _read, ...doc } = record as Extract<JournalRecord, { state: "commit" }>;
  const parts: Uint8Array[] = [textEncoder.encode(JSON.stringify(doc))];
  if (record.state === "commit" && record.inline) {
    const size = payload.reduce((n, p) => n + p.length, 0);
    parts.push(textEncoder.encode(`${PAYLOAD_LINE}${size}\n`), ...payload);
  }
  const bodyLength = parts.reduce((n, p) => n + p.length, 0);
  const body = new Uint8Array(bodyLength);
  let at = 0;
  for (const part of parts) {
    body.set(part, at);
    at += part.length;
  }
  const trailer = textEncoder.encode(`${CHECKSUM_LINE}${crc32c(body).toString(16)}\n`);
  const out = new Uint8Array(bodyLength + trailer.length);
  out.set(body);
  out.set(trailer, bodyLength);
  return out;
}

/** Where the checksum line starts, or -1: it is ASCII and at most 19 bytes, so only the tail is searched. */
function checksumLineAt(bytes: Uint8Array): number {
  const needle = textEncoder.encode(CHECKSUM_LINE);
  for (let at = bytes.length - needle.length; at >= Math.max(0, bytes.length - 24); at--) {
    let found = true;
    for (let i = 0; i < needle.length && found; i++) found = bytes[at + i] === needle[i];
    if (found) return at;
  }
  return -1;
}

/** The record, or "torn" when it was cut short by a crash while being written (no commit). */
function decodeRecord(key: AbsolutePath, bytes: Uint8Array): JournalRecord | "torn" {
  const at = checksumLineAt(bytes);
  if (at < 0 || bytes[bytes.length - 1] !== NEWLINE) return "torn";
  const body = bytes.subarray(0, at);
  const sum = textDecoder.decode(bytes.subarray(at + CHECKSUM_LINE.length, -1));
  if (crc32c(body).toString(16) !== sum) return "torn";
  const jsonEnd = body.indexOf(NEWLINE);
  let doc: unknown;
  try {
    doc = JSON.parse(textDecoder.decode(jsonEnd < 0 ? body : body.subarray(0, jsonEnd)));
  } catch (cause) {
    throw corruptRecord(key, "its checksum is right but it is not JSON", cause);
  }
  const record = doc as Partial<JournalRecord> | null;
  const format = record?.zarrTxJournal;
  if (format !== FORMAT_VERSION && format !== FORMAT_VERSION_2) {
    throw corruptRecord(
      key,
      `its format ${JSON.stringify(format)} is not ${FORMAT_VERSION} or ${FORMAT_VERSION_2}; a newer ` +
        "zarr-tx wrote it?",
    );
  }
  if (record!.state === "abort") return record as JournalRecord;
  if (record!.state !== "commit" || !Array.isArray(record!.targets)) {
    throw corruptRecord(key, "it has no state or no targets");
  }
  const commit = record as Extract<JournalRecord, { state: "commit" }>;
  if (format === FORMAT_VERSION || !commit.inline) return commit;
  return { ...commit, payload: inlinePayload(key, commit, body, jsonEnd) };
}

/** The objects' bytes after an inline record's JSON, checked against the sizes its targets name. */
function inlinePayload(
  key: AbsolutePath,
  record: JournalRecord,
  body: Uint8Array,
  jsonEnd: number,
): Uint8Array {
  const headerEnd = jsonEnd < 0 ? -1 : body.indexOf(NEWLINE, jsonEnd + 1);
  const header = headerEnd < 0 ? "" : textDecoder.decode(body.subarray(jsonEnd, headerEnd));
  const size = header.startsWith(PAYLOAD_LINE) ? Number(header.slice(PAYLOAD_LINE.length)) : Number.NaN;
  const payload = body.subarray(headerEnd + 1);
  const named =
    record.state === "commit" ? record.targets.reduce((n, t) => n + (t.object === null ? 0 : t.size), 0) : 0;
  if (!(size === payload.length && size === named)) {
    throw corruptRecord(key, "its inline bytes do not add up to the sizes it names");
  }
  return payload;
}

/**
 * Each object's bytes in an inline record's payload. The writer numbers objects in target order and
 * appends their bytes in that order, so an object starts where the previous targets' bytes end.
 */
function inlineBytesOf(record: JournalRecord): ((t: TargetRecord) => Uint8Array) | undefined {
  if (record.state !== "commit" || !record.inline || record.payload === undefined) return undefined;
  const payload = record.payload;
  const offsets: number[] = [];
  let at = 0;
  for (const t of record.targets) {
    if (t.object === null) continue;
    offsets[t.object] = at;
    at += t.size;
  }
  return (t) => payload.slice(offsets[t.object!]!, offsets[t.object!]! + t.size);
}

function corruptRecord(key: AbsolutePath, why: string, cause?: unknown): StoreError {
  return new StoreError(
    "ERR_CORRUPT_JOURNAL",
    `the journal record ${key} is damaged (${why}); zarr-tx wrote it atomically, so something else changed ` +
      "it. Inspect the entry, then delete its keys under .zarr-tx/journal/ by hand.",
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Every journal entry in `store`, grouped by txid, records read. One LIST of the journal prefix (a
 * directory read on files), and one GET per record found. Throws `StoreError` `ERR_CORRUPT_JOURNAL` for a
 * record that is whole but unreadable, unless `tolerant` (then the entry carries `damaged`): a
 * transaction cannot tell which chunks such an entry names, so it refuses rather than risk reading them
 * half-applied; `recover()` reports it and goes on.
 */
export async function listEntries(
  store: Store,
  options: { tolerant?: boolean } = {},
): Promise<JournalEntry[]> {
  const keys = await store.list(JOURNAL_PREFIX);
  if (keys.length === 0) return [];
  const groups = new Map<string, AbsolutePath[]>();
  for (const key of keys) {
    const name = key.slice(JOURNAL_PREFIX.length);
    // `<txid>.<i>`, `<txid>.commit`, or a nested object `<txid>/<i>`; anything else is not ours.
    const slash = name.indexOf("/");
    if (slash >= 0 && name.indexOf("/", slash + 1) >= 0) continue;
    const end = slash >= 0 ? slash : name.lastIndexOf(".");
    if (end <= 0) continue;
    const txid = name.slice(0, end);
    const group = groups.get(txid);
    if (group) group.push(key);
    else groups.set(txid, [key]);
  }
  const entries: JournalEntry[] = [];
  for (const [txid, group] of groups) {
    const recordKey = recordKeyOf(txid);
    let record: JournalRecord | undefined;
    let tornRecord = false;
    let damaged: StoreError | undefined;
    if (group.includes(recordKey)) {
      const bytes = await store.get(recordKey);
      try {
        const decoded = bytes && decodeRecord(recordKey, bytes);
        if (decoded === "torn") tornRecord = true;
        else record = decoded;
      } catch (error) {
        if (!options.tolerant || !isZarrTxError(error, "ERR_CORRUPT_JOURNAL")) throw error;
        damaged = error as StoreError;
      }
    }
    entries.push({
      txid,
      keys: group,
      record,
      ...(tornRecord ? { tornRecord } : {}),
      ...(damaged ? { damaged } : {}),
    });
  }
  return entries;
}

/**
 * The entry as it is now, by one read of its record: undefined once its record is gone (its writer or
 * another recovery settled it while we waited for its locks).
 */
export async function rereadEntry(store: Store, entry: JournalEntry): Promise<JournalEntry | undefined> {
  const key = recordKeyOf(entry.txid);
  const bytes = await store.get(key);
  if (!bytes) return undefined;
  const decoded = decodeRecord(key, bytes);
  return decoded === "torn"
    ? { ...entry, record: undefined, tornRecord: true }
    : { ...entry, record: decoded };
}

/** The lock keys an entry's record names (none without a commit record). */
export function lockKeysOf(entry: JournalEntry): string[] {
  return entry.record?.state === "commit" ? entry.record.targets.map((t) => t.lock) : [];
}

/** What recovery did with one entry. */
export type EntryOutcome = "rolled-forward" | "discarded" | "superseded";

/**
 * Rolls a committed entry forward, or discards one that is not committed (see the file's header). The
 * caller holds every lock key the record names exclusively, or knows no writer runs. Idempotent.
 *
 * Throws `StoreError` on I/O failure (run it again), `ERR_CORRUPT_JOURNAL` for a record damaged from outside.
 */
export async function recoverEntry(
  store: Store,
  entry: JournalEntry,
  concurrency = 16,
): Promise<EntryOutcome> {
  const record = entry.record ?? (await claimAbort(store, entry.txid));
  if (record.state === "abort") {
    await discard(store, entry);
    return "discarded";
  }
  const pending: TargetRecord[] = [];
  const conditions = new Map<AbsolutePath, WriteCondition | undefined>();
  const bytesOf = inlineBytesOf(record);
  const ref: EntryRef = { txid: entry.txid, nested: record.nested === true };
  let outcome: EntryOutcome | undefined;
  await forEachLimit(record.targets, concurrency, async (t) => {
    const target = await readVersioned(store, t.key);
    if (t.object === null ? target === undefined : target !== undefined && matches(target.value, t)) return;
    if (
      store.capabilities.conditionalWrite &&
      t.expected !== undefined &&
      (target?.version ?? null) !== t.expected
    ) {
      // Newer data than the writer saw: its lease was lost, and whatever it did not apply stays unapplied.
      outcome = "superseded";
      return;
    }
    if (t.object !== null) {
      const bytes = bytesOf ? bytesOf(t) : await store.get(objectKeyOf(ref, t.object));
      if (bytes === undefined || !matches(bytes, t)) {
        outcome ??= "discarded"; // never became durable: nothing of it was applied
        return;
      }
    }
    pending.push(t);
    if (store.capabilities.conditionalWrite && target?.version !== undefined) {
      conditions.set(t.key, target.version === null ? { ifAbsent: true } : { ifVersion: target.version });
    }
  });
  if (outcome === undefined) {
    await applyEntry(store, ref, pending, concurrency, "recovery-apply", false, conditions, bytesOf);
    crashPoint("recovery-applied");
    outcome = "rolled-forward";
  }
  await discard(store, entry);
  return outcome;
}

/** Claims an entry without a record: writes an abort record, unless its writer committed first. */
async function claimAbort(store: Store, txid: string): Promise<JournalRecord> {
  const key = recordKeyOf(txid);
  const abort: JournalRecord = {
    zarrTxJournal: FORMAT_VERSION,
    state: "abort",
    txid,
    reason: "recovery found no commit record",
  };
  try {
    await createRecord(store, key, encodeRecord(abort));
    return abort;
  } catch (error) {
    if (!isConflict(error)) throw error;
    const bytes = await store.get(key);
    if (!bytes) return claimAbort(store, txid);
    const decoded = decodeRecord(key, bytes);
    // A partial record of a writer cut short: an abort in effect.
    return decoded === "torn" ? abort : decoded;
  }
}

async function discard(store: Store, entry: JournalEntry): Promise<void> {
  const recordKey = recordKeyOf(entry.txid);
  // Objects the listing saw, plus any the record names (written after the listing).
  const keys = new Set(entry.keys.filter((k) => k !== recordKey));
  const nestedPrefix = `${JOURNAL_PREFIX}${entry.txid}/`;
  const ref: EntryRef = {
    txid: entry.txid,
    nested:
      (entry.record?.state === "commit" && entry.record.nested === true) ||
      entry.keys.some((k) => k.startsWith(nestedPrefix)),
  };
  if (entry.record?.state === "commit" && !entry.record.inline) {
    for (const t of entry.record.targets) if (t.object !== null) keys.add(objectKeyOf(ref, t.object));
  }
  const list = [...keys];
  await forEachLimit(list.slice(0, 1), 1, (k) => store.delete(k));
  crashPoint("recovery-cleanup-partial");
  await forEachLimit(list.slice(1), 16, (k) => store.delete(k));
  await removeEntryDirectory(store, ref);
  await store.delete(recordKey);
}

async function readVersioned(
  store: Store,
  key: AbsolutePath,
): Promise<{ value: Uint8Array; version: string | null } | undefined> {
  if (store.capabilities.conditionalWrite && store.getVersioned) {
    const v = await store.getVersioned(key);
    return v === undefined ? undefined : { value: v.value, version: v.version };
  }
  const value = await store.get(key);
  return value === undefined ? undefined : { value, version: null };
}

function matchesObject(bytes: Uint8Array | undefined, t: TargetRecord): boolean {
  return bytes !== undefined && matches(bytes, t);
}

function matches(bytes: Uint8Array, t: TargetRecord): boolean {
  return bytes.length === t.size && crc32c(bytes) === t.crc32c;
}
