/**
 * SIGTERM or SIGINT ends the worker within this bound, whatever it was doing (README, "Stopping is
 * bounded"): the job in hand stopped and handed back, the lease released, then exit; a timer exits
 * anyway when something hangs. The systemd unit's TimeoutStopSec= is above it
 * (deploy/systemd/chango-backup-worker.service), so systemd's SIGKILL never cuts a stop short.
 */
export const STOP_BOUND_MS = 25_000;
