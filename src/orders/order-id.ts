import { randomBytes } from 'node:crypto';

/**
 * Order ids carry their sale id (`<saleId>-<time><random>`), so any node can find a still
 * queued order in the right sale's keys without asking the database. The time part keeps
 * ids roughly ordered, which is kind to the primary-key index.
 */
export function newOrderId(saleId: number, now: number): string {
  return `${saleId}-${now.toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}

const ORDER_ID = /^([1-9][0-9]{0,14})-[0-9a-z]{9}[0-9a-f]{16}$/;

/** The sale id inside an order id, or null when the text is not an order id. */
export function saleIdOfOrder(orderId: string): number | null {
  const match = ORDER_ID.exec(orderId);
  return match ? Number(match[1]) : null;
}
