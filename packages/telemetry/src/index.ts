export { createLogger, REDACTED_PATHS, type Logger } from './logger.js';
export { OutageLog } from './outage-log.js';
export { BACKUP_DURATION_BUCKETS_SECONDS, COUNTER_FIELDS, HISTOGRAM_FIELDS, histogramBucket, type RunResult } from './metric-fields.js';
export { formatBytes, formatDuration } from './format.js';
