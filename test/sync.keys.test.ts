/**
 * The fast paths of lock planning (issue 8, scale): lock keys, slot parsing, sorted-list merging and the
 * file synchronizer's byte runs, each checked against a plain reference implementation.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FileBytes, FileSynchronizer } from "../src/sync/file.js";
import { resolveLockSet } from "../src/sync/in-process.js";
import { isStrictlyAscending, lockKey, META_SLOT, parseLockKey, sortedUnique } from "../src/sync/keys.js";
import type { LockMode } from "../src/sync/types.js";

/** The lock set as the original implementation resolved it: a map, then a sort. */
function referenceResolve(shared: readonly string[], exclusive: readonly string[]) {
  const byKey = new Map<string, LockMode>();
  for (const key of shared) byKey.set(key, "shared");
  for (const key of exclusive) byKey.set(key, "exclusive");
  const keys = [...byKey.keys()].sort();
  const modes = keys.map((key) => byKey.get(key)!);
  return { keys, modes, mode: modes.includes("exclusive") ? "exclusive" : "shared" };
}

/** Byte runs as the original implementation built them. */
function referenceRuns(entries: readonly { byte: number; exclusive: boolean }[]) {
  const bytes = new Map<number, boolean>();
  for (const { byte, exclusive } of entries) bytes.set(byte, (bytes.get(byte) ?? false) || exclusive);
  const runs: { start: number; length: number; exclusive: boolean }[] = [];
  for (const byte of [...bytes.keys()].sort((x, y) => x - y)) {
    const exclusive = bytes.get(byte)!;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.exclusive === exclusive && last.start + last.length === byte)
      last.length++;
    else runs.push({ start: byte, length: 1, exclusive });
  }
  return runs;
}

describe("lock keys", () => {
  it("lockKey pads to 16 digits and parseLockKey inverts it", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.oneof(fc.constant(META_SLOT), fc.nat({ max: Number.MAX_SAFE_INTEGER })),
        (scope, slot) => {
          const key = lockKey(scope, slot);
          if (slot !== META_SLOT) expect(key).toBe(`${scope}#${String(slot).padStart(16, "0")}`);
          expect(parseLockKey(key)).toEqual({ scope, slot });
        },
      ),
    );
  });

  it("parseLockKey agrees with the regular-expression parser on any text", () => {
    const reference = (key: string) => {
      const at = key.lastIndexOf("#");
      if (at < 0) return undefined;
      const slotText = key.slice(at + 1);
      if (slotText === META_SLOT) return { scope: key.slice(0, at), slot: META_SLOT };
      if (!/^\d+$/.test(slotText)) return undefined;
      return { scope: key.slice(0, at), slot: Number(slotText) };
    };
    const text = fc.stringMatching(/^[a-z#0-9]{0,12}$/);
    fc.assert(
      fc.property(text, (key) => {
        expect(parseLockKey(key)).toEqual(reference(key));
      }),
    );
    for (const key of ["a#meta", "a#", "#", "a#1e3", "a#-1", "a#0x1", "a#12meta", "a#mett", "a#5#0003"]) {
      expect(parseLockKey(key)).toEqual(reference(key));
    }
  });

  it("sortedUnique and resolveLockSet match the map-and-sort reference, sorted input or not", () => {
    const keyList = fc.array(
      fc.oneof(
        fc.nat({ max: 40 }).map((n) => lockKey("s", n)),
        fc.constantFrom("s#meta", "t#meta", "a", "s#5#1"),
      ),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(keyList, keyList, fc.boolean(), fc.boolean(), (shared, exclusive, sortS, sortX) => {
        const s = sortS ? [...new Set(shared)].sort() : shared;
        const x = sortX ? [...new Set(exclusive)].sort() : exclusive;
        expect(sortedUnique(s)).toEqual([...new Set(s)].sort());
        expect(resolveLockSet({ shared: s, exclusive: x })).toEqual(referenceResolve(s, x));
        expect(resolveLockSet({ exclusive: x }).keys).toEqual([...new Set(x)].sort());
      }),
    );
  });

  it("isStrictlyAscending", () => {
    expect(isStrictlyAscending([])).toBe(true);
    expect(isStrictlyAscending(["a", "b"])).toBe(true);
    expect(isStrictlyAscending(["a", "a"])).toBe(false);
    expect(isStrictlyAscending(["b", "a"])).toBe(false);
    expect(isStrictlyAscending(["a", 1 as unknown as string])).toBe(false);
  });
});

describe("file synchronizer byte runs", () => {
  it("match the reference for bytes in any order, repeats and modes", () => {
    const entry = fc.record({ byte: fc.nat({ max: 24 }), exclusive: fc.boolean() });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 40 }), fc.boolean(), (entries, ascending) => {
        const list = ascending ? [...entries].sort((a, b) => a.byte - b.byte) : entries;
        const bytes = new FileBytes();
        for (const { byte, exclusive } of list) bytes.add(byte, exclusive);
        expect(bytes.runs()).toEqual(referenceRuns(list));
        expect(bytes.anyExclusive).toBe(list.some((e) => e.exclusive));
      }),
    );
  });

  it("keys of a scope whose name extends another's ('x' and 'x#5') lock the right bytes of each file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zarr-tx-keys-"));
    const a = new FileSynchronizer({ lockDirectory: dir });
    const b = new FileSynchronizer({ lockDirectory: dir });
    try {
      // Sorted, the two scopes interleave: x#…1, x#…3, x#5#…2, x#meta.
      const held = [lockKey("x", 1), lockKey("x#5", 2), lockKey("x", 3), lockKey("x", META_SLOT)];
      expect(held.sort().map((k) => parseLockKey(k)!.scope)).toEqual(["x", "x", "x#5", "x"]);
      const lease = await a.acquire(held, "exclusive");
      for (const key of held) {
        await expect(b.acquire([key], "shared", { timeoutMs: 0 })).rejects.toMatchObject({
          code: "ERR_LOCK_TIMEOUT",
        });
      }
      for (const key of [lockKey("x", 2), lockKey("x#5", 1), lockKey("x#5", 3), lockKey("x", 0)]) {
        await (await b.acquire([key], "exclusive", { timeoutMs: 0 })).release();
      }
      await lease.release();
    } finally {
      await a.close();
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
