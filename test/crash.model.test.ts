/**
 * The crash tests' oracle (test/crash-model.ts) on hand-made histories: it must accept what is
 * consistent and name what is not, or the SIGKILL tests could pass over torn data. (Run end to end with
 * `journal: false`, the same kills do leave torn transactions, and the oracle reports them.)
 */
import { describe, expect, it } from "vitest";
import type { Rect } from "./crash-child.js";
import { History, parseWriterLogs, type TxRecord } from "./crash-model.js";

function tx(value: number, rect: Rect, prev: number[], resolved = true): TxRecord {
  return { value, rect, prev, resolved };
}

/** 4×4: T1 writes rows 0–1 over fill; T2 writes rows 1–2, columns 0–1, over T1 (row 1) and fill (row 2). */
const T1 = tx(1, [0, 2, 0, 4], new Array(8).fill(0));
const T2 = tx(2, [1, 3, 0, 2], [1, 1, 0, 0]);
const txs = new Map([
  [1, T1],
  [2, T2],
]);
// biome-ignore format: a 4×4 grid reads best as one
const FINAL = [
  1, 1, 1, 1,
  2, 2, 1, 1,
  2, 2, 0, 0,
  0, 0, 0, 0,
];

describe("crash oracle", () => {
  it("explains a consistent array: histories, committed set, nothing wrong", () => {
    const history = new History([4, 4], txs, FINAL);
    expect(history.problems).toEqual([]);
    expect([...history.committed].sort()).toEqual([1, 2]);
    expect(history.chains[4]).toEqual([1, 2]); // cell (1,0): T1 then T2
    expect(history.chains[8]).toEqual([2]);
  });

  it("names a torn transaction, a lost commit and a value nobody wrote", () => {
    const torn = [...FINAL];
    torn[8] = 0; // T2 never reached (2,0)
    expect(new History([4, 4], txs, torn).problems).toEqual([
      expect.stringMatching(/^transaction 2 \(1,3,0,2\) is torn: .* 1 of its cells: \(2,0\)/),
    ]);
    const lost = new Map([...txs, [3, tx(3, [3, 4, 0, 4], [0, 0, 0, 0])]]);
    expect(new History([4, 4], lost, FINAL).problems).toEqual([
      expect.stringMatching(/transaction 3 .* resolved its commit, but no cell ever shows it/),
    ]);
    const stray = [...FINAL];
    stray[15] = 99;
    expect(new History([4, 4], txs, stray).problems).toEqual(["cell (3,3) holds 99, which no writer logged"]);
  });

  it("accepts a killed transaction that is wholly in or wholly out", () => {
    const killed = new Map([...txs, [3, tx(3, [3, 4, 0, 2], [0, 0], false)]]);
    expect(new History([4, 4], killed, FINAL).problems).toEqual([]);
    const applied = [...FINAL];
    applied[12] = 3;
    applied[13] = 3;
    const history = new History([4, 4], killed, applied);
    expect(history.problems).toEqual([]);
    expect(history.inFlight()).toEqual({ total: 1, committed: 1 });
  });

  it("names histories that admit no serial order", () => {
    // a overwrote b at (0,0), b overwrote a at (0,1).
    const cyclic = new Map([
      [5, tx(5, [0, 1, 0, 2], [6, 0])],
      [6, tx(6, [0, 1, 0, 2], [0, 5])],
    ]);
    const problems = new History([1, 2], cyclic, [5, 6]).problems;
    expect(problems).toEqual([expect.stringMatching(/admit no serial order/)]);
  });

  it("checks readers' snapshots: half-applied transactions and missing predecessors", () => {
    const history = new History([4, 4], txs, FINAL);
    const rect: Rect = [0, 3, 0, 2];
    expect(history.checkSnapshot({ rect, cells: [0, 0, 0, 0, 0, 0] })).toEqual([]); // before T1
    expect(history.checkSnapshot({ rect, cells: [1, 1, 1, 1, 0, 0] })).toEqual([]); // after T1
    expect(history.checkSnapshot({ rect, cells: [1, 1, 2, 2, 2, 2] })).toEqual([]); // after T2
    // T2 on row 1 but not on row 2: half-applied.
    expect(history.checkSnapshot({ rect, cells: [1, 1, 2, 2, 0, 0] })).toEqual([
      expect.stringMatching(/saw transaction 2 half-applied: cell \(2,0\)/),
      expect.stringMatching(/saw transaction 2 half-applied: cell \(2,1\)/),
    ]);
    // T2 whole, but T1 (which T2 overwrote) missing from row 0.
    expect(history.checkSnapshot({ rect, cells: [0, 0, 2, 2, 2, 2] })[0]).toMatch(
      /saw transaction 1 half-applied: cell \(0,0\)/,
    );
    expect(history.checkSnapshot({ rect: [3, 4, 0, 1], cells: [7] })).toEqual([
      "a reader saw 7 at (3,0), which is not in that cell's committed history",
    ]);
  });

  it("parses logs, skipping only a last line cut by a kill", () => {
    const log = '{"b":1,"sel":[0,1,0,2],"prev":[0,0]}\n{"c":1}\n{"b":2,"sel":[0,1,0,2],"pr';
    const parsed = parseWriterLogs([log]);
    expect([...parsed.values()]).toEqual([tx(1, [0, 1, 0, 2], [0, 0], true)]);
    expect(() => parseWriterLogs(['{"b":1,"sel"\n{"c":1}\n'])).toThrow();
  });
});
