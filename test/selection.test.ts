import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { touchedKeys } from "../src/array/keys.js";
import {
  coordinates,
  type DimSelector,
  forEachTouchedChunk,
  normalizeSelection,
  projectSelection,
  type Slice,
  slice,
} from "../src/array/selection.js";
import { isZarrTxError } from "../src/errors.js";
import { lockKey } from "../src/sync/keys.js";

/** Brute force: the indices a selector picks along a dimension of length n, straight from Python's rules. */
function oracleIndices(selector: Slice | number | null, n: number): number[] {
  if (typeof selector === "number") return [selector < 0 ? selector + n : selector];
  const start = selector?.start ?? null;
  const stop = selector?.stop ?? null;
  const step = selector?.step ?? 1;
  const lo = start === null ? 0 : start < 0 ? Math.max(0, start + n) : Math.min(start, n);
  const hi = stop === null ? n : stop < 0 ? Math.max(0, stop + n) : Math.min(stop, n);
  const out: number[] = [];
  for (let i = lo; i < hi; i += step) out.push(i);
  return out;
}

function product(lists: number[][]): number[][] {
  return lists.reduce<number[][]>(
    (acc, list) => acc.flatMap((prefix) => list.map((v) => [...prefix, v])),
    [[]],
  );
}

const arrayLayout = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 13 }), fc.integer({ min: 1, max: 5 })), {
    minLength: 0,
    maxLength: 3,
  })
  .map((dims) => ({ shape: dims.map(([n]) => n), chunkShape: dims.map(([, c]) => c) }));

function selectorFor(n: number): fc.Arbitrary<DimSelector> {
  const bound = fc.option(fc.integer({ min: -n - 3, max: n + 3 }), { nil: null });
  const options: fc.Arbitrary<DimSelector>[] = [
    fc.constant(null),
    fc.record({ start: bound, stop: bound, step: fc.option(fc.integer({ min: 1, max: 7 }), { nil: null }) }),
  ];
  if (n > 0) options.push(fc.integer({ min: -n, max: n - 1 }));
  return fc.oneof(...options);
}

const layoutAndSelection = arrayLayout.chain((layout) =>
  fc.tuple(fc.constant(layout), fc.tuple(...layout.shape.map((n) => selectorFor(n)))),
);

describe("selection → keys", () => {
  it("touches exactly the chunks that contain a selected element (property, vs brute force)", () => {
    fc.assert(
      fc.property(layoutAndSelection, ([{ shape, chunkShape }, selection]) => {
        const picked = selection.map((s, axis) => oracleIndices(s as Slice | number | null, shape[axis]!));
        const grid = shape.map((n, i) => Math.ceil(n / chunkShape[i]!));
        const expected = new Map<number, number>();
        for (const point of product(picked)) {
          let linear = 0;
          point.forEach((v, axis) => {
            linear = linear * grid[axis]! + Math.floor(v / chunkShape[axis]!);
          });
          expected.set(linear, (expected.get(linear) ?? 0) + 1);
        }
        const sel = normalizeSelection(selection, shape);
        expect(sel.shape).toEqual(
          picked.filter((_, axis) => typeof selection[axis] !== "number").map((l) => l.length),
        );
        const projections = projectSelection(sel, shape, chunkShape);
        expect(projections.map((p) => p.linearIndex)).toEqual([...expected.keys()].sort((a, b) => a - b));
        for (const p of projections) {
          // Elements selected in this chunk, and whether they cover every in-bounds element of it.
          const inChunk = p.dims.reduce((n, d) => n * d.count, 1);
          expect(inChunk).toBe(expected.get(p.linearIndex));
          const extent = p.coords.reduce(
            (n, c, axis) => n * Math.min(chunkShape[axis]!, shape[axis]! - c * chunkShape[axis]!),
            1,
          );
          expect(p.full).toBe(inChunk === extent);
        }
        const keys = touchedKeys(
          { shape, chunkShape, chunkKeyEncoding: { name: "default", separator: "/" } },
          "/a",
          "scope",
          selection,
        );
        expect(keys.lockKeys).toEqual(projections.map((p) => lockKey("scope", p.linearIndex)));
        expect(keys.storeKeys).toEqual(projections.map((p) => `/a/${["c", ...p.coords].join("/")}`));
      }),
      { numRuns: 3000 },
    );
  });

  it("skips chunks a stepped slice jumps over", () => {
    const sel = normalizeSelection([slice(0, 20, 10)], [20]);
    expect(projectSelection(sel, [20], [2]).map((p) => p.coords[0])).toEqual([0, 5]);
  });

  it("rejects bad selections with typed errors", () => {
    const cases: [unknown, string][] = [
      [[10], "ERR_OUT_OF_BOUNDS"],
      [[-11], "ERR_OUT_OF_BOUNDS"],
      [[1.5], "ERR_INVALID_SELECTION"],
      [[slice(0, 5, 0)], "ERR_INVALID_STEP"],
      [[slice(5, 0, -1)], "ERR_INVALID_STEP"],
      [[0, 0], "ERR_INVALID_SELECTION"],
      [["x"], "ERR_INVALID_SELECTION"],
      [[{ start: 0.5, stop: 2, step: null }], "ERR_INVALID_SELECTION"],
      ["0:5", "ERR_INVALID_SELECTION"],
    ];
    for (const [selection, code] of cases) {
      let thrown: unknown;
      try {
        normalizeSelection(selection as never, [10]);
      } catch (error) {
        thrown = error;
      }
      expect(isZarrTxError(thrown, code as never), `${JSON.stringify(selection)} → ${code}`).toBe(true);
    }
  });
});

