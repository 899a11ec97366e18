/**
 * A MariaDB GTID position (`0-1-1234,1-2-56`): per replication domain, the highest
 * sequence number seen. Server ids do not order transactions; within a domain the
 * sequence number does (gtid_strict_mode keeps it increasing).
 */
export type GtidPosition = ReadonlyMap<number, number>;

/** Parses `@@gtid_*_pos` or `Gtid_IO_Pos`; empty text is the empty position. */
export function parseGtidPosition(text: string | null | undefined): GtidPosition {
  const position = new Map<number, number>();
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!match) throw new Error(`not a MariaDB GTID position: ${JSON.stringify(text)}`);
    const domain = Number(match[1]);
    position.set(domain, Math.max(position.get(domain) ?? 0, Number(match[3])));
  }
  return position;
}

/** True when `a` holds every transaction `b` holds (domain by domain). */
export function gtidCovers(a: GtidPosition, b: GtidPosition): boolean {
  for (const [domain, seq] of b) if ((a.get(domain) ?? 0) < seq) return false;
  return true;
}

/** Transactions `a` is ahead of `b`, summed over domains (negative when behind). */
export function gtidDistance(a: GtidPosition, b: GtidPosition): number {
  let total = 0;
  for (const domain of new Set([...a.keys(), ...b.keys()])) total += (a.get(domain) ?? 0) - (b.get(domain) ?? 0);
  return total;
}
