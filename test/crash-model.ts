/**
 * The oracle of the crash tests: is what the array holds after the kills (and what readers saw during
 * them) explained by transactions that each happened all-or-nothing?
 *
 * Writers rewrite overlapping rectangles from several processes, so the commit order across writers is
 * not known from outside. Each transaction therefore records what it overwrote: it reads its rectangle
 * under its exclusive locks and logs the previous value of every cell (`prev`) before it commits. Each
 * value is unique to one transaction. From the final array this gives, per cell, its whole history:
 * the final value's transaction says what was there before it, that one's says what was before, and so
 * on back to the fill value (0). Then:
 *
 * - committed = every transaction on some cell's history (it was visible at the end, or a later
 *   transaction read it under its locks, so it committed);
 * - all-or-nothing: a committed transaction is on the history of EVERY cell of its rectangle. A torn
 *   one (some cells written, others not) is on some histories and missing from others, whatever
 *   happened later: a later transaction that read a cell it never wrote records the older value;
 * - nothing lost: every transaction whose commit resolved (logged `c`) is committed;
 * - serializable: the per-cell "before" edges form no cycle;
 * - every value in the array was logged by a writer, and lies inside that writer's rectangle.
 *
 * A reader's snapshot of a rectangle is consistent when every transaction it shows (and, transitively,
 * everything those overwrote) shows on every cell of the snapshot it touched, or has been overwritten
 * there by a later one: nothing is half-applied, nothing newer hides something older of the same
 * transaction.
 */
import type { Rect } from "./crash-child.js";

/** One transaction, from a writer's log. */
export interface TxRecord {
  readonly value: number;
  readonly rect: Rect;
  /** The cells of `rect` before it, in C order. */
  readonly prev: readonly number[];
  /** Its commit resolved (logged `c`). */
  resolved: boolean;
}

/** A reader's snapshot: the cells of `rect` in C order. */
export interface Snapshot {
  readonly rect: Rect;
  readonly cells: readonly number[];
}

/**
 * Parses writer logs (JSON lines `{"b":…}` and `{"c":…}`). A last line cut by a kill is skipped; any
 * other unparsable line is an error.
 */
export function parseWriterLogs(texts: readonly string[]): Map<number, TxRecord> {
  const txs = new Map<number, TxRecord>();
  for (const text of texts) {
    for (const line of jsonLines(text)) {
      const entry = line as { b?: number; c?: number; sel?: Rect; prev?: number[] };
      if (entry.b !== undefined) {
        if (txs.has(entry.b)) throw new Error(`value ${entry.b} logged twice`);
        txs.set(entry.b, { value: entry.b, rect: entry.sel!, prev: entry.prev!, resolved: false });
      } else if (entry.c !== undefined) {
        const tx = txs.get(entry.c);
        if (tx === undefined) throw new Error(`commit of ${entry.c} logged without its begin`);
        tx.resolved = true;
      }
    }
  }
  return txs;
}

/** Parses reader logs (JSON lines `{"sel":…,"cells":…}`). */
export function parseReaderLogs(texts: readonly string[]): Snapshot[] {
  return texts.flatMap((text) =>
    jsonLines(text).map((line) => {
      const s = line as { sel: Rect; cells: number[] };
      return { rect: s.sel, cells: s.cells };
    }),
  );
}

function jsonLines(text: string): unknown[] {
  const lines = text.split("\n");
  const out: unknown[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line));
    } catch (error) {
      // Only the very last line may be cut (by a kill in the middle of its write).
      if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l.trim() !== "")) throw error;
    }
  });
  return out;
}

function inside(rect: Rect, r: number, c: number): boolean {
  return r >= rect[0] && r < rect[1] && c >= rect[2] && c < rect[3];
}

function offsetIn(rect: Rect, r: number, c: number): number {
  return (r - rect[0]) * (rect[3] - rect[2]) + (c - rect[2]);
}

/** The histories of every cell, and what is wrong with them. */
export class History {
  /** Per cell (row-major), the values it held, oldest first (the fill value 0 not included). */
  readonly chains: number[][] = [];
  /** Per cell, value → index in its chain. */
  readonly #positions: Map<number, number>[] = [];
  /** Transactions that committed (on some cell's history). */
  readonly committed = new Set<number>();
  /** Everything wrong, in words (empty when the array is explained). */
  readonly problems: string[] = [];
  readonly #preds = new Map<number, number[]>();

