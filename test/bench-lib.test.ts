/** The shared benchmark helpers (bench/lib.ts): the JSON line schema and its ratios. No timing here. */
import { describe, expect, it } from "vitest";
import { compare, parseArgs, speedRatio, stats } from "../bench/lib.js";

describe("bench/lib", () => {
  it("ratio is 'times as fast as the baseline' for times and rates alike", () => {
    expect(speedRatio("ms", 50, 100)).toBe(2);
    expect(speedRatio("writes/s", 200, 100)).toBe(2);
    const lines = compare(
      "w",
      "ms",
      "base",
      { base: [10, 12, 11], fast: [5, 6, 4] },
      {
        p99: true,
        goals: { fast: { text: "ratio >= 2", min: 2 } },
      },
    );
    expect(lines[0]).toMatchObject({
      workload: "w",
      variant: "base",
      n: 3,
      median: 11,
      ratio: 1,
      baseline: "base",
      unit: "ms",
    });
    expect(lines[1]).toMatchObject({
      variant: "fast",
      median: 5,
      spread: [4, 6],
      p99: 6,
      ratio: 2.2,
      goal: "ratio >= 2",
      met: true,
    });
  });

  it("stats and arguments", () => {
    expect(stats([3, 1, 2])).toEqual({ n: 3, median: 2, p99: 3, min: 1, max: 3 });
    const args = parseArgs(["--quick", "diagonal", "--repeats", "4"]);
    expect(args).toMatchObject({ quick: true, filter: "diagonal" });
    expect(args.number("repeats", 1)).toBe(4);
    expect(args.number("seconds", 2)).toBe(2);
    expect(parseArgs(["--repeats", "4"]).filter).toBe("");
  });
});