describe("advanced selections → keys", () => {
  const layoutWithSelectors = fc
    .array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 })), {
      minLength: 1,
      maxLength: 3,
    })
    .chain((dims) => {
      const shape = dims.map(([n]) => n);
      const chunkShape = dims.map(([, c]) => c);
      const perDim = shape.map((n) =>
        fc.oneof(
          fc.array(fc.integer({ min: -n, max: n - 1 }), { maxLength: 6 }),
          fc.array(fc.boolean(), { minLength: n, maxLength: n }),
          fc.integer({ min: -n, max: n - 1 }),
          fc.constant(null),
        ),
      );
      const points = fc
        .integer({ min: 0, max: 8 })
        .chain((count) =>
          fc.tuple(
            ...shape.map((n) =>
              fc.array(fc.integer({ min: -n, max: n - 1 }), { minLength: count, maxLength: count }),
            ),
          ),
        );
      return fc.record({
        shape: fc.constant(shape),
        chunkShape: fc.constant(chunkShape),
        orthogonal: fc.tuple(...perDim),
        points,
      });
    });

  function chunkOf(point: number[], shape: number[], chunkShape: number[]): number {
    return point.reduce(
      (acc, v, axis) => acc * Math.ceil(shape[axis]! / chunkShape[axis]!) + Math.floor(v / chunkShape[axis]!),
      0,
    );
  }

  it("orthogonal lists and masks touch exactly the chunks of their selected cells (property)", () => {
    fc.assert(
      fc.property(layoutWithSelectors, ({ shape, chunkShape, orthogonal }) => {
        const picked = orthogonal.map((s, axis) => {
          const n = shape[axis]!;
          if (s === null) return Array.from({ length: n }, (_, i) => i);
          if (typeof s === "number") return [s < 0 ? s + n : s];
          if (s.length > 0 && typeof s[0] === "boolean")
            return (s as boolean[]).flatMap((b, i) => (b ? [i] : []));
          return (s as number[]).map((i) => (i < 0 ? i + n : i));
        });
        const expected = new Map<number, number>();
        for (const point of product(picked)) {
          const c = chunkOf(point, shape, chunkShape);
          expected.set(c, (expected.get(c) ?? 0) + 1);
        }
        const sel = normalizeSelection(orthogonal, shape);
        expect(sel.shape).toEqual(
          picked.filter((_, axis) => typeof orthogonal[axis] !== "number").map((l) => l.length),
        );
        const projections = projectSelection(sel, shape, chunkShape);
        expect(projections.map((p) => p.linearIndex)).toEqual([...expected.keys()].sort((a, b) => a - b));
        for (const p of projections) expect(p.elements).toBe(expected.get(p.linearIndex));
        const visited: string[] = [];
        forEachTouchedChunk(sel, shape, chunkShape, (linear, coords) =>
          visited.push(`${linear}:${coords.join(",")}`),
        );
        expect(visited).toEqual(projections.map((p) => `${p.linearIndex}:${p.coords.join(",")}`));
      }),
      { numRuns: 2000 },
    );
  });

  it("coordinate selections touch exactly the chunks of their points (property)", () => {
    fc.assert(
      fc.property(layoutWithSelectors, ({ shape, chunkShape, points }) => {
        const count = points[0]?.length ?? 0;
        const expected = new Map<number, Set<string>>();
        for (let i = 0; i < count; i++) {
          const point = points.map((list, axis) => (list[i]! < 0 ? list[i]! + shape[axis]! : list[i]!));
          const c = chunkOf(point, shape, chunkShape);
          if (!expected.has(c)) expected.set(c, new Set());
          expected.get(c)!.add(point.join(","));
        }
        const sel = normalizeSelection(coordinates(...points), shape);
        expect(sel.shape).toEqual([count]);
        const projections = projectSelection(sel, shape, chunkShape);
        expect(projections.map((p) => p.linearIndex)).toEqual([...expected.keys()].sort((a, b) => a - b));
        for (const p of projections) {
          const extent = p.coords.reduce(
            (n, c, axis) => n * Math.min(chunkShape[axis]!, shape[axis]! - c * chunkShape[axis]!),
            1,
          );
          expect(p.full).toBe(expected.get(p.linearIndex)!.size === extent);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("rejects bad advanced selections", () => {
    const bad: [unknown, string][] = [
      [[[0, 10]], "ERR_OUT_OF_BOUNDS"],
      [[[true, false]], "ERR_INVALID_SELECTION"],
      [[[0.5]], "ERR_INVALID_SELECTION"],
      [coordinates([0, 1], [0]), "ERR_INVALID_SELECTION"],
      [coordinates([0, 1]), "ERR_INVALID_SELECTION"],
      [coordinates([0, 12], [0, 0]), "ERR_OUT_OF_BOUNDS"],
    ];
    for (const [selection, code] of bad) {
      let thrown: unknown;
      try {
        normalizeSelection(selection as never, [10, 10]);
      } catch (error) {
        thrown = error;
      }
      expect(
        isZarrTxError(thrown, code as never),
        `${JSON.stringify(selection)} → ${code}: ${String(thrown)}`,
      ).toBe(true);
    }
  });
});
