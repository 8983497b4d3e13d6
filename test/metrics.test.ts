/**
 * Per-transaction metrics: the `onTransaction` hook (what each field counts, failures, conflicts,
 * replans, lock waits) and the OpenTelemetry bridge (spans and instruments appear once a provider is
 * registered, and nothing is recorded without one).
 */
import {
  type Attributes,
  type Meter,
  type MeterProvider,
  metrics,
  type Span,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { afterEach, describe, expect, it, vi } from "vitest";
import { beginTransaction } from "../src/array/metrics.js";
import {
  create,
  get,
  InProcessSynchronizer,
  lockKey,
  MemoryStore,
  onTransaction,
  open,
  set,
  slice,
  type TransactionMetrics,
  transaction,
} from "../src/index.js";

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
  trace.disable();
  metrics.disable();
});

/** Collects the events of every transaction from now on. */
function collect(): TransactionMetrics[] {
  const events: TransactionMetrics[] = [];
  stops.push(
    onTransaction((m) => {
      events.push(m);
    }),
  );
  return events;
}

async function array10x10(synchronizer = new InProcessSynchronizer()) {
  const store = new MemoryStore();
  const array = await create(store, { shape: [10, 10], chunkShape: [5, 5], dtype: "int32", synchronizer });
  return { store, array, synchronizer };
}

