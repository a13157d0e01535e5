/** Durations and sizes in operators' words, for messages and logs: "30 s", "1.5 s", "12 min", "208.0 MiB". */

const round1 = (value: number) => Math.round(value * 10) / 10;

export function formatDuration(ms: number): string {
  if (ms >= 120_000) return `${round1(ms / 60_000)} min`;
  if (ms >= 1000) return `${round1(ms / 1000)} s`;
  return `${Math.round(ms)} ms`;
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
