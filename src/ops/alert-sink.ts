import type { Logger } from 'pino';
import { redactUrl } from '../config/config.js';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';
import type { OpsMetrics } from './ops-metrics.js';

/**
 * Every alert Seckill raises. An operator's receiver (Alertmanager, a chat hook, a pager)
 * routes on this name, so names never change meaning.
 */
export type AlertName =
  /** A scheduled job (backup, verify, prune, drill) failed. */
  | 'job_failed'
  /** The newest complete backup on a target is older than `backupMaxAgeMinutes`, or there is none. */
  | 'backup_stale'
  /** A backup's database dump is smaller than `backupShrinkAlertRatio` × the previous one's. */
  | 'backup_shrunk'
  /** A drill restored a backup and a check failed: that backup does not count (I6). */
  | 'drill_failed'
  /** No drill passed within `drillMaxAgeHours`. */
  | 'drill_overdue'
  /** The dump tool cannot faithfully dump the server's version: the backup was refused. */
  | 'tool_version_mismatch';

/** `critical`: backups are at risk now (page someone); `warning`: look at it today. */
export type AlertSeverity = 'critical' | 'warning';

/** One alert, as the webhook receives it (plus `at`, the time it was raised). */
export interface Alert {
  readonly alert: AlertName;
  readonly severity: AlertSeverity;
  /** One line an operator reads first: what happened and what to do. */
  readonly summary: string;
  /** Machine-readable facts (backup id, target, failing checks…); JSON-serialisable. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** What happened to one alert on its way out. */
export interface AlertDelivery {
  /** True when the webhook answered 2xx. False also when no webhook is configured. */
  readonly delivered: boolean;
  readonly status?: number;
  /** Why it was not delivered. */
  readonly error?: string;
}

/** Where an {@link AlertSink} sends alerts, and how long it waits. */
export interface AlertSinkOptions {
  /** Where to POST; empty: alerts are only logged and counted. */
  readonly webhookUrl: string;
  readonly log: Logger;
  readonly metrics?: OpsMetrics;
  /** How long to wait for the webhook. Default 5 s: a hung receiver must not hold a backup job. */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Sends alerts to the configured webhook as JSON `{ alert, severity, summary, details, at }`.
 * It never throws into the caller: an alert is raised from the failure path of a backup or
 * a drill, and a broken receiver must not turn that into a second, hidden failure. Every
 * alert is also logged (at error or warn) and counted in `seckill_alerts_total{alert}`, so
 * it is seen even when the webhook is down.
 *
 * @example
 * const alerts = new AlertSink({ webhookUrl: config.alertWebhookUrl, log, metrics });
 * await alerts.raise({ alert: 'job_failed', severity: 'critical', summary: 'backup failed: …', details: { job: 'backup' } });
 */
export class AlertSink {
  readonly #options: Required<Omit<AlertSinkOptions, 'metrics'>> & Pick<AlertSinkOptions, 'metrics'>;

  constructor(options: AlertSinkOptions) {
    this.#options = Object.freeze({ timeoutMs: DEFAULT_TIMEOUT_MS, clock: systemClock, ...options });
  }

  /** Logs, counts and posts one alert; resolves with what the webhook did, never rejects. */
  async raise(alert: Alert): Promise<AlertDelivery> {
    const { webhookUrl, log, metrics, timeoutMs, clock } = this.#options;
    const at = new Date(clock.now()).toISOString();
    metrics?.alerts.inc({ alert: alert.alert });
    const level = alert.severity === 'critical' ? 'error' : 'warn';
    log[level]({ alert: alert.alert, severity: alert.severity, details: alert.details }, `ALERT ${alert.alert}: ${alert.summary}`);
    if (webhookUrl === '') return { delivered: false, error: 'no alertWebhookUrl configured' };
    try {
      const response = await fetch(webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...alert, at }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      // Drained so the connection is reused or closed, not left half-read.
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return { delivered: true, status: response.status };
      const error = `the webhook ${redactUrl(webhookUrl)} answered ${response.status}`;
      log.error({ alert: alert.alert, status: response.status }, `alert not delivered: ${error}; check the receiver (alertWebhookUrl)`);
      return { delivered: false, status: response.status, error };
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err as Error).message;
      const error = `could not reach the webhook ${redactUrl(webhookUrl)}: ${reason}`;
      log.error({ alert: alert.alert }, `alert not delivered: ${error}; check the receiver (alertWebhookUrl)`);
      return { delivered: false, error };
    }
  }
}
