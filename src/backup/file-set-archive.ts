import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { FileSetSetting } from '../config/config.js';
import { GlobPattern } from './glob-pattern.js';
import { ProcessFilter } from './process-filter.js';

/** The files of one file set, relative to its root. */
export interface FileSetListing {
  readonly root: string;
  /** Sorted `/`-separated paths of files and symbolic links. */
  readonly files: readonly string[];
}

/**
 * The files a file set names: every file (or symbolic link) under `root` matching an
 * include glob and no exclude glob. Excluded folders are not entered (`node_modules/**`),
 * and symbolic links to folders are archived as links, never followed (no loops).
 *
 * @throws Error naming the root when it cannot be read.
 */
export async function listFileSet(set: FileSetSetting, baseDir = process.cwd()): Promise<FileSetListing> {
  const root = resolve(baseDir, set.root);
  const include = set.include.map((g) => new GlobPattern(g));
  const exclude = set.exclude.map((g) => new GlobPattern(g));
  const files: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(relative === '' ? root : join(root, relative), { withFileTypes: true });
    } catch (error) {
      throw new Error(`cannot read ${relative === '' ? root : join(root, relative)} of file set ${set.name}: ${(error as Error).message}; check backupFileSets`);
    }
    for (const entry of entries) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!exclude.some((g) => g.coversFolder(path) || g.matches(path))) await walk(path);
      } else if ((entry.isFile() || entry.isSymbolicLink()) && include.some((g) => g.matches(path)) && !exclude.some((g) => g.matches(path))) {
        files.push(path);
      }
    }
  };
  await walk('');
  return { root, files: files.sort() };
}

/**
 * A tar archive (GNU tar, as the `tar` command writes it) of the listed files, streamed.
 * File names go to tar NUL-separated on its stdin, so no name is too long for a command
 * line or misread for having spaces or newlines.
 */
export function fileSetArchive(listing: FileSetListing): Readable {
  const tar = new ProcessFilter('tar', ['--create', '--file=-', `--directory=${listing.root}`, '--null', '--no-recursion', '--files-from=-'], {
    label: `tar of ${listing.root}`,
  });
  tar.end(Buffer.from(listing.files.map((file) => `${file}\0`).join('')));
  return tar;
}

/**
 * A stream that extracts a tar archive into `folder` (which must exist). Files keep their
 * modes but not their owners, so a restore by another user does not fail on chown.
 */
export function fileSetExtractor(folder: string): ProcessFilter {
  return new ProcessFilter('tar', ['--extract', '--file=-', `--directory=${folder}`, '--no-same-owner'], { label: `tar extraction into ${folder}` });
}
