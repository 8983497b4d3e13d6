/**
 * Bounded concurrency helpers shared by every layer (like errors.ts, this module imports nothing).
 */

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and returns the results in input order.
 * Rejects with the first error; calls already started still run to completion.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<unknown>,
): Promise<void> {
  await mapLimit(items, limit, fn);
}
