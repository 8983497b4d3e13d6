/**
 * Per-transaction metrics: lock wait and hold time, attempts (replans), bytes and chunks read and
 * written, and the outcome (committed, or failed with an error code and whether it was a conflict).
 *
 * Two sinks, both off by default:
 * - an event hook, {@link onTransaction}: a listener gets one {@link TransactionMetrics} per finished
 *   transaction (and per `get`/`set`, which are transactions);
 * - OpenTelemetry, through `@opentelemetry/api` only: a span per transaction and a few instruments
 *   (histograms and counters). They do nothing until the application registers an OpenTelemetry SDK
 *   (a global tracer or meter provider); zarr-tx never installs one.
 *
 * Cost: when no listener is registered and no OpenTelemetry provider is, {@link beginTransaction}
 * returns undefined after two global look-ups, and the transaction's measuring points are optional
 * calls on undefined. No timestamp is taken and nothing is allocated.
 */
import {
  type Attributes,
  type Counter,
  context,
  createNoopMeter,
  type Histogram,
  type MeterProvider,
  metrics as otelMetrics,
  ProxyTracerProvider,
  type Span,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { isZarrTxError } from "../errors.js";
import type { ZarrTxArray } from "./array.js";

/** How a transaction ended: its function resolved and every write was committed, or it threw. */
export type TransactionOutcome = "committed" | "failed";

/** What one finished transaction did and cost. Every duration is in milliseconds, every size in bytes. */
export interface TransactionMetrics {
  /** Increases by one per measured transaction of this process (a correlation id, not a global one). */
  readonly id: number;
  /** The store's identity (`file:/real/path`, …). */
  readonly storeId: string;
  /** The paths of the arrays in the footprint, deduplicated, in footprint order. */
  readonly arrays: readonly string[];
  readonly outcome: TransactionOutcome;
  /** The error of a failed transaction: its zarr-tx `code` (undefined for other errors) and message. */
  readonly error?: { readonly code: string | undefined; readonly name: string; readonly message: string };
  /**
   * 1 when the transaction failed because another writer won (`ERR_CONFLICT`) or its lease was lost
   * (`ERR_LEASE_LOST`), else 0. A count, so that retrying backends can report several.
   */
  readonly conflicts: number;
  /** Wall-clock start (`Date.now()`), for correlating with logs. */
  readonly startTime: number;
  /** From the call to the outcome. */
  readonly durationMs: number;
  /** Time spent waiting for locks, summed over attempts (includes a failed or timed-out acquisition). */
  readonly lockWaitMs: number;
  /** Time locks were held, summed over attempts (from the grant to the end of the release). */
  readonly lockHoldMs: number;
  /** Lock acquisitions made: 1, plus one per replan after the array's shape or chunking changed. */
  readonly attempts: number;
  /** `attempts − 1`: how often the transaction had to plan its locks again. */
  readonly replans: number;
  /** Distinct lock keys of the last attempt, by mode (metadata keys included, held shared). */
  readonly locks: { readonly shared: number; readonly exclusive: number };
  /** Stored objects (chunks or shards) read and found. */
  readonly chunksRead: number;
  /** Stored objects looked up and missing (read as the fill value). */
  readonly chunksMissing: number;
  /** Stored objects written (replaced). */
  readonly chunksWritten: number;
  /** Stored objects deleted because they held only the fill value (an all-fill shard). */
  readonly chunksDeleted: number;
  /** Bytes of the stored objects read (as stored, i.e. encoded). */
  readonly bytesRead: number;
  /** Bytes of the stored objects written (encoded). */
  readonly bytesWritten: number;
}

/** A listener of {@link onTransaction}. */
export type TransactionListener = (metrics: TransactionMetrics) => void;

const listeners = new Set<TransactionListener>();
/** Listeners that threw once already, so that a broken listener warns once rather than per transaction. */
const warned = new WeakSet<TransactionListener>();
let nextId = 1;

/**
 * Calls `listener` with the metrics of every transaction (and `get`/`set`) of this process that starts
 * after it was registered, once the transaction has settled and before its promise settles. Returns a
 * function that unregisters it (idempotent).
 *
 * Guarantees: listeners run synchronously, in registration order, on the transaction's task; an
 * exception thrown by a listener is reported once per listener as a process warning and never changes
 * the transaction's outcome. Registering the same function twice registers it once. Throws
 * `TypeError` when `listener` is not a function.
 *
 * Keep listeners cheap: they run inside every transaction's call.
 */
export function onTransaction(listener: TransactionListener): () => void {
  if (typeof listener !== "function") {
    throw new TypeError("onTransaction takes a function (metrics) => void");
  }
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

// ---------------------------------------------------------------------------------------------------
// OpenTelemetry

const INSTRUMENTATION_NAME = "zarr-tx";
const NOOP_METER = createNoopMeter();

/** The instruments of one meter provider. */
interface Instruments {
  readonly lockWait: Histogram;
  readonly lockHold: Histogram;
  readonly duration: Histogram;
  readonly transactions: Counter;
  readonly bytesRead: Counter;
  readonly bytesWritten: Counter;
  readonly chunksRead: Counter;
  readonly chunksWritten: Counter;
  readonly replans: Counter;
  readonly conflicts: Counter;
}

let instrumentsProvider: MeterProvider | undefined;
let instruments: Instruments | undefined;

/**
 * The instruments of the current global meter provider, or undefined when there is none (the API's
 * no-op). The API has no proxy for meters, so instruments made before an SDK registers would stay
 * no-ops: they are remade whenever the global provider changes.
 */
function currentInstruments(): Instruments | undefined {
  const provider = otelMetrics.getMeterProvider();
  if (provider !== instrumentsProvider) {
    instrumentsProvider = provider;
    const meter = provider.getMeter(INSTRUMENTATION_NAME);
    instruments =
      meter === NOOP_METER
        ? undefined
        : {
            lockWait: meter.createHistogram("zarr_tx.lock.wait.duration", {
              unit: "ms",
              description: "Time a transaction waited for its locks",
            }),
            lockHold: meter.createHistogram("zarr_tx.lock.hold.duration", {
              unit: "ms",
              description: "Time a transaction held its locks",
            }),
            duration: meter.createHistogram("zarr_tx.transaction.duration", {
              unit: "ms",
              description: "Duration of a transaction, from the call to its outcome",
            }),
            transactions: meter.createCounter("zarr_tx.transactions", {
              description: "Finished transactions, by outcome and error type",
            }),
            bytesRead: meter.createCounter("zarr_tx.io.read", { unit: "By", description: "Bytes read" }),
            bytesWritten: meter.createCounter("zarr_tx.io.written", {
              unit: "By",
              description: "Bytes written",
            }),
            chunksRead: meter.createCounter("zarr_tx.chunks.read", { description: "Stored objects read" }),
            chunksWritten: meter.createCounter("zarr_tx.chunks.written", {
              description: "Stored objects written or deleted",
            }),
            replans: meter.createCounter("zarr_tx.replans", {
              description: "Lock plans redone because an array's chunk grid changed",
            }),
            conflicts: meter.createCounter("zarr_tx.conflicts", {
              description: "Transactions that lost to another writer or lost their lease",
            }),
          };
  }
  return instruments;
}

/** True when a tracer provider other than the API's no-op is registered. */
function tracingConfigured(): boolean {
  const provider = trace.getTracerProvider();
  // The API always hands out its proxy; it has a delegate once an SDK registered. A provider of another
  // API copy is not our proxy class: assume it is real (a span on a no-op tracer costs little anyway).
  return (
    !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer(INSTRUMENTATION_NAME) !== undefined
  );
}

// ---------------------------------------------------------------------------------------------------
// The recorder

const CONFLICT_CODES: ReadonlySet<string> = new Set(["ERR_CONFLICT", "ERR_LEASE_LOST"]);

/**
 * Measures one transaction. Created by {@link beginTransaction} only when someone is listening; the
 * transaction calls it at its measuring points.
 * @internal
 */
export class TransactionRecorder {
  readonly #start = performance.now();
  readonly #startTime = Date.now();
  readonly #storeId: string;
  readonly #arrays: readonly string[];
  readonly #instruments: Instruments | undefined;
  readonly #span: Span | undefined;
  #acquireStart: number | undefined;
  #acquiredAt: number | undefined;
  #lockWaitMs = 0;
  #lockHoldMs = 0;
  #attempts = 0;
  #shared = 0;
  #exclusive = 0;
  #chunksRead = 0;
  #chunksMissing = 0;
  #chunksWritten = 0;
  #chunksDeleted = 0;
  #bytesRead = 0;
  #bytesWritten = 0;

  constructor(
    storeId: string,
    arrays: readonly string[],
    instruments: Instruments | undefined,
    tracing: boolean,
  ) {
    this.#storeId = storeId;
    this.#arrays = arrays;
    this.#instruments = instruments;
    if (tracing) {
      this.#span = trace
        .getTracer(INSTRUMENTATION_NAME)
        .startSpan(
          "zarr_tx.transaction",
          { attributes: { "zarr_tx.store.id": storeId, "zarr_tx.array.paths": [...arrays] } },
          context.active(),
        );
    }
  }

  /** Before an acquisition: counts the attempt and its distinct keys by mode. */
  acquiring(locks: { readonly shared: readonly string[]; readonly exclusive: readonly string[] }): void {
    this.#attempts++;
    const exclusive = new Set(locks.exclusive);
    let shared = 0;
    for (const key of new Set(locks.shared)) if (!exclusive.has(key)) shared++;
    this.#shared = shared;
    this.#exclusive = exclusive.size;
    this.#acquireStart = performance.now();
  }

  /** After the grant. */
  acquired(): void {
    const now = performance.now();
    if (this.#acquireStart !== undefined) this.#lockWaitMs += now - this.#acquireStart;
    this.#acquireStart = undefined;
    this.#acquiredAt = now;
    this.#span?.addEvent("zarr_tx.lock.acquired");
  }

  /** After the release completed. */
  released(): void {
    if (this.#acquiredAt !== undefined) this.#lockHoldMs += performance.now() - this.#acquiredAt;
    this.#acquiredAt = undefined;
  }

  /** One stored object looked up: its bytes, or undefined when it is missing. */
  read(bytes: Uint8Array | undefined): void {
    if (bytes === undefined) {
      this.#chunksMissing++;
      return;
    }
    this.#chunksRead++;
    this.#bytesRead += bytes.length;
  }

  /** The commit wrote these objects (undefined: the object was deleted). */
  committed(encoded: readonly (Uint8Array | undefined)[]): void {
    for (const bytes of encoded) {
      if (bytes === undefined) {
        this.#chunksDeleted++;
        continue;
      }
      this.#chunksWritten++;
      this.#bytesWritten += bytes.length;
    }
  }

  /** Settles with `work`, and reports the transaction's metrics once it has settled. */
  async observe<T>(work: Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await work;
    } catch (error) {
      this.#finish(error, true);
      throw error;
    }
    this.#finish(undefined, false);
    return result;
  }

  #finish(error: unknown, failed: boolean): void {
    const now = performance.now();
    // An acquisition that failed, or locks whose release threw, still count up to now.
    if (this.#acquireStart !== undefined) this.#lockWaitMs += now - this.#acquireStart;
    if (this.#acquiredAt !== undefined) this.#lockHoldMs += now - this.#acquiredAt;
    const code = isZarrTxError(error) ? error.code : undefined;
    const conflicts = code !== undefined && CONFLICT_CODES.has(code) ? 1 : 0;
    const event: TransactionMetrics = Object.freeze({
      id: nextId++,
      storeId: this.#storeId,
      arrays: this.#arrays,
      outcome: failed ? "failed" : "committed",
      ...(failed
        ? {
            error: Object.freeze({
              code,
              name: error instanceof Error ? error.name : typeof error,
              message: error instanceof Error ? error.message : String(error),
            }),
          }
        : {}),
      conflicts,
      startTime: this.#startTime,
      durationMs: now - this.#start,
      lockWaitMs: this.#lockWaitMs,
      lockHoldMs: this.#lockHoldMs,
      attempts: this.#attempts,
      replans: Math.max(0, this.#attempts - 1),
      locks: Object.freeze({ shared: this.#shared, exclusive: this.#exclusive }),
      chunksRead: this.#chunksRead,
      chunksMissing: this.#chunksMissing,
      chunksWritten: this.#chunksWritten,
      chunksDeleted: this.#chunksDeleted,
      bytesRead: this.#bytesRead,
      bytesWritten: this.#bytesWritten,
    });
    this.#report(event);
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (cause) {
        if (warned.has(listener)) continue;
        warned.add(listener);
        process.emitWarning(
          `a zarr-tx onTransaction listener threw (reported once per listener): ${String(cause)}`,
          { code: "ZARR_TX_LISTENER" },
        );
      }
    }
  }

  /** Feeds OpenTelemetry: ends the span and records the instruments. */
  #report(m: TransactionMetrics): void {
    const errorType = m.error ? (m.error.code ?? m.error.name) : undefined;
    const span = this.#span;
    if (span !== undefined) {
      span.setAttributes({
        "zarr_tx.outcome": m.outcome,
        "zarr_tx.attempts": m.attempts,
        "zarr_tx.lock.shared_keys": m.locks.shared,
        "zarr_tx.lock.exclusive_keys": m.locks.exclusive,
        "zarr_tx.lock.wait_ms": m.lockWaitMs,
        "zarr_tx.lock.hold_ms": m.lockHoldMs,
        "zarr_tx.chunks.read": m.chunksRead,
        "zarr_tx.chunks.missing": m.chunksMissing,
        "zarr_tx.chunks.written": m.chunksWritten,
        "zarr_tx.chunks.deleted": m.chunksDeleted,
        "zarr_tx.io.read": m.bytesRead,
        "zarr_tx.io.written": m.bytesWritten,
        "zarr_tx.conflicts": m.conflicts,
      });
      if (errorType !== undefined) {
        span.setAttribute("error.type", errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: m.error?.message });
      }
      span.end();
    }
    const ins = this.#instruments;
    if (ins === undefined) return;
    const attributes: Attributes =
      errorType === undefined
        ? { "zarr_tx.outcome": m.outcome }
        : { "zarr_tx.outcome": m.outcome, "error.type": errorType };
    ins.transactions.add(1, attributes);
    ins.duration.record(m.durationMs, attributes);
    if (m.attempts > 0) ins.lockWait.record(m.lockWaitMs, attributes);
    if (m.lockHoldMs > 0) ins.lockHold.record(m.lockHoldMs, attributes);
    if (m.bytesRead > 0) ins.bytesRead.add(m.bytesRead);
    if (m.bytesWritten > 0) ins.bytesWritten.add(m.bytesWritten);
    if (m.chunksRead > 0) ins.chunksRead.add(m.chunksRead);
    if (m.chunksWritten + m.chunksDeleted > 0) ins.chunksWritten.add(m.chunksWritten + m.chunksDeleted);
    if (m.replans > 0) ins.replans.add(m.replans);
    if (m.conflicts > 0) ins.conflicts.add(m.conflicts);
  }
}

/**
 * Starts measuring a transaction over `arrays`, or returns undefined when nobody would see the
 * result: no {@link onTransaction} listener and no OpenTelemetry tracer or meter provider. Cheap in
 * that case (no allocation, no clock read).
 * @internal Called by `transaction` once its footprint is validated.
 */
export function beginTransaction(
  footprint: readonly { readonly array: ZarrTxArray }[],
): TransactionRecorder | undefined {
  const ins = currentInstruments();
  const tracing = tracingConfigured();
  if (listeners.size === 0 && ins === undefined && !tracing) return undefined;
  const arrays = [...new Set(footprint.map((entry) => entry.array.path))];
  return new TransactionRecorder(footprint[0]?.array.store.id ?? "", arrays, ins, tracing);
}
