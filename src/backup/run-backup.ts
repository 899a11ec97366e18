import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SeckillConfig } from '../config/config.js';
import { countRows, snapshotSales } from './database-census.js';
import { COMPRESSION_SUFFIX } from './artifact-compression.js';
import { formatBytes } from './byte-size.js';
import { ArtifactFanout } from './artifact-fanout.js';
import { sealArtifact } from './artifact-seal.js';
import type { SealedDigests } from './artifact-seal.js';
import { deleteBackup, readManifest, writeManifest } from './backup-catalog.js';
import type { BackupEngine } from './backup-engine.js';
import { newBackupId } from './backup-id.js';
import { generatedKeyWarning, loadBackupKey } from './backup-key.js';
import type { BackupKey } from './backup-key.js';
import type { ArtifactRecord, BackupManifest } from './backup-manifest.js';
import { silentProgress, throttledBytes } from './backup-progress.js';
import type { ProgressListener } from './backup-progress.js';
import type { BackupTarget } from './backup-target.js';
import { databaseLocation, databaseName } from './database-location.js';
import { DigestTap } from './digest-tap.js';
import { DumpCensusSink } from './dump-census/dump-census.js';
import type { DumpCensus } from './dump-census/dump-census.js';
import { engineFor } from './engines/index.js';
import { fileSetArchive, listFileSet } from './file-set-archive.js';
import { closeTarget, openTargets } from './targets/open-target.js';

/** What to back up, and where. */
export interface BackupRunOptions {
  readonly db: boolean;
  readonly files: boolean;
  /** Names of configured targets; absent or empty: every configured target. */
  readonly targets?: readonly string[];
}

/** How one target fared. */
export interface TargetOutcome {
  readonly target: string;
  readonly location: string;
  /** True when the target holds the complete backup (its artifacts checked and its manifest written). */
  readonly ok: boolean;
  readonly error?: string;
}

/**
 * The result of a backup: the manifest when at least one target holds it complete, each
 * target's outcome, and `error` when anything failed (a backup missing from one configured
 * target is a failure to act on, even when another target holds it).
 */
export interface BackupRunResult {
  readonly id?: string;
  readonly manifest?: BackupManifest;
  readonly perTarget: readonly TargetOutcome[];
  /** Things an operator must know that did not fail the backup (a generated key, an empty file set…). */
  readonly warnings: readonly string[];
  readonly error?: string;
  readonly durationMs: number;
}

/** The program's version, for the manifest's origin. */
function seckillVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** File-set names become part of artifact names: keep them to safe characters. */
function artifactSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Per-target state while a backup runs. */
class TargetState {
  error: string | undefined;
  constructor(readonly target: BackupTarget) {}
}

/**
 * Takes a backup set — the database (a consistent dump taken while the sale goes on), the
 * configured file sets, or both — and stores it on every chosen target at once:
 *
 * 1. checks the dump tool against the server, refusing an incompatible pair (naming both
 *    versions) before anything is written;
 * 2. streams each artifact once through compression and encryption to all targets
 *    together, counting the dump's rows from the dump itself;
 * 3. reads every stored artifact back from every target and checks its size and SHA-256;
 * 4. only then writes `manifest.json` to each target that holds everything.
 *
 * A target that failed gets no manifest (so the backup never appears complete there) and
 * its partial files are removed when possible. Never throws for a failure of the backup
 * itself: the result says what happened.
 *
 * @example
 * const result = await runBackup(config, { db: true, files: true }, (e) => console.error(e.message));
 * if (result.error) process.exitCode = 1;
 */