describe("onTransaction", () => {
  it("reports a committed write: locks, chunks and bytes read and written, timings", async () => {
    const { array, store } = await array10x10();
    const events = collect();
    // 0:6 × 0:6 covers chunk (0,0) whole and three chunks in part (which must be read: all missing now).
    await set(array, [slice(0, 6), slice(0, 6)], 1);
    expect(events).toHaveLength(1);
    const first = events[0]!;
    expect(first).toMatchObject({
      storeId: store.id,
      arrays: ["/"],
      outcome: "committed",
      conflicts: 0,
      attempts: 1,
      replans: 0,
      locks: { shared: 1, exclusive: 4 },
      chunksRead: 0,
      chunksMissing: 3,
      chunksWritten: 4,
      chunksDeleted: 0,
      bytesRead: 0,
      bytesWritten: 4 * 25 * 4,
    });
    expect(first.error).toBeUndefined();
    expect(first.lockWaitMs).toBeGreaterThanOrEqual(0);
    expect(first.lockHoldMs).toBeGreaterThan(0);
    expect(first.durationMs).toBeGreaterThanOrEqual(first.lockHoldMs);
    expect(Object.isFrozen(first)).toBe(true);

    await set(array, [slice(0, 6), slice(0, 6)], 2);
    expect(events[1]).toMatchObject({
      chunksRead: 3,
      chunksMissing: 0,
      bytesRead: 3 * 100,
      chunksWritten: 4,
    });
    expect(events[1]!.id).toBeGreaterThan(first.id);

    await get(array, [slice(4, 6), null]);
    expect(events[2]).toMatchObject({
      outcome: "committed",
      locks: { shared: 5, exclusive: 0 },
      chunksRead: 4,
      chunksMissing: 0,
      chunksWritten: 0,
      bytesWritten: 0,
    });
  });

  it("reports a multi-array read-modify-write, and a failed transaction that wrote nothing", async () => {
    const { array, store, synchronizer } = await array10x10();
    const other = await create(store, {
      path: "b",
      shape: [4],
      chunkShape: [2],
      dtype: "int32",
      synchronizer,
    });
    const events = collect();
    await transaction(
      [
        { array, selection: [0], mode: "read" },
        { array: other, selection: [slice(0, 3)], mode: "write" },
      ],
      async (tx) => {
        const row = await tx.get(array, [0, slice(0, 3)]);
        await tx.set(other, [slice(0, 3)], { data: row.data, shape: row.shape });
      },
    );
    expect(events[0]).toMatchObject({
      arrays: ["/", "/b"],
      outcome: "committed",
      locks: { shared: 4, exclusive: 2 },
      chunksWritten: 2,
    });

    await expect(
      transaction([{ array, mode: "write" }], async (tx) => {
        await tx.set(array, [0, 0], 5);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(events[1]).toMatchObject({
      outcome: "failed",
      error: { code: undefined, name: "Error", message: "changed my mind" },
      conflicts: 0,
      chunksWritten: 0,
      bytesWritten: 0,
    });
    expect(events[1]!.lockHoldMs).toBeGreaterThan(0);
  });

  it("measures lock waits, and a timed-out acquisition as a failure that held nothing", async () => {
    const { array, synchronizer } = await array10x10();
    const events = collect();
    const blocker = await synchronizer.acquire([lockKey(array.lockScope, 0)], "exclusive");
    const waiting = set(array, [0, 0], 3);
    setTimeout(() => void blocker.release(), 60);
    await waiting;
    expect(events[0]!.lockWaitMs).toBeGreaterThanOrEqual(50);

    const again = await synchronizer.acquire([lockKey(array.lockScope, 0)], "exclusive");
    await expect(set(array, [0, 0], 4, { timeoutMs: 30 })).rejects.toMatchObject({
      code: "ERR_LOCK_TIMEOUT",
    });
    await again.release();
    expect(events[1]).toMatchObject({
      outcome: "failed",
      error: { code: "ERR_LOCK_TIMEOUT" },
      attempts: 1,
      lockHoldMs: 0,
    });
    expect(events[1]!.lockWaitMs).toBeGreaterThanOrEqual(25);
  });

  it("counts a lost lease as a conflict, and replans when the chunk grid changed", async () => {
    const { array, synchronizer } = await array10x10();
    const events = collect();
    await expect(
      transaction([{ array, selection: [0], mode: "write" }], async (tx) => {
        await tx.set(array, [0], 1);
        await synchronizer.close(); // revokes the lease under the transaction
      }),
    ).rejects.toMatchObject({ code: "ERR_LEASE_LOST" });
    expect(events[0]).toMatchObject({
      outcome: "failed",
      conflicts: 1,
      error: { code: "ERR_LEASE_LOST" },
      chunksWritten: 0,
    });

    const fresh = await array10x10();
    const stale = await open(fresh.store, { synchronizer: fresh.synchronizer });
    // Another handle re-creates the array with another chunking: the stale handle's plan is wrong.
    await create(fresh.store, {
      shape: [10, 10],
      chunkShape: [2, 2],
      dtype: "int32",
      overwrite: true,
      synchronizer: fresh.synchronizer,
    });
    await set(stale, [slice(0, 3), 0], 9);
    const last = events[events.length - 1]!;
    expect(last).toMatchObject({
      outcome: "committed",
      attempts: 2,
      replans: 1,
      locks: { shared: 1, exclusive: 2 },
    });
  });

  it("unsubscribes, and a throwing listener never changes the outcome (one warning)", async () => {
    const { array } = await array10x10();
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const broken = () => {
      throw new Error("listener bug");
    };
    const stop = onTransaction(broken);
    await set(array, [1, 1], 1);
    await set(array, [1, 1], 2);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/listener threw.*listener bug/);
    stop();
    stop(); // idempotent
    warn.mockRestore();
    expect(((await get(array, [1, 1])).data as Int32Array)[0]).toBe(2);

    const events = collect();
    stops.pop()!();
    await set(array, [1, 1], 3);
    expect(events).toHaveLength(0);
    expect(() => onTransaction(42 as never)).toThrow(TypeError);
  });

  it("measures nothing when nobody listens", async () => {
    const { array } = await array10x10();
    expect(beginTransaction([{ array }])).toBeUndefined();
    const stop = onTransaction(() => {});
    expect(beginTransaction([{ array }])).toBeDefined();
    stop();
    expect(beginTransaction([{ array }])).toBeUndefined();
  });
});

/** A minimal recording tracer and meter, standing in for an OpenTelemetry SDK. */
function fakeSdk() {
  const spans: {
    name: string;
    attributes: Attributes;
    events: string[];
    status?: SpanStatus;
    ended: boolean;
  }[] = [];
  const recorded: { instrument: string; value: number; attributes?: Attributes }[] = [];
  const tracer = {
    startSpan(name: string, options?: SpanOptions): Span {
      const record = {
        name,
        attributes: { ...options?.attributes },
        events: [] as string[],
        ended: false,
      } as (typeof spans)[number];
      spans.push(record);
      const span = {
        setAttribute: (key: string, value: unknown) => {
          record.attributes[key] = value as never;
          return span;
        },
        setAttributes: (attributes: Attributes) => {
          Object.assign(record.attributes, attributes);
          return span;
        },
        addEvent: (event: string) => {
          record.events.push(event);
          return span;
        },
        setStatus: (status: SpanStatus) => {
          record.status = status;
          return span;
        },
        end: () => {
          record.ended = true;
        },
        isRecording: () => true,
        spanContext: () => ({ traceId: "0".repeat(31) + "1", spanId: "0".repeat(15) + "1", traceFlags: 1 }),
      };
      return span as unknown as Span;
    },
  } as unknown as Tracer;
  const tracerProvider: TracerProvider = { getTracer: () => tracer };
  const instrument = (name: string) => ({
    add: (value: number, attributes?: Attributes) =>
      recorded.push({ instrument: name, value, ...(attributes ? { attributes } : {}) }),
    record: (value: number, attributes?: Attributes) =>
      recorded.push({ instrument: name, value, ...(attributes ? { attributes } : {}) }),
  });
  const meter = { createHistogram: instrument, createCounter: instrument } as unknown as Meter;
  const meterProvider: MeterProvider = { getMeter: () => meter };
  return { spans, recorded, tracerProvider, meterProvider };
}

describe("OpenTelemetry", () => {
  it("emits a span and instrument values per transaction once an SDK is registered, and nothing after", async () => {
    const { array, store } = await array10x10();
    expect(beginTransaction([{ array }]), "no SDK, no listener: no recorder").toBeUndefined();
    const sdk = fakeSdk();
    expect(trace.setGlobalTracerProvider(sdk.tracerProvider)).toBe(true);
    expect(metrics.setGlobalMeterProvider(sdk.meterProvider)).toBe(true);

    await set(array, [slice(0, 6), 0], 7);
    expect(sdk.spans).toHaveLength(1);
    const span = sdk.spans[0]!;
    expect(span).toMatchObject({
      name: "zarr_tx.transaction",
      ended: true,
      events: ["zarr_tx.lock.acquired"],
    });
    expect(span.attributes).toMatchObject({
      "zarr_tx.store.id": store.id,
      "zarr_tx.array.paths": ["/"],
      "zarr_tx.outcome": "committed",
      "zarr_tx.lock.exclusive_keys": 2,
      "zarr_tx.chunks.written": 2,
      "zarr_tx.io.written": 200,
    });
    const names = sdk.recorded.map((r) => r.instrument);
    expect(names).toEqual(
      expect.arrayContaining([
        "zarr_tx.transactions",
        "zarr_tx.transaction.duration",
        "zarr_tx.lock.wait.duration",
        "zarr_tx.lock.hold.duration",
        "zarr_tx.io.written",
        "zarr_tx.chunks.written",
      ]),
    );
    expect(sdk.recorded.find((r) => r.instrument === "zarr_tx.io.written")?.value).toBe(200);
    expect(sdk.recorded.find((r) => r.instrument === "zarr_tx.transactions")).toMatchObject({
      value: 1,
      attributes: { "zarr_tx.outcome": "committed" },
    });

    await expect(set(array, [99, 0], 1)).rejects.toMatchObject({ code: "ERR_OUT_OF_BOUNDS" }); // refused before a transaction
    await expect(
      transaction([{ array, mode: "write" }], async () => {
        throw new Error("nope");
      }),
    ).rejects.toThrow("nope");
    const failed = sdk.spans[1]!;
    expect(failed.status).toMatchObject({ code: 2, message: "nope" });
    expect(failed.attributes["error.type"]).toBe("Error");
    expect(sdk.recorded.filter((r) => r.instrument === "zarr_tx.transactions").at(-1)).toMatchObject({
      attributes: { "zarr_tx.outcome": "failed", "error.type": "Error" },
    });

    trace.disable();
    metrics.disable();
    expect(beginTransaction([{ array }])).toBeUndefined();
    await set(array, [0, 0], 1);
    expect(sdk.spans).toHaveLength(2);
  });
});
