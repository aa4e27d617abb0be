import type { ActiveCount, Job } from '@decisum/shared';

export interface Out {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function percent(job: Job): number | undefined {
  const { bytesRead, bytesTotal } = job.progress;
  if (job.status === 'succeeded') { return 100; }
  return bytesTotal > 0 ? Math.min(100, (bytesRead / bytesTotal) * 100) : undefined;
}

/** One line about how far a job got: `running  42% 1.2 GB of 2.5 GB, 1203321 rows`. */
export function progressText(job: Job): string {
  const p = percent(job);
  const { bytesRead, bytesTotal, rows } = job.progress;
  const bytes = bytesTotal > 0 ? `${formatBytes(bytesRead)} of ${formatBytes(bytesTotal)}` : formatBytes(bytesRead);
  return `${p === undefined ? '' : `${p.toFixed(0).padStart(3)}% `}${bytes}, ${rows} rows`;
}

/** A progress bar redrawn in place on a terminal; silent elsewhere so logs and pipes stay clean. */
export class ProgressBar {
  private drawn = false;

  constructor(private readonly out: Out) {}

  update(job: Job): void {
    if (!this.out.isTTY) { return; }
    const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - 60));
    const p = percent(job) ?? 0;
    const filled = Math.round((p / 100) * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    this.out.write(`\r\x1b[K${bar} ${job.status.padEnd(9)} ${progressText(job)}`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) { this.out.write('\r\x1b[K'); }
    this.drawn = false;
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

/** The result as a table: one line per summed column, exact sums. */
export function resultTable(job: Job): string {
  const columns = job.result?.columns ?? [];
  return table([['column', 'index', 'count', 'sum'], ...columns.map((c) => [c.name, String(c.index), String(c.count), c.sum])]);
}

export function errorText(job: Job): string {
  const e = job.error;
  if (!e) { return job.status === 'cancelled' ? 'cancelled' : 'no error recorded'; }
  const where = [e.row !== undefined ? `row ${e.row}` : '', e.column !== undefined ? `column ${e.column}` : '']
    .filter(Boolean)
    .join(', ');
  // Engine messages already start with their place ("row 12, column col10: …"); say it once.
  const placed = where !== '' && e.message.startsWith(where);
  return `${e.code}${where && !placed ? ` at ${where}` : ''}: ${e.message}`;
}

function seconds(job: Job): string | undefined {
  if (!job.startedAt || !job.finishedAt) { return undefined; }
  const ms = Date.parse(job.finishedAt) - Date.parse(job.startedAt);
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : undefined;
}

/** What `status` prints for people: the job's fields, then its result or error. */
export function jobText(job: Job): string {
  const o = job.options;
  const options = [`step ${o.step}`, `offset ${o.offset}`];
  if (o.delimiter !== undefined) { options.push(`delimiter ${JSON.stringify(o.delimiter) }`); }
  if (o.header === false) { options.push('no header'); }
  const lines: [string, string | undefined][] = [
    ['id', job.id],
    ['status', job.status],
    ['file', job.file],
    ['options', options.join(', ')],
    ['created', job.createdAt],
    ['started', job.startedAt],
    ['finished', job.finishedAt],
    ['took', seconds(job)],
    ['attempts', String(job.attempts)],
    ['progress', progressText(job)],
  ];
  if (job.result) { lines.push(['rows', String(job.result.rows)]); }
  if (job.status === 'failed' || job.status === 'cancelled') { lines.push(['error', errorText(job)]); }
  let text = lines
    .filter((l): l is [string, string] => l[1] !== undefined)
    .map(([k, v]) => `${k.padEnd(9)} ${v}`)
    .join('\n');
  text += '\n';
  if (job.result) { text += `\n${resultTable(job) }`; }
  return text;
}

export function activeText(a: ActiveCount): string {
  return `${a.active} active (${a.queued} queued, ${a.running} running)\n`;
}
