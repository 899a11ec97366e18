import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * A tool's version as it prints it (`pattern`'s first group, from stdout or stderr), or
 * `unknown` when it cannot be run: recorded with every benchmark result.
 */
export async function toolVersion(command: string, args: string[], pattern: RegExp): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args);
    const text = `${stdout}${stderr}`;
    return pattern.exec(text)?.[1] ?? text.trim();
  } catch {
    return 'unknown';
  }
}

/**
 * The commit measured and how many files under src/ and test/ differ from it (read-only
 * git commands): other hands change those while a benchmark runs, so the commit alone
 * does not say what was measured.
 */
export async function sourceState(): Promise<{ commit: string; uncommittedFiles: number }> {
  const cwd = fileURLToPath(new URL('../../', import.meta.url));
  try {
    const commit = (await execFileAsync('git', ['rev-parse', '--short', 'HEAD'], { cwd })).stdout.trim();
    const status = (await execFileAsync('git', ['status', '--porcelain', '--untracked-files=all', '--', 'src', 'test'], { cwd })).stdout;
    return { commit, uncommittedFiles: status.split('\n').filter(Boolean).length };
  } catch {
    return { commit: 'unknown', uncommittedFiles: -1 };
  }
}
