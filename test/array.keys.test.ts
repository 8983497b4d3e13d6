/** Store keys built row by row (issue 8, scale) equal the keys built one by one. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { storeKeyBuilder, touchedKeys } from "../src/array/keys.js";
import { chunkKey, joinKey } from "../src/array/metadata.js";
import { normalizeSelection, projectSelection, slice } from "../src/array/selection.js";
import type { AbsolutePath } from "../src/store/types.js";
import { lockKey } from "../src/sync/keys.js";

const encodings = [
  { name: "default", separator: "/" },
  { name: "default", separator: "." },
  { name: "v2", separator: "." },
  { name: "v2", separator: "/" },
] as const;

describe("storeKeyBuilder", () => {
  it("equals joinKey(path, chunkKey(meta, coords)) for any sequence of coordinates", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...encodings),
        fc.constantFrom("/", "/a", "/g/arr"),
        fc
          .nat({ max: 4 })
          .chain((rank) =>
            fc.array(fc.array(fc.nat({ max: 3 }), { minLength: rank, maxLength: rank }), { maxLength: 20 }),
          ),
        (encoding, path, sequence) => {
          const meta = { chunkKeyEncoding: encoding };
          const build = storeKeyBuilder(meta, path as AbsolutePath);
          for (const coords of sequence) {
            expect(build(coords)).toBe(joinKey(path as AbsolutePath, chunkKey(meta, coords)));
          }
        },
      ),
    );
  });

  it("touchedKeys lists the projected chunks' keys in order", () => {
    const meta = {
      shape: [23, 17, 5],
      chunkShape: [4, 3, 2],
      chunkKeyEncoding: { name: "default", separator: "/" } as const,
    };
    const selection = [slice(2, 21, 3), null, 4];
    const projections = projectSelection(
      normalizeSelection(selection, meta.shape),
      meta.shape,
      meta.chunkShape,
    );
    const { storeKeys, lockKeys } = touchedKeys(meta, "/arr", "s", selection);
    expect(storeKeys).toEqual(projections.map((p) => joinKey("/arr", chunkKey(meta, p.coords))));
    expect(lockKeys).toEqual(projections.map((p) => lockKey("s", p.linearIndex)));
  });
});
