/**
 * A Bloom filter of strings: "certainly not in the set" or "maybe in it" (about 1 % false
 * positives when sized for the number of items added), in about 10 bits per item. Sized
 * once; adding more items than it was made for only raises the false-positive rate.
 */
export class BloomFilter {
  readonly #bits: Uint32Array;
  readonly #size: number;
  readonly #hashes: number;

  /** @param capacity - how many items it is sized for (1 % false positives at that count). */
  constructor(capacity: number) {
    // m = n·ln(1/p)/ln(2)² ≈ 9.6 bits per item and k = (m/n)·ln 2 ≈ 7 hashes for p = 1 %.
    this.#size = Math.max(64, Math.ceil(Math.max(1, capacity) * 9.6));
    this.#bits = new Uint32Array(Math.ceil(this.#size / 32));
    this.#hashes = 7;
  }

  add(item: string): void {
    const [h1, h2] = hashPair(item);
    for (let i = 0; i < this.#hashes; i++) {
      const bit = (h1 + i * h2) % this.#size;
      this.#bits[bit >>> 5] |= 1 << (bit & 31);
    }
  }

  /** False: certainly never added. True: added, or a false positive. */
  mightContain(item: string): boolean {
    const [h1, h2] = hashPair(item);
    for (let i = 0; i < this.#hashes; i++) {
      const bit = (h1 + i * h2) % this.#size;
      if ((this.#bits[bit >>> 5] & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/**
 * Two independent 32-bit hashes of a string (FNV-1a with two offset bases), combined as
 * h1 + i·h2 for the i-th probe (Kirsch–Mitzenmacher). Unsigned; h2 is odd, so never 0.
 */
function hashPair(item: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < item.length; i++) {
    const c = item.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, (b | 1) >>> 0];
}
