import type { Logger } from 'pino';
import type { AlertSink } from './alert-sink.js';
import { checkBackupPolicy } from './backup-policy.js';
import type { BackupPolicySettings, PolicyBreach, TargetState } from './backup-policy.js';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';
import type { OpsMetrics } from './ops-metrics.js';

/** What a {@link PolicyMonitor} checks, where it reads the catalogs and where it raises alerts. */
export interface PolicyMonitorOptions {
  readonly settings: BackupPolicySettings;
  /** Names of the configured backup targets. */
  readonly targets: readonly string[];
  /** Reads a target's complete backups and drill outcomes from its catalog. */
  readState(target: string): Promise<TargetState>;
  readonly alerts: AlertSink;
  readonly log: Logger;
  readonly metrics?: OpsMetrics;
  readonly clock?: Clock;
  /** How long a breach that persists stays quiet before it is raised again. Default 4 h (Alertmanager's repeat_interval). */
  readonly repeatMs?: number;
}

const DEFAULT_REPEAT_MS = 4 * 3_600_000;

/**
 * Checks every target against the backup policy and raises what it breaches: a new breach
 * at once, one that persists again every `repeatMs`, and none while it stays quiet in
 * between, so a stale backup pages an operator without paging every five minutes. A
 * target that cannot be read counts as holding no usable backup (`backup_stale`), since
 * nobody could restore from it either.
 */
export class PolicyMonitor {
  readonly #options: PolicyMonitorOptions & { readonly clock: Clock; readonly repeatMs: number };
  /** Breach key → when it was last raised. */
  readonly #raised = new Map<string, number>();

  constructor(options: PolicyMonitorOptions) {
    this.#options = Object.freeze({ clock: systemClock, repeatMs: DEFAULT_REPEAT_MS, ...options });
  }

  /** Checks every target once; resolves with the breaches found now (raised or kept quiet). */
  async check(): Promise<PolicyBreach[]> {
    const { targets, readState, settings, alerts, metrics, clock, log, repeatMs } = this.#options;
    const now = clock.now();
    const found: PolicyBreach[] = [];
    for (const target of targets) {
      let state: TargetState;
      try {
        state = await readState(target);
      } catch (err) {
        found.push({
          key: `backup_stale:${target}`,
          alert: 'backup_stale',
          severity: 'critical',
          summary: `cannot read the backup catalog of target ${target}: ${(err as Error).message}; nothing there can be restored until it can; check the target's URL, credentials and network`,
          details: { target, error: (err as Error).message },
        });
        continue;
      }
      const { breaches, measures } = checkBackupPolicy(state, settings, now);
      found.push(...breaches);
      if (measures.backupAgeSeconds !== undefined) metrics?.backupAgeSeconds.set({ target }, measures.backupAgeSeconds);
      if (measures.lastDrillOk !== undefined) metrics?.drillLastOk.set({ target }, measures.lastDrillOk ? 1 : 0);
      if (measures.lastDrillPassedAt !== undefined) metrics?.drillLastSuccess.set({ target }, measures.lastDrillPassedAt / 1000);
    }
    const current = new Set(found.map((b) => b.key));
    for (const key of [...this.#raised.keys()]) {
      if (!current.has(key)) {
        this.#raised.delete(key);
        log.info({ breach: key }, `policy: ${key} is resolved`);
      }
    }
    for (const breach of found) {
      const last = this.#raised.get(breach.key);
      if (last !== undefined && now - last < repeatMs) continue;
      this.#raised.set(breach.key, now);
      const { key: _key, ...alert } = breach;
      await alerts.raise(alert);
    }
    return found;
  }
}