  constructor(
    readonly shape: readonly [number, number],
    readonly txs: ReadonlyMap<number, TxRecord>,
    final: readonly number[],
  ) {
    const [rows, cols] = shape;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const chain: number[] = [];
        let value = final[r * cols + c]!;
        while (value !== 0) {
          const tx = txs.get(value);
          if (tx === undefined) {
            this.#problem(`cell (${r},${c}) holds ${value}, which no writer logged`);
            break;
          }
          if (!inside(tx.rect, r, c)) {
            this.#problem(`cell (${r},${c}) holds ${value}, outside that transaction's rectangle ${tx.rect}`);
            break;
          }
          if (chain.includes(value)) {
            this.#problem(`cell (${r},${c}): its history loops at ${value}`);
            break;
          }
          chain.push(value);
          value = tx.prev[offsetIn(tx.rect, r, c)]!;
        }
        chain.reverse();
        this.chains.push(chain);
        this.#positions.push(new Map(chain.map((v, i) => [v, i])));
        for (const v of chain) this.committed.add(v);
      }
    }
    // All-or-nothing: a committed transaction is on the history of every cell of its rectangle.
    for (const value of this.committed) {
      const tx = txs.get(value)!;
      const missing: string[] = [];
      this.#forCells(tx.rect, undefined, (r, c, i) => {
        if (!this.#positions[i]!.has(value)) missing.push(`(${r},${c})`);
      });
      if (missing.length > 0) {
        this.#problem(
          `transaction ${value} (${tx.rect}) is torn: committed, but never written to ${missing.length} of its cells: ${missing.slice(0, 5).join(" ")}`,
        );
      }
    }
    // Nothing lost: a transaction whose commit resolved is committed.
    for (const tx of txs.values()) {
      if (tx.resolved && !this.committed.has(tx.value)) {
        this.#problem(`transaction ${tx.value} (${tx.rect}) resolved its commit, but no cell ever shows it`);
      }
    }
    this.#checkAcyclic();
  }

  /** Transactions that began (logged `b`) but whose commit never resolved: killed in flight, or before. */
  inFlight(): { total: number; committed: number } {
    let total = 0;
    let committed = 0;
    for (const tx of this.txs.values()) {
      if (tx.resolved) continue;
      total++;
      if (this.committed.has(tx.value)) committed++;
    }
    return { total, committed };
  }

  /** What is wrong with a reader's snapshot (empty when it is consistent). */
  checkSnapshot(snapshot: Snapshot): string[] {
    const problems: string[] = [];
    const { rect, cells } = snapshot;
    const cols = this.shape[1];
    const shown = new Set<number>();
    const at = (r: number, c: number): number => cells[offsetIn(rect, r, c)]!;
    this.#forCells(rect, undefined, (r, c, i) => {
      const value = at(r, c);
      if (value === 0) return;
      if (!this.#positions[i]!.has(value)) {
        problems.push(`a reader saw ${value} at (${r},${c}), which is not in that cell's committed history`);
      } else shown.add(value);
    });
    // Everything those values overwrote, transitively, must show too (or be overwritten later).
    const visible = new Set<number>();
    const stack = [...shown];
    while (stack.length > 0) {
      const value = stack.pop()!;
      if (visible.has(value)) continue;
      visible.add(value);
      for (const p of this.#predsOf(value)) if (!visible.has(p)) stack.push(p);
    }
    for (const value of visible) {
      const tx = this.txs.get(value)!;
      this.#forCells(tx.rect, rect, (r, c, i) => {
        const positions = this.#positions[i]!;
        const mine = positions.get(value);
        if (mine === undefined) return; // torn: reported by the final check
        const there = at(r, c);
        const seen = there === 0 ? -1 : (positions.get(there) ?? -1);
        if (seen < mine) {
          problems.push(
            `a reader saw transaction ${value} half-applied: cell (${r},${c}) of its rectangle shows ` +
              `${there}, older than it (snapshot ${rect}, cell ${r * cols + c})`,
          );
        }
      });
      if (problems.length > 5) break;
    }
    return problems;
  }

  #predsOf(value: number): number[] {
    let preds = this.#preds.get(value);
    if (preds === undefined) {
      preds = [...new Set(this.txs.get(value)!.prev.filter((p) => p !== 0))];
      this.#preds.set(value, preds);
    }
    return preds;
  }

  /** Calls `fn(r, c, cellIndex)` for each cell of `rect` (intersected with `within`). */
  #forCells(rect: Rect, within: Rect | undefined, fn: (r: number, c: number, i: number) => void): void {
    const cols = this.shape[1];
    const r0 = Math.max(rect[0], within?.[0] ?? 0);
    const r1 = Math.min(rect[1], within?.[1] ?? Number.POSITIVE_INFINITY);
    const c0 = Math.max(rect[2], within?.[2] ?? 0);
    const c1 = Math.min(rect[3], within?.[3] ?? Number.POSITIVE_INFINITY);
    for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) fn(r, c, r * cols + c);
  }

  /** The "was before" edges of all histories admit one serial order (Kahn's algorithm). */
  #checkAcyclic(): void {
    const after = new Map<number, Set<number>>();
    const indegree = new Map<number, number>();
    for (const v of this.committed) indegree.set(v, 0);
    for (const chain of this.chains) {
      for (let i = 1; i < chain.length; i++) {
        const [a, b] = [chain[i - 1]!, chain[i]!];
        let next = after.get(a);
        if (next === undefined) {
          next = new Set();
          after.set(a, next);
        }
        if (!next.has(b)) {
          next.add(b);
          indegree.set(b, (indegree.get(b) ?? 0) + 1);
        }
      }
    }
    const ready = [...indegree].filter(([, d]) => d === 0).map(([v]) => v);
    let ordered = 0;
    while (ready.length > 0) {
      const v = ready.pop()!;
      ordered++;
      for (const w of after.get(v) ?? []) {
        const d = indegree.get(w)! - 1;
        indegree.set(w, d);
        if (d === 0) ready.push(w);
      }
    }
    if (ordered < indegree.size) {
      this.#problem(
        `the committed transactions admit no serial order (${indegree.size - ordered} on a cycle)`,
      );
    }
  }

  #problem(text: string): void {
    if (this.problems.length < 20) this.problems.push(text);
  }
}
