/**
 * Splits `items` into runs of at most `size`, to keep each statement under the database's
 * limit on bind parameters.
 *
 * @example
 * for (const ids of chunked(orderIds, backend.maxParameters)) await query(ids);
 */
export function* chunked<T>(items: readonly T[], size: number): Generator<T[]> {
  if (!(size >= 1)) throw new RangeError(`chunk size must be at least 1, got ${size}`);
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
