import type { SaleWarmup } from './stock-store.js';

/** A {@link SaleWarmup} whose numbers were checked and whose lists were read once. */
export interface CheckedWarmup {
  readonly saleId: number;
  readonly stock: number;
  readonly remaining: number;
  readonly epoch: string;
  readonly buyers: readonly (readonly [string, string])[];
  readonly released: readonly string[];
}

/**
 * Refuses a warm-up that would make the store oversell or lose track of the sale, before
 * anything is changed. The lists are read into arrays because a warm-up may be given
 * one-shot iterables (generators over a database cursor).
 *
 * @throws RangeError naming the field that is wrong.
 */
export function checkWarmup(warmup: SaleWarmup): CheckedWarmup {
  const { saleId, stock, remaining, epoch } = warmup;
  const refuse = (what: string): never => {
    throw new RangeError(`warm-up of sale ${saleId} refused: ${what}; the caller computed it wrongly, nothing was changed`);
  };
  if (!Number.isSafeInteger(saleId) || saleId <= 0) refuse(`saleId (${saleId}) must be a positive integer`);
  if (!Number.isSafeInteger(stock) || stock < 0) refuse(`stock (${stock}) must be an integer ≥ 0`);
  if (!Number.isSafeInteger(remaining) || remaining < 0 || remaining > stock) {
    refuse(`remaining (${remaining}) must be an integer from 0 to stock (${stock})`);
  }
  if (typeof epoch !== 'string' || epoch.length === 0) refuse('epoch must be a non-empty string');
  return {
    saleId,
    stock,
    remaining,
    epoch,
    buyers: Array.from(warmup.buyers, ([userId, orderId]) => [userId, orderId] as const),
    released: Array.from(warmup.released),
  };
}