export async function runBackup(config: SeckillConfig, options: BackupRunOptions, progress: ProgressListener = silentProgress): Promise<BackupRunResult> {
  const started = Date.now();
  const warnings: string[] = [];
  const both = !options.db && !options.files;
  const wantDb = options.db || both;
  const wantFiles = options.files || both;
  if (wantFiles && config.backupFileSets.length === 0) {
    if (!wantDb) {
      return { perTarget: [], warnings, error: 'nothing to back up: --files was asked for and no file sets are configured (backupFileSets)', durationMs: Date.now() - started };
    }
    warnings.push('no file sets are configured (backupFileSets), so this backup holds the database only');
  }
  let targets: BackupTarget[];
  try {
    targets = openTargets(config.backupTargets, options.targets);
  } catch (error) {
    return { perTarget: [], warnings, error: (error as Error).message, durationMs: Date.now() - started };
  }
  const states = targets.map((target) => new TargetState(target));
  const outcomes = (): TargetOutcome[] =>
    states.map((s) => ({ target: s.target.name, location: s.target.location, ok: s.error === undefined, ...(s.error !== undefined ? { error: s.error } : {}) }));
  let id: string | undefined;
  try {
    const key = loadBackupKey(config, { create: true });
    if (key.generated) {
      warnings.push(generatedKeyWarning(key));
      progress({ step: 'key', message: `WARNING: ${generatedKeyWarning(key)}` });
    }

    let engine: BackupEngine | undefined;
    let check: Awaited<ReturnType<BackupEngine['check']>> | undefined;
    if (wantDb) {
      engine = engineFor(config.databaseUrl, { mysqlMethod: config.backupMysqlMethod });
      progress({ step: 'check', message: `checking ${engine.method} against the ${engine.engine} server` });
      check = await engine.check(config.databaseUrl);
      if (!check.compatible) {
        return {
          perTarget: outcomes().map((o) => ({ ...o, ok: false, error: 'nothing written: the backup was refused' })),
          warnings,
          error:
            `refusing to back up: ${check.tool.name} ${check.tool.version} cannot faithfully dump the ${engine.engine} server ${check.server.version}` +
            `${check.reason ? `: ${check.reason}` : ''}. A dump made anyway could restore incomplete or not at all`,
          durationMs: Date.now() - started,
        };
      }
      progress({ step: 'check', message: `${check.tool.name} ${check.tool.version} can dump server ${check.server.version}` });
    }

    const createdAt = new Date();
    const backupId = newBackupId(createdAt);
    id = backupId;
    const artifacts: ArtifactRecord[] = [];
    const store = (name: string, raw: Readable, census?: DumpCensusSink) => storeArtifact(backupId, name, raw, states, key, config, progress, census);
    const suffix = COMPRESSION_SUFFIX[config.backupCompression];
    const encryption = { algorithm: 'aes-256-gcm' as const, keyId: key.id };
    let database: BackupManifest['database'];

    if (engine !== undefined && check !== undefined) {
      const name = `database${engine.extension}${suffix}.enc`;
      progress({ step: 'dump', message: `dumping the database with ${engine.method} into ${name}` });
      const dump = await engine.dump(config.databaseUrl);
      dump.finished.catch(() => undefined);
      const census = new DumpCensusSink({ engine: engine.engine, scratchDir: await censusScratchDir(config) });
      const digests = await store(name, dump.stream, census);
      const { position } = await dump.finished;
      const counted = await takeCensus(census, config.databaseUrl, warnings);
      artifacts.push({ name, role: 'database', ...digests, compression: config.backupCompression, encryption });
      database = {
        engine: engine.engine,
        method: engine.method,
        name: databaseName(config.databaseUrl),
        tool: check.tool,
        server: check.server,
        rowCounts: counted.rowCounts,
        sales: counted.sales,
        ...(position !== undefined ? { position } : {}),
      };
      progress({
        step: 'dump',
        message: `${name}: ${formatBytes(digests.rawSize)} dumped, ${formatBytes(digests.size)} stored; rows ${Object.entries(counted.rowCounts).map(([t, n]) => `${t} ${n}`).join(', ')}`,
      });
    }

    if (wantFiles) {
      for (const set of config.backupFileSets) {
        const listing = await listFileSet(set);
        if (listing.files.length === 0) {
          warnings.push(`file set ${set.name} matched no file under ${listing.root}; check its include globs (backupFileSets)`);
        }
        const name = `files-${artifactSafe(set.name)}.tar${suffix}.enc`;
        progress({ step: 'files', message: `archiving ${listing.files.length} files of file set ${set.name} (${listing.root}) into ${name}` });
        const digests = await store(name, fileSetArchive(listing));
        artifacts.push({ name, role: 'files', fileSet: set.name, ...digests, compression: config.backupCompression, encryption, fileCount: listing.files.length });
      }
    }

    await checkStored(backupId, artifacts, states, progress);

    const completedAt = new Date();
    const manifest: BackupManifest = {
      formatVersion: 1,
      id: backupId,
      createdAt: createdAt.toISOString(),
      completedAt: completedAt.toISOString(),
      durationMs: completedAt.getTime() - createdAt.getTime(),
      contents: { database: database !== undefined, files: artifacts.some((a) => a.role === 'files') },
      ...(database !== undefined ? { database } : {}),
      artifacts,
      origin: { host: hostname(), seckillVersion: seckillVersion() },
    };
    for (const state of live(states)) {
      progress({ step: 'manifest', message: `writing the manifest to ${state.target.name}` });
      try {
        await writeManifest(state.target, manifest);
        await readManifest(state.target, backupId);
      } catch (error) {
        state.error = `writing the manifest failed: ${(error as Error).message}`;
      }
    }
    await cleanUpFailed(backupId, states, progress);
    const ok = live(states);
    const failed = states.filter((s) => s.error !== undefined);
    return {
      id: backupId,
      ...(ok.length > 0 ? { manifest } : {}),
      perTarget: outcomes(),
      warnings,
      ...(failed.length > 0
        ? {
            error:
              ok.length === 0
                ? `backup ${backupId} failed on every target: ${failed.map((s) => `${s.target.name}: ${s.error}`).join('; ')}`
                : `backup ${backupId} is complete on ${ok.map((s) => s.target.name).join(', ')} but failed on ${failed.map((s) => `${s.target.name} (${s.error})`).join(', ')}`,
          }
        : {}),
      durationMs: Date.now() - started,
    };
  } catch (error) {
    // The backup as a whole failed (the dump, a file set): no target may keep any of it.
    const message = (error as Error).message;
    for (const state of states) state.error ??= message;
    if (id !== undefined) await cleanUpFailed(id, states, progress);
    return { ...(id !== undefined ? { id } : {}), perTarget: outcomes(), warnings, error: `backup failed: ${message}`, durationMs: Date.now() - started };
  } finally {
    for (const target of targets) closeTarget(target);
  }
}

