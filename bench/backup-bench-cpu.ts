/**
 * Who used the CPU during one step of `npm run bench:backup`. On a shared 2-core machine
 * wall times move with other people's jobs; CPU seconds per process say what a step cost,
 * and "others" says how much the machine was taken meanwhile.
 */
import { readFileSync } from 'node:fs';
import { processCpuSeconds } from './proc-cpu.js';

/** Clock ticks per second of /proc times; 100 on every Linux we run on (proc-cpu.ts asks getconf). */
const TICKS = 100;

/** CPU seconds of one step, by who spent them. */
export interface StepCpu {
  /** The private mariadbd. */
  readonly mariadbd: number | null;
  /** This Node process itself (our backup's encryption, hashing, census; the drill's checks). */
  readonly node: number | null;
  /**
   * Child processes that ended during the step (mariadb-dump, zstd, the mariadb client,
   * bash): Linux adds a child's time to its parent when the parent reaps it.
   */
  readonly tools: number | null;
  /** Busy CPU seconds of the whole machine. */
  readonly machine: number | null;
  /** Machine minus the three above: other people's jobs, in cores on average over the step. */
  readonly otherCores: number | null;
}

/** utime, stime, cutime, cstime of this process, in seconds. */
function selfTimes(): { self: number; children: number } | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { self: (f[11] + f[12]) / TICKS, children: (f[13] + f[14]) / TICKS };
  } catch {
    return undefined;
  }
}

function machineBusy(): number | undefined {
  try {
    const values = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - values[3] - values[4]) / TICKS;
  } catch {
    return undefined;
  }
}

const rounded = (v: number | undefined): number | null => (v === undefined ? null : Math.round(v * 100) / 100);

/**
 * Starts watching; the returned function gives the CPU used since, split by process.
 *
 * @example
 * const cpu = watchStepCpu(mariadb.pid);
 * await work();
 * const used = cpu();
 */
export function watchStepCpu(mariadbPid: number | undefined): () => StepCpu {
  const began = performance.now();
  const db0 = processCpuSeconds(mariadbPid);
  const me0 = selfTimes();
  const machine0 = machineBusy();
  return () => {
    const wall = (performance.now() - began) / 1000;
    const db1 = processCpuSeconds(mariadbPid);
    const me1 = selfTimes();
    const machine1 = machineBusy();
    const mariadbd = db0 === undefined || db1 === undefined ? undefined : db1 - db0;
    const node = me0 && me1 ? me1.self - me0.self : undefined;
    const tools = me0 && me1 ? me1.children - me0.children : undefined;
    const machine = machine0 === undefined || machine1 === undefined ? undefined : machine1 - machine0;
    const others = machine === undefined ? undefined : Math.max(0, machine - (mariadbd ?? 0) - (node ?? 0) - (tools ?? 0)) / Math.max(wall, 0.001);
    return { mariadbd: rounded(mariadbd), node: rounded(node), tools: rounded(tools), machine: rounded(machine), otherCores: rounded(others) };
  };
}
