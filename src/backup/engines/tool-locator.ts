import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian keeps server tools such as `mariadbd` in sbin, which a non-root PATH often lacks. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** Where Debian installs each PostgreSQL major's own binaries, out of PATH. */
const POSTGRES_LIB = '/usr/lib/postgresql';

/** A command-line tool a backup engine drives, and the Debian package that provides it. */
export interface ToolRequirement {
  readonly name: string;
  readonly debianPackage: string;
}

/** The absolute path of an executable in PATH or the sbin folders, or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/**
 * The first of `tools` that is installed; otherwise an Error naming the package to install,
 * so a host without the client tools fails before it takes a backup, not during one.
 *
 * @example
 * const dump = requireTool([{ name: 'mariadb-dump', debianPackage: 'mariadb-client' }], 'back up MariaDB');
 */
export function requireTool(tools: readonly ToolRequirement[], purpose: string): string {
  for (const tool of tools) {
    const found = findTool(tool.name);
    if (found !== undefined) return found;
  }
  const names = tools.map((tool) => tool.name).join(' or ');
  const first = tools[0];
  throw new Error(
    `cannot ${purpose}: ${names} is not installed (looked in PATH and ${EXTRA_DIRS.join(', ')}); ` +
      `install it with \`apt-get install ${first?.debianPackage ?? names}\``,
  );
}

/**
 * A PostgreSQL client tool (`pg_dump`, `pg_restore`, `pg_amcheck`) of the newest major in
 * `/usr/lib/postgresql/<major>/bin`, else from PATH. Debian's `/usr/bin/pg_dump` is a
 * wrapper that picks a version by the local clusters, not by the server we connect to, so
 * the newest real binary is taken: it can dump every older server.
 */
export function findPostgresTool(name: string): string | undefined {
  let majors: string[];
  try {
    majors = readdirSync(POSTGRES_LIB).filter((entry) => /^\d+(\.\d+)?$/.test(entry));
  } catch {
    majors = [];
  }
  for (const major of majors.sort((a, b) => Number(b) - Number(a))) {
    const candidate = join(POSTGRES_LIB, major, 'bin', name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // this major lacks the tool
    }
  }
  return findTool(name);
}

/** Like {@link findPostgresTool}, but an Error naming the package when the tool is missing. */
export function requirePostgresTool(name: string, purpose: string): string {
  const found = findPostgresTool(name);
  if (found !== undefined) return found;
  throw new Error(
    `cannot ${purpose}: ${name} is not installed (looked in ${POSTGRES_LIB}/*/bin and PATH); ` +
      'install it with `apt-get install postgresql-client` (or postgresql-client-<server major>)',
  );
}
