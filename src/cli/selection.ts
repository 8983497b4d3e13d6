/**
 * NumPy-like selections on the command line: `--sel "0:10,5"`, `"::2,..."`, `"-1"`. Pure code.
 */

import { type DimSelector, type Selection, slice } from "../array/selection.js";
import { SelectionError } from "../errors.js";

const INTEGER = /^[+-]?\d+$/;

function bound(text: string, whole: string): number | null {
  const t = text.trim();
  if (t === "") return null;
  if (!INTEGER.test(t)) {
    throw new SelectionError(
      "ERR_INVALID_SELECTION",
      `${JSON.stringify(whole)} is not a selection entry: ${JSON.stringify(t)} is not an integer ` +
        "(use start:stop:step with integers, an integer, : or ...)",
    );
  }
  const value = Number(t);
  if (!Number.isSafeInteger(value)) {
    throw new SelectionError("ERR_INVALID_SELECTION", `${t} in ${JSON.stringify(whole)} is too large`);
  }
  return value;
}

/**
 * Parses a comma-separated selection with one entry per leading dimension, as in NumPy basic indexing:
 * an integer (negative counts from the end; the dimension is dropped from the result), `start:stop` or
 * `start:stop:step` with any part omitted (`:` or an empty entry is the whole dimension), and at most one
 * `...` that stands for as many whole dimensions as needed. The empty string selects everything.
 * Bounds and steps are checked later against the array (`ERR_OUT_OF_BOUNDS`, `ERR_INVALID_STEP`).
 *
 * @param ndim the array's number of dimensions (to expand `...`).
 * @throws {SelectionError} `ERR_INVALID_SELECTION` for malformed text, two `...`, or more entries than
 *   dimensions.
 */
export function parseSelection(text: string, ndim: number): Selection {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  const parts = trimmed.split(",").map((p) => p.trim());
  const entries: (DimSelector | "...")[] = parts.map((part) => {
    if (part === "..." || part === "…") return "...";
    if (part === "") return null;
    const pieces = part.split(":");
    if (pieces.length === 1) return bound(part, part);
    if (pieces.length > 3) {
      throw new SelectionError(
        "ERR_INVALID_SELECTION",
        `${JSON.stringify(part)} has too many colons; use start:stop or start:stop:step`,
      );
    }
    const [start = "", stop = "", step = ""] = pieces;
    const s = slice(bound(start, part), bound(stop, part), bound(step, part));
    // ":" and "::" are the whole dimension, like an empty entry.
    return s.start === null && s.stop === null && s.step === null ? null : s;
  });
  const ellipses = entries.filter((e) => e === "...").length;
  if (ellipses > 1)
    throw new SelectionError("ERR_INVALID_SELECTION", "a selection may contain one ... at most");
  const explicit = entries.length - ellipses;
  if (explicit > ndim) {
    throw new SelectionError(
      "ERR_INVALID_SELECTION",
      `the selection ${JSON.stringify(text)} has ${explicit} entries but the array has ${ndim} dimension${ndim === 1 ? "" : "s"}`,
    );
  }
  const out: DimSelector[] = [];
  for (const entry of entries) {
    if (entry === "...") for (let i = 0; i < ndim - explicit; i++) out.push(null);
    else out.push(entry);
  }
  return out;
}

/** Formats a selection back into command-line syntax (for reports). */
export function formatSelection(selection: Selection): string {
  if (selection === null || selection === undefined) return ":";
  if (!Array.isArray(selection)) return "(coordinates)";
  return (selection as readonly DimSelector[])
    .map((entry) => {
      if (entry === null) return ":";
      if (typeof entry === "number") return String(entry);
      if (Array.isArray(entry)) return `[${entry.join(" ")}]`;
      const s = entry as { start: number | null; stop: number | null; step: number | null };
      const core = `${s.start ?? ""}:${s.stop ?? ""}`;
      return s.step === null || s.step === 1 ? core : `${core}:${s.step}`;
    })
    .join(",");
}
