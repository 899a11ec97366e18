/**
 * PostgreSQL write-ahead log positions and file names: an LSN `X/Y` is a 64-bit byte
 * position; WAL segment files are named `<timeline><log><segment>`, eight hex digits each.
 */

/** A completed WAL segment file name. */
export const WAL_SEGMENT_NAME = /^[0-9A-F]{24}$/;
/** A segment `pg_receivewal` is still writing. */
export const PARTIAL_WAL_SEGMENT_NAME = /^[0-9A-F]{24}\.partial$/;
/** A timeline history file. */
export const TIMELINE_HISTORY_NAME = /^[0-9A-F]{8}\.history$/;

/** Parses `16/B374D848` into a byte position. */
export function parseLsn(lsn: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (match === null) throw new Error(`${JSON.stringify(lsn)} is not a PostgreSQL LSN (expected hex like 16/B374D848)`);
  return (BigInt(`0x${match[1] as string}`) << 32n) | BigInt(`0x${match[2] as string}`);
}

function hex8(value: bigint | number): string {
  return value.toString(16).toUpperCase().padStart(8, '0');
}

/** The name of the segment holding `lsn` on `timeline`. */
export function walSegmentName(timeline: number, lsn: string, segmentSize: number): string {
  const segmentNumber = parseLsn(lsn) / BigInt(segmentSize);
  const perLogId = 0x1_0000_0000n / BigInt(segmentSize);
  return `${hex8(timeline)}${hex8(segmentNumber / perLogId)}${hex8(segmentNumber % perLogId)}`;
}

/** The timeline and the position (segment number) of a segment name, for ordering and gap checks. */
export function walSegmentParts(name: string, segmentSize: number): { readonly timeline: number; readonly segmentNumber: bigint } {
  const perLogId = 0x1_0000_0000n / BigInt(segmentSize);
  return {
    timeline: Number.parseInt(name.slice(0, 8), 16),
    segmentNumber: BigInt(`0x${name.slice(8, 16)}`) * perLogId + BigInt(`0x${name.slice(16, 24)}`),
  };
}
