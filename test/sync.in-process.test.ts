import { getEventListeners } from "node:events";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { isZarrTxError, LeaseLostError, LockError } from "../src/errors.js";
import { InProcessSynchronizer, resolveLockSet } from "../src/sync/in-process.js";
import { lockKey, lockScope } from "../src/sync/keys.js";
import type { Lease, LockSet } from "../src/sync/types.js";
import { describeSynchronizer } from "./conformance/synchronizer.js";

describeSynchronizer("InProcessSynchronizer", {
  async create() {
    const sync = new InProcessSynchronizer();
    return { a: sync, b: sync, cleanup: () => sync.close() };
  },
});

const scope = lockScope("mem", "in-process");
const [K0, K1, K2, K3] = [0, 1, 2, 3].map((n) => lockKey(scope, n)) as [string, string, string, string];

/** Lets every pending promise callback run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Records the order in which leases are granted. */
function recorder() {
  const order: string[] = [];
  const leases = new Map<string, Lease>();
  const take = (label: string, promise: Promise<Lease>) =>
    promise.then(
      (lease) => {
        order.push(label);
        leases.set(label, lease);
      },
      (error: unknown) => {
        order.push(`${label}:${isZarrTxError(error) ? error.code : String(error)}`);
      },
    );
  const release = (label: string) => leases.get(label)!.release();
  return { order, take, release };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (error: unknown) => error,
  );
}

