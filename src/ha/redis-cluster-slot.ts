/**
 * Redis Cluster's key → slot function (CRC16-XMODEM of the key, or of its hash tag, mod
 * 16384), as in the Redis Cluster specification. Needed to find which master a sale lives on,
 * for the commands that must go to that master's own connection (`WAIT`).
 */

/** Number of hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/**
 * The slot of `key`. Only the part between the first `{` and the next `}` counts when it is
 * not empty (the hash tag), so `seckill:{sale:7}:state` and `seckill:{sale:7}:orders` share one.
 *
 * @example
 * keySlot('foo'); // 12182, as `CLUSTER KEYSLOT foo` answers
 */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % CLUSTER_SLOTS;
}