function live(states: readonly TargetState[]): TargetState[] {
  return states.filter((s) => s.error === undefined);
}

/** Where a SQLite dump's census copy goes: beside the database (as big as it; /tmp is often small). */
async function censusScratchDir(config: SeckillConfig): Promise<string> {
  const location = databaseLocation(config.databaseUrl);
  const folder = location.kind === 'sqlite' ? dirname(location.file) : config.dataDir;
  await mkdir(folder, { recursive: true });
  return folder;
}

/**
 * The dump's own census; when the dump cannot be read (a physical backup) or counting it
 * failed, the live database's, with a warning that it may be later than the dump.
 */
async function takeCensus(census: DumpCensusSink, databaseUrl: string, warnings: string[]): Promise<DumpCensus> {
  let why: string;
  try {
    const counted = await census.result;
    if (counted !== undefined) return counted;
    why = 'this dump format cannot be read without restoring it';
  } catch (error) {
    why = `counting the dump failed (${(error as Error).message})`;
  }
  warnings.push(
    `row counts and the sale snapshot were read from the live database after the dump because ${why}; ` +
      'while orders are written they can be ahead of the dump, and a drill comparing row counts would then report a difference',
  );
  return { rowCounts: await countRows(databaseUrl), sales: await snapshotSales(databaseUrl) };
}

/**
 * Streams one artifact to every live target at once. A target whose upload fails is
 * marked failed and dropped; the others go on. Rejects only when the source fails (or no
 * target is left), which fails the whole backup.
 */
async function storeArtifact(
  id: string,
  name: string,
  raw: Readable,
  states: readonly TargetState[],
  key: BackupKey,
  config: SeckillConfig,
  progress: ProgressListener,
  census: DumpCensusSink | undefined,
): Promise<SealedDigests> {
  const targets = live(states);
  if (targets.length === 0) throw new Error('no target is left to store to');
  const fanout = new ArtifactFanout(targets.map((s) => s.target.name));
  const stored = new Map<string, number>();
  const puts = targets.map((state) =>
    state.target
      .put(`${id}/${name}`, fanout.branch(state.target.name))
      .then((bytes) => void stored.set(state.target.name, bytes))
      .catch((error: Error) => {
        state.error = error.message;
        fanout.drop(state.target.name, error);
      }),
  );
  let source = raw;
  let split: Promise<void> | undefined;
  if (census !== undefined) {
    // The dump goes to the census and to the targets together: it is read only once.
    const rawFanout = new ArtifactFanout(['store', 'census']);
    split = pipeline(raw, rawFanout);
    split.catch(() => undefined);
    void pipeline(rawFanout.branch('census'), census).catch(() => undefined);
    source = rawFanout.branch('store');
  }
  const report = throttledBytes(progress);
  let digests: SealedDigests;
  try {
    digests = await sealArtifact(source, fanout, {
      compression: config.backupCompression,
      key,
      onBytes: (bytes, storedBytes) => report({ step: 'store', message: `${name}: ${formatBytes(bytes)} read, ${formatBytes(storedBytes)} stored`, bytes, storedBytes }),
    });
    await split;
  } catch (error) {
    raw.destroy();
    await Promise.allSettled(puts);
    throw error;
  }
  await Promise.all(puts);
  for (const state of targets) {
    const bytes = stored.get(state.target.name);
    if (state.error === undefined && bytes !== digests.size) {
      state.error = `${name}: the target stored ${bytes} bytes, ${digests.size} were sent`;
    }
  }
  return digests;
}

/** Reads every artifact back from every live target and checks its size and SHA-256. */
async function checkStored(id: string, artifacts: readonly ArtifactRecord[], states: readonly TargetState[], progress: ProgressListener): Promise<void> {
  for (const state of live(states)) {
    progress({ step: 'verify', message: `reading ${artifacts.length} artifact(s) back from ${state.target.name} to check them` });
    for (const artifact of artifacts) {
      try {
        const tap = new DigestTap({ bytes: 'stored', size: artifact.size, sha256: artifact.sha256 });
        await pipeline(await state.target.get(`${id}/${artifact.name}`), tap, async (chunks: AsyncIterable<Buffer>) => {
          for await (const _ of chunks);
        });
      } catch (error) {
        state.error = `${artifact.name} read back wrong: ${(error as Error).message}`;
        break;
      }
    }
  }
}

/** Removes what failed targets hold of the backup, so nothing half-written lingers. */
async function cleanUpFailed(id: string, states: readonly TargetState[], progress: ProgressListener): Promise<void> {
  for (const state of states) {
    if (state.error === undefined) continue;
    progress({ step: 'cleanup', message: `removing the partial backup ${id} from ${state.target.name}` });
    try {
      await deleteBackup(state.target, id);
    } catch (error) {
      state.error += `; its partial files in ${id}/ could not be removed (${(error as Error).message}): remove them by hand`;
    }
  }
}