describe("InProcessSynchronizer specifics", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("grants an uncontended request synchronously, within one microtask", async () => {
    const sync = new InProcessSynchronizer();
    let lease: Lease | undefined;
    const pending = sync.acquire([K1, K2], "exclusive").then((granted) => {
      lease = granted;
    });
    await Promise.resolve();
    expect(lease?.keys).toEqual([K1, K2]);
    await pending;
    await lease!.release();
    await sync.close();
  });

  it("grants conflicting requests in arrival order (FIFO)", async () => {
    const sync = new InProcessSynchronizer();
    const { order, take, release } = recorder();
    const holder = await sync.acquire([K1], "exclusive");
    const all = Promise.all([
      take("r1", sync.acquire([K1], "shared")),
      take("w2", sync.acquire([K1], "exclusive")),
      take("r3", sync.acquire([K1], "shared")),
      take("r4", sync.acquire([K1, K2], "shared")),
      take("w5", sync.acquire([K1], "exclusive")),
    ]);
    await flush();
    expect(order).toEqual([]);
    await holder.release();
    await flush();
    expect(order).toEqual(["r1"]);
    await release("r1");
    await flush();
    expect(order).toEqual(["r1", "w2"]);
    await release("w2");
    await flush();
    // Consecutive readers are granted together.
    expect(order).toEqual(["r1", "w2", "r3", "r4"]);
    await release("r4");
    await flush();
    expect(order).toHaveLength(4);
    await release("r3");
    await all;
    expect(order).toEqual(["r1", "w2", "r3", "r4", "w5"]);
    await release("w5");
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
  });

  it("an earlier waiter never waits for a later one: a free key is not taken past an earlier waiter", async () => {
    const sync = new InProcessSynchronizer();
    const { order, take, release } = recorder();
    const holder = await sync.acquire([K0], "exclusive");
    const all = Promise.all([
      take("w1", sync.acquire([K0], "exclusive")),
      take("w2", sync.acquire([K0, K1], "exclusive")),
      // K1 is free, but w2 (earlier, still waiting) wants it: w3 queues behind w2.
      take("w3", sync.acquire([K1], "exclusive")),
      // K2 and K3 touch no waiter: granted at once.
      take("free", sync.acquire([K2, K3], "exclusive")),
    ]);
    await flush();
    expect(order).toEqual(["free"]);
    await holder.release();
    await flush();
    expect(order).toEqual(["free", "w1"]);
    await release("w1");
    await flush();
    expect(order).toEqual(["free", "w1", "w2"]);
    await release("w2");
    await all;
    expect(order).toEqual(["free", "w1", "w2", "w3"]);
    await release("w3");
    await release("free");
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
  });

  it("a later reader joins earlier waiting readers at once when no writer waits ahead of it", async () => {
    const sync = new InProcessSynchronizer();
    const holder = await sync.acquire([K2], "exclusive");
    const { order, take, release } = recorder();
    const waiting = take("r1", sync.acquire([K1, K2], "shared"));
    const joining = take("r2", sync.acquire([K1], "shared"));
    await flush();
    expect(order).toEqual(["r2"]);
    await holder.release();
    await Promise.all([waiting, joining]);
    expect(order).toEqual(["r2", "r1"]);
    await release("r1");
    await release("r2");
    await sync.close();
  });

  it("a reader woken by another key still does not overtake a writer queued ahead of it", async () => {
    const sync = new InProcessSynchronizer();
    const reader = await sync.acquire([K1], "shared");
    const holder = await sync.acquire([K2], "exclusive");
    const { order, take, release } = recorder();
    const writer = take("w", sync.acquire([K1], "exclusive"));
    const late = take("r", sync.acquire([K1, K2], "shared"));
    await flush();
    // K2 frees, which wakes the late reader, but the writer is still ahead of it on K1.
    await holder.release();
    await flush();
    expect(order).toEqual([]);
    await reader.release();
    await flush();
    expect(order).toEqual(["w"]);
    await release("w");
    await Promise.all([writer, late]);
    expect(order).toEqual(["w", "r"]);
    await release("r");
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
  });

  it("cancelling a queued writer grants the readers queued behind it at once", async () => {
    const sync = new InProcessSynchronizer();
    const reader = await sync.acquire([K1], "shared");
    const controller = new AbortController();
    const { order, take, release } = recorder();
    const writer = take("w", sync.acquire([K1, K2], "exclusive", { signal: controller.signal }));
    const late = take("r", sync.acquire([K2], "shared"));
    await flush();
    expect(order).toEqual([]);
    controller.abort();
    await Promise.all([writer, late]);
    expect(order).toEqual(["w:ERR_LOCK_ABORTED", "r"]);
    await release("r");
    await reader.release();
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
  });

  it("fence increases strictly with every grant, immediate or queued, across keys", async () => {
    const sync = new InProcessSynchronizer();
    const fences: bigint[] = [];
    const first = await sync.acquire([K1], "exclusive");
    const queued = sync.acquire([K1], "shared");
    const other = await sync.acquire([K2], "shared");
    const empty = await sync.acquire([], "exclusive");
    await first.release();
    const second = await queued;
    const third = await sync.acquire([K1, K2], "shared");
    for (const lease of [first, other, empty, second, third]) fences.push(lease.fence!);
    for (const fence of fences) expect(typeof fence).toBe("bigint");
    expect(fences).toEqual([...fences].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    expect(new Set(fences).size).toBe(fences.length);
    await sync.close();
  });

  it("timeoutMs 0 is a try-lock: refused at once without queuing or timers", async () => {
    vi.useFakeTimers();
    const sync = new InProcessSynchronizer();
    const holder = await sync.acquire([K1], "shared");
    const error = await rejection(sync.acquire([K1, K2], "exclusive", { timeoutMs: 0 }));
    expect(isZarrTxError(error, "ERR_LOCK_TIMEOUT")).toBe(true);
    expect(sync.stats().waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    const reader = await sync.acquire([K1], "shared", { timeoutMs: 0 });
    await Promise.all([holder.release(), reader.release()]);
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
  });

  it("clears its timer and abort listener on every path: grant, timeout, abort and close", async () => {
    vi.useFakeTimers();
    const sync = new InProcessSynchronizer();
    const listeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

    // Granted after waiting.
    let holder = await sync.acquire([K1], "exclusive");
    const granted = new AbortController();
    const waiting = sync.acquire([K1], "exclusive", { timeoutMs: 60_000, signal: granted.signal });
    expect(vi.getTimerCount()).toBe(1);
    expect(listeners(granted.signal)).toBe(1);
    await holder.release();
    holder = await waiting;
    expect(vi.getTimerCount()).toBe(0);
    expect(listeners(granted.signal)).toBe(0);

    // Timed out.
    const timedOut = new AbortController();
    const late = rejection(sync.acquire([K1], "shared", { timeoutMs: 500, signal: timedOut.signal }));
    await vi.advanceTimersByTimeAsync(500);
    expect(isZarrTxError(await late, "ERR_LOCK_TIMEOUT")).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(listeners(timedOut.signal)).toBe(0);

    // Aborted.
    const aborted = new AbortController();
    const gaveUp = rejection(sync.acquire([K1], "shared", { timeoutMs: 500, signal: aborted.signal }));
    aborted.abort();
    expect(isZarrTxError(await gaveUp, "ERR_LOCK_ABORTED")).toBe(true);
    expect(vi.getTimerCount()).toBe(0);

    // Closed.
    const closing = new AbortController();
    const refused = rejection(sync.acquire([K1], "shared", { timeoutMs: 500, signal: closing.signal }));
    await sync.close();
    expect(isZarrTxError(await refused, "ERR_SYNCHRONIZER_CLOSED")).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(listeners(closing.signal)).toBe(0);
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
    await holder.release();
  });

  it("a waiter settles once: an abort after its timeout changes nothing", async () => {
    vi.useFakeTimers();
    const sync = new InProcessSynchronizer();
    const holder = await sync.acquire([K1], "exclusive");
    const controller = new AbortController();
    const waiting = rejection(sync.acquire([K1], "exclusive", { timeoutMs: 10, signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    const error = await waiting;
    expect(error).toBeInstanceOf(LockError);
    expect(isZarrTxError(error, "ERR_LOCK_TIMEOUT")).toBe(true);
    expect(error instanceof Error && error.message).toContain("10 ms");
    await holder.release();
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
  });

  it("locks are not re-entrant: a second acquisition of a held key waits like any other", async () => {
    const sync = new InProcessSynchronizer();
    const lease = await sync.acquire([K1], "exclusive");
    const error = await rejection(sync.acquire([K1], "exclusive", { timeoutMs: 5 }));
    expect(isZarrTxError(error, "ERR_LOCK_TIMEOUT")).toBe(true);
    await lease.release();
    await sync.close();
  });

  it("close() revokes held leases: their signal aborts with a LeaseLostError and release is a no-op", async () => {
    const sync = new InProcessSynchronizer({ name: "test table" });
    const watched = await sync.acquire([K1], "exclusive");
    const unwatched = await sync.acquire([K2], "shared");
    const signal = watched.signal;
    let reason: unknown;
    signal.addEventListener("abort", () => {
      reason = signal.reason;
    });
    await sync.close();
    expect(sync.closed).toBe(true);
    expect(reason).toBeInstanceOf(LeaseLostError);
    // A signal first read after close is aborted too.
    expect(unwatched.signal.aborted).toBe(true);
    await watched.release();
    await unwatched[Symbol.asyncDispose]();
    const error = await rejection(sync.acquire([], "shared"));
    expect(isZarrTxError(error, "ERR_SYNCHRONIZER_CLOSED")).toBe(true);
    expect(error instanceof Error && error.message).toContain("test table");
    await sync.close();
  });

  it("rejects (never throws) bad arguments with ERR_INVALID_ARGUMENT, holding nothing", async () => {
    const sync = new InProcessSynchronizer();
    const bad: Array<() => Promise<Lease>> = [
      () => sync.acquire([K1], "exclusive", { timeoutMs: -1 }),
      () => sync.acquire([K1], "exclusive", { timeoutMs: Number.NaN }),
      () => sync.acquire(K1 as unknown as string[], "exclusive"),
      () => sync.acquire([K1, 7 as unknown as string], "shared"),
      () => sync.acquire([K1], "write" as unknown as "exclusive"),
      () => sync.acquireSet({ exclusive: K1 } as unknown as LockSet),
      () => sync.acquireSet({ shared: [K1], exclusive: [K2, null as unknown as string] }),
    ];
    for (const attempt of bad) {
      let promise: Promise<Lease> | undefined;
      expect(() => {
        promise = attempt();
      }).not.toThrow();
      expect(isZarrTxError(await rejection(promise!), "ERR_INVALID_ARGUMENT")).toBe(true);
    }
    expect(sync.stats()).toEqual({ keys: 0, held: 0, waiting: 0 });
    await sync.close();
  });

  it("resolveLockSet sorts, deduplicates and lets exclusive win", () => {
    expect(resolveLockSet({ shared: [K2, K1, K2], exclusive: [K3, K2] })).toEqual({
      keys: [K1, K2, K3],
      modes: ["shared", "exclusive", "exclusive"],
      mode: "exclusive",
    });
    expect(resolveLockSet({ shared: [K1] })).toEqual({ keys: [K1], modes: ["shared"], mode: "shared" });
    expect(resolveLockSet({})).toEqual({ keys: [], modes: [], mode: "shared" });
  });

  it("matches a reference model of the grant protocol step by step (fast-check)", async () => {
    type Op =
      | { kind: "request"; shared: number[]; exclusive: number[] }
      | { kind: "release"; pick: number }
      | { kind: "cancel"; pick: number };
    const key = fc.nat(3);
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant("request" as const),
          shared: fc.uniqueArray(key, { maxLength: 3 }),
          exclusive: fc.uniqueArray(key, { maxLength: 2 }),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
    );

    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const sync = new InProcessSynchronizer();
        interface Req {
          readonly id: number;
          readonly modes: Map<number, "shared" | "exclusive">;
          readonly controller: AbortController;
          lease?: Lease;
          failed?: boolean;
        }
        // Model: holders and waiters (in arrival order), granted by the protocol's rule, recomputed naively.
        const modelHeld: Req[] = [];
        const modelWaiting: Req[] = [];
        const conflicts = (x: Req, y: Req) =>
          [...x.modes].some(
            ([k, m]) => y.modes.has(k) && (m === "exclusive" || y.modes.get(k) === "exclusive"),
          );
        const settleModel = () => {
          for (let i = 0; i < modelWaiting.length; ) {
            const req = modelWaiting[i]!;
            const blocked =
              modelHeld.some((held) => conflicts(held, req)) ||
              modelWaiting.slice(0, i).some((earlier) => conflicts(earlier, req));
            if (blocked) i++;
            else {
              modelWaiting.splice(i, 1);
              modelHeld.push(req);
            }
          }
        };
        const all: Req[] = [];
        const held = () => all.filter((req) => req.lease !== undefined && !modelReleased.has(req.id));
        const modelReleased = new Set<number>();

        for (const step of ops) {
          if (step.kind === "request") {
            const modes = new Map<number, "shared" | "exclusive">();
            for (const k of step.shared) modes.set(k, "shared");
            for (const k of step.exclusive) modes.set(k, "exclusive");
            const req: Req = { id: all.length, modes, controller: new AbortController() };
            all.push(req);
            sync
              .acquireSet(
                {
                  shared: step.shared.map((k) => lockKey(scope, k)),
                  exclusive: step.exclusive.map((k) => lockKey(scope, k)),
                },
                { signal: req.controller.signal },
              )
              .then(
                (lease) => {
                  req.lease = lease;
                },
                () => {
                  req.failed = true;
                },
              );
            modelWaiting.push(req);
          } else if (step.kind === "release") {
            const holders = held();
            if (holders.length === 0) continue;
            const req = holders[step.pick % holders.length]!;
            modelReleased.add(req.id);
            modelHeld.splice(modelHeld.indexOf(req), 1);
            await req.lease!.release();
          } else {
            if (modelWaiting.length === 0) continue;
            const req = modelWaiting[step.pick % modelWaiting.length]!;
            modelWaiting.splice(modelWaiting.indexOf(req), 1);
            req.controller.abort();
          }
          settleModel();
          await flush();
          const grantedIds = all.filter((req) => req.lease !== undefined && !modelReleased.has(req.id));
          expect(grantedIds.map((req) => req.id).sort((x, y) => x - y)).toEqual(
            modelHeld.map((req) => req.id).sort((x, y) => x - y),
          );
          expect(sync.stats().waiting).toBe(modelWaiting.length);
        }
        await sync.close();
        await flush();
        expect(all.every((req) => req.lease !== undefined || req.failed === true)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
