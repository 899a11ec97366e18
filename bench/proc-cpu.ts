import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc times (USER_HZ); 100 on every Linux we run on. */
const TICKS_PER_SECOND = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a live process has used so far; undefined when it is gone or not Linux. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine so far (all cores), from /proc/stat. */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [, ...values] = line.trim().split(/\s+/);
    const n = values.map(Number);
    // user nice system idle iowait irq softirq steal …
    const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = n[3] + n[4];
    return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** Where the CPU went during one measurement. */
export interface CpuUse {
  /** Busy share of the whole machine, in cores (2.0 = both cores of a 2-core machine busy). */
  readonly machineCores: number | null;
  /** Per watched process: cores used on average, and CPU microseconds per request answered. */
  readonly processes: Readonly<Record<string, { readonly cores: number; readonly usPerRequest: number | null }>>;
  /**
   * Cores busy with anything else (other people's jobs on a shared machine): machine minus
   * every process above. Above ~0.2 on a 2-core machine the run competed for CPU.
   */
  readonly otherCores: number | null;
}

/**
 * Starts watching the CPU time of some processes (by name → pid) and of the machine;
 * call the returned function with the requests answered meanwhile to get the figures.
 *
 * Together these say whether a run was CPU-bound and which process paid for each request:
 * the Node server, Redis, MariaDB (wrk and anything else on the machine is the rest).
 */
export function watchCpu(
  pids: Readonly<Record<string, number | undefined>>,
): (requests: number, measuredElsewhere?: Readonly<Record<string, number | undefined>>) => CpuUse {
  const began = performance.now();
  const machine = machineCpu();
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuSeconds(pid)]));
  // `measuredElsewhere`: CPU seconds of processes that ended meanwhile (wrk), by name.
  return (requests, measuredElsewhere = {}) => {
    const wall = (performance.now() - began) / 1000;
    const machineEnd = machineCpu();
    const processes: Record<string, { cores: number; usPerRequest: number | null }> = {};
    const used: Record<string, number | undefined> = { ...measuredElsewhere };
    for (const [name, pid] of Object.entries(pids)) {
      const before = start[name];
      const after = processCpuSeconds(pid);
      used[name] = before === undefined || after === undefined ? undefined : after - before;
    }
    let accounted = 0;
    for (const [name, seconds] of Object.entries(used)) {
      if (seconds === undefined) continue;
      accounted += seconds;
      processes[name] = {
        cores: Math.round((seconds / wall) * 100) / 100,
        usPerRequest: requests > 0 ? Math.round((seconds / requests) * 1e6 * 10) / 10 : null,
      };
    }
    const machineCores = machine && machineEnd ? (machineEnd.busy - machine.busy) / wall : null;
    return {
      machineCores: machineCores === null ? null : Math.round(machineCores * 100) / 100,
      processes,
      otherCores: machineCores === null ? null : Math.round(Math.max(0, machineCores - accounted / wall) * 100) / 100,
    };
  };
}
