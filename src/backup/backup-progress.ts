/**
 * What a long backup, verification or restore reports while it runs: which step, a line
 * for a person, and for streaming steps the bytes so far. The CLI prints these to stderr;
 * the ops role logs them.
 */
export interface ProgressEvent {
  /** A short, stable name: `check`, `dump`, `files`, `store`, `verify`, `manifest`, `cleanup`, `restore`… */
  readonly step: string;
  readonly message: string;
  /** Raw bytes read so far in a streaming step. */
  readonly bytes?: number;
  /** Bytes stored so far (compressed and encrypted) in a streaming step. */
  readonly storedBytes?: number;
}

/** Receives progress; must not throw. */
export type ProgressListener = (event: ProgressEvent) => void;

/** A listener that ignores everything, for callers that want none. */
export const silentProgress: ProgressListener = () => undefined;

/** How often a streaming step reports its byte counts. */
const BYTES_INTERVAL_MS = 1000;

/**
 * Wraps a listener so byte counts of one step are reported at most once a second (a 10 GB
 * dump would otherwise print a line per chunk), while step changes pass at once.
 */
export function throttledBytes(listener: ProgressListener): (event: ProgressEvent) => void {
  // The first report comes after a second too: a short step needs none.
  let last = Date.now();
  return (event) => {
    const now = Date.now();
    if (now - last < BYTES_INTERVAL_MS) return;
    last = now;
    listener(event);
  };
}
