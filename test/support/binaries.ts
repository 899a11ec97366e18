import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

// Non-root PATHs often lack the sbin folders, where Debian puts mariadbd.
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** True when this process runs as root (uid 0). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The absolute path of an executable found in PATH or the sbin folders, or undefined.
 * Unlike {@link ensureBinary} it never installs anything.
 */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  const candidates = name.includes('/') ? [name] : dirs.map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next folder
    }
  }
  return undefined;
}

let aptUpdated: Promise<void> | undefined;
// apt holds a lock: installs started in parallel (MariaDB and PostgreSQL) must queue.
let aptQueue: Promise<unknown> = Promise.resolve();

async function apt(args: string[]): Promise<void> {
  await execFileAsync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
}

/**
 * Installs a Debian package when allowed (root on Debian), else throws an error with
 * the command to run. `apt-get update` runs once per process.
 */
export async function installDebianPackage(debianPackage: string, reason: string): Promise<void> {
  const command = `apt-get install -y ${debianPackage}`;
  if (!isRoot() || !existsSync('/etc/debian_version')) {
    throw new Error(
      `${reason}; the test harness starts its own private servers from Debian packages; ` +
        `install it with: ${isRoot() ? '' : 'sudo '}${command}`,
    );
  }
  const install = aptQueue.then(async () => {
    process.stderr.write(`test harness: ${reason}; running: ${command}\n`);
    aptUpdated ??= apt(['update']);
    await aptUpdated;
    await apt(['install', '-y', '--no-install-recommends', debianPackage]);
  });
  aptQueue = install.catch(() => undefined);
  try {
    await install;
  } catch (error) {
    throw new Error(`${reason}, and \`${command}\` failed: ${String(error)}`);
  }
}

/**
 * Returns the absolute path of an executable, installing its Debian package first when
 * it is missing and we are root on Debian (CI runs as root on a clean machine).
 *
 * @param name - the executable, e.g. `redis-server`, or an absolute path.
 * @param debianPackage - the package that provides it, e.g. `redis-server`.
 * @throws Error naming the exact install command when it is missing and cannot be installed.
 *
 * @example
 * const mariadbd = await ensureBinary('mariadbd', 'mariadb-server');
 */
export async function ensureBinary(name: string, debianPackage: string): Promise<string> {
  const found = findExecutable(name);
  if (found !== undefined) return found;
  await installDebianPackage(debianPackage, `${name} was not found in PATH or ${EXTRA_DIRS.join(', ')}`);
  const installed = findExecutable(name);
  if (installed === undefined) {
    throw new Error(`${name} is still missing after installing ${debianPackage}; check which package provides it`);
  }
  return installed;
}

function newestPostgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = readdirSync(root);
  } catch {
    return undefined;
  }
  const usable = versions
    .filter((version) => /^\d+(\.\d+)?$/.test(version))
    .filter((version) => existsSync(join(root, version, 'bin', 'postgres')) && existsSync(join(root, version, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return usable[0] === undefined ? undefined : join(root, usable[0], 'bin');
}

/**
 * The `bin` folder of the newest PostgreSQL in `/usr/lib/postgresql/<version>/bin`.
 *
 * Debian keeps `initdb` and `postgres` there, out of PATH (PATH only has the
 * version-switching wrappers of postgresql-common), so the folder is looked up directly.
 */
export async function postgresBinDir(): Promise<string> {
  const found = newestPostgresBinDir();
  if (found !== undefined) return found;
  await installDebianPackage('postgresql', 'no PostgreSQL server was found in /usr/lib/postgresql/*/bin');
  const installed = newestPostgresBinDir();
  if (installed === undefined) throw new Error('PostgreSQL is still missing from /usr/lib/postgresql/*/bin after installing postgresql');
  return installed;
}
