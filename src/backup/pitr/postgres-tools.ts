import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool, runTool } from './tool-process.js';

/** PostgreSQL refuses to run as root; as root, servers and their files belong to this user (the Debian package creates it). */
export const POSTGRES_OS_USER = 'postgres';

const DEBIAN_ROOT = '/usr/lib/postgresql';

function installedMajors(): number[] {
  try {
    return readdirSync(DEBIAN_ROOT)
      .filter((name) => /^\d+$/.test(name) && existsSync(join(DEBIAN_ROOT, name, 'bin')))
      .map(Number)
      .sort((a, b) => b - a);
  } catch {
    return [];
  }
}

/**
 * The path of a PostgreSQL program. Debian keeps them in `/usr/lib/postgresql/<major>/bin`
 * (PATH has only version-picking wrappers, and no `postgres` at all).
 *
 * @param major - the server version it must match (a restore runs the backup's version); default the newest installed.
 * @param binDir - an explicit folder, which wins.
 */
export function postgresProgram(name: string, major?: number, binDir?: string): string {
  if (binDir !== undefined) return join(binDir, name);
  const majors = major === undefined ? installedMajors() : [major];
  for (const candidate of majors) {
    const path = join(DEBIAN_ROOT, String(candidate), 'bin', name);
    if (existsSync(path)) return path;
  }
  if (major !== undefined && name === 'postgres') {
    throw new Error(`PostgreSQL ${major} (the base backup's version) is not installed; its data directory needs that exact major version; install postgresql-${major} or pass its bin folder`);
  }
  return requireTool(name, major === undefined ? 'postgresql-client' : `postgresql-client-${major}`);
}

/** uid and gid of an OS user, for handing it the folders it must own. */
export async function osUserIds(user: string): Promise<{ readonly uid: number; readonly gid: number }> {
  const id = requireTool('id', 'coreutils');
  const [uid, gid] = await Promise.all([runTool({ command: id, args: ['-u', user] }, `looking up user ${user}`), runTool({ command: id, args: ['-g', user] }, `looking up user ${user}`)]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}
