/**
 * The drill part: what the rest of Seckill may import from `src/drill` — restore a backup
 * into a scratch target, check it, measure RTO/RPO, report (invariant I6).
 */
export { runDrill } from './run-drill.js';
export type { DrillOptions, DrillProgress, DrillProgressEvent } from './run-drill.js';
export { failedChecks, renderDrillMarkdown } from './drill-report.js';
export type { DrillCheck, DrillReport } from './drill-report.js';
export { createScratchDatabase, SCRATCH_DATABASE_PREFIX } from './scratch-database.js';
export type { ScratchDatabase, ScratchDatabaseOptions } from './scratch-database.js';
