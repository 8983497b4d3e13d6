/**
 * What every benchmark shares: argument parsing (`--quick`, a name filter), statistics, side-by-side
 * alternation, and the one JSON line schema every script prints (see {@link BenchLine}).
 *
 * The machines are noisy 2-core VMs: every comparison is made in one run, with the sides alternating,
 * and reported as medians with p99 or the min–max spread, plus a ratio against a named baseline.
 */

/** Units of a line's `median`. Times: lower is better; rates: higher is better. */
export type Unit =
  | "ms"
  | "us"
  | "s"
  | "ops/s"
  | "writes/s"
  | "reads/s"
  | "tx/s"
  | "MB/s"
  | "count"
  | "bytes"
  | "MiB";

const RATE_UNITS: ReadonlySet<Unit> = new Set(["ops/s", "writes/s", "reads/s", "tx/s", "MB/s"]);

/**
 * One result. `ratio` is always "times as fast as the baseline" (higher is better): baseline time ÷ this
 * time for times, this rate ÷ baseline rate for rates. A baseline line carries ratio 1. Counts (torn
 * reads, lost increments, bytes) carry no ratio unless a script says otherwise.
 */
export interface BenchLine {
  /** What is measured, the same for every variant that is compared. */
  readonly workload: string;
  /** Which implementation or setting. */
  readonly variant: string;
  /** Samples behind the median (repeats, operations or runs). */
  readonly n: number;
  readonly median: number;
  readonly p99?: number;
  /** [min, max] of the samples. */
  readonly spread?: readonly [number, number];
  readonly unit: Unit;
  /** Times as fast as the baseline (see above); 1 for the baseline itself. */
  readonly ratio?: number;
  /** The variant (or external reference) the ratio is against. */
  readonly baseline?: string;
  /** A goal, as text ("ratio >= 0.95"), and whether this line meets it. */
  readonly goal?: string;
  readonly met?: boolean;
  readonly [extra: string]: unknown;
}

/** Command-line options every script understands. */
export interface BenchArgs {
  /** `--quick`: fewer repeats and shorter runs, for a smoke run (seconds, not minutes). */
  readonly quick: boolean;
  /** The first positional argument: run only workloads whose name contains it. */
  readonly filter: string;
  /** `--name value` options. */
  number(name: string, fallback: number): number;
  string(name: string): string | undefined;
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const quick = argv.includes("--quick") || process.env.ZARR_TX_BENCH_QUICK === "1";
  const optionValue = (name: string): string | undefined => {
    const at = argv.indexOf(`--${name}`);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  // Positional: not an option, and not the value of one.
  let filter = "";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("--")) {
      if (a !== "--quick" && i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) i++;
      continue;
    }
    filter = a;
    break;
  }
  return {
    quick,
    filter,
    number: (name, fallback) => {
      const v = optionValue(name);
      const n = v === undefined ? Number.NaN : Number(v);
      return Number.isFinite(n) ? n : fallback;
    },
    string: optionValue,
  };
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

export interface Stats {
  readonly n: number;
  readonly median: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
}

export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

export function median(values: readonly number[]): number {
  return stats(values).median;
}

/** Rounds to `digits` significant digits (at least), keeping integers whole. */
export function round(x: number, digits = 4): number {
  if (!Number.isFinite(x)) return x;
  if (Math.abs(x) >= 10 ** digits) return Math.round(x);
  return +x.toPrecision(digits);
}

/** "Times as fast as the baseline": higher is better, for times and rates alike. */
export function speedRatio(unit: Unit, value: number, baseline: number): number {
  return RATE_UNITS.has(unit) ? value / baseline : baseline / value;
}

const today = () => new Date().toISOString().slice(0, 10);

/** Prints one result line (JSON), with the date. */
export function emit(line: BenchLine): void {
  console.log(JSON.stringify({ ...line, date: today() }));
}

/** Prints a line that is not a result (setup, environment); the orchestrator passes it through. */
export function note(fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ note: true, ...fields, date: today() }));
}

/**
 * Builds the lines of one comparison: one per variant, each with its ratio against `baseline`.
 * `samples[variant]` are in `unit`. `extra[variant]` fields are merged into that variant's line.
 */
export function compare(
  workload: string,
  unit: Unit,
  baseline: string,
  samples: Readonly<Record<string, readonly number[]>>,
  options: {
    readonly p99?: boolean;
    readonly goals?: Readonly<Record<string, { readonly text: string; readonly min: number }>>;
    readonly extra?: Readonly<Record<string, Record<string, unknown>>>;
  } = {},
): BenchLine[] {
  const base = stats(samples[baseline] ?? []);
  return Object.entries(samples).map(([variant, values]) => {
    const s = stats(values);
    const ratio = variant === baseline ? 1 : speedRatio(unit, s.median, base.median);
    const goal = options.goals?.[variant];
    return {
      workload,
      variant,
      n: s.n,
      median: round(s.median),
      ...(options.p99 ? { p99: round(s.p99) } : {}),
      spread: [round(s.min), round(s.max)] as const,
      unit,
      ratio: round(ratio, 3),
      baseline,
      ...(goal ? { goal: goal.text, met: ratio >= goal.min } : {}),
      ...(options.extra?.[variant] ?? {}),
    };
  });
}

/** A named thing to time; `run` does one repeat. */
export interface Side {
  readonly label: string;
  readonly run: () => Promise<unknown>;
  /** Runs before each timed repeat, untimed (e.g. deleting what the last repeat wrote). */
  readonly before?: () => Promise<unknown>;
}

/**
 * Times every side `repeats` times, rotating the order each repeat so that every side sees the same
 * machine state on average. One untimed warm-up per side first. Returns milliseconds per repeat.
 */
export async function alternate(
  sides: readonly Side[],
  repeats: number,
  warmup = 1,
): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = {};
  for (const side of sides) times[side.label] = [];
  for (let w = 0; w < warmup; w++) {
    for (const side of sides) {
      await side.before?.();
      await side.run();
    }
  }
  for (let r = 0; r < repeats; r++) {
    const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
    if (r % 2 === 1) order.reverse();
    for (const side of order) {
      await side.before?.();
      const t = performance.now();
      await side.run();
      times[side.label]!.push(performance.now() - t);
    }
  }
  return times;
}

/** True when a workload name passes the filter. */
export function wanted(args: BenchArgs, name: string): boolean {
  return args.filter === "" || name.includes(args.filter);
}
